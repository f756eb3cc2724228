"""vLLM's memory rule: it pre-allocates a share of the GPU, and the KV pool is what is left.

The pool is shared by every running sequence. vLLM refuses to start when the pool cannot hold
one sequence of max_model_len tokens; beyond that, a bigger pool runs more full-length
sequences at once (at most max_num_seqs), it does not decide whether the model fits.
"""

from __future__ import annotations

from harness.constants import MIB
from harness.fit.arch import Arch
from harness.fit.kv import kv_bytes_per_token
from harness.fit.prediction import CUDA_CONTEXT_MIB, Prediction, fits_with_headroom

VLLM_GPU_UTIL = 0.9
# vLLM's CPU build: its KV pool is VLLM_CPU_KVCACHE_SPACE GiB (4 when unset).
VLLM_CPU_KV_SPACE_MIB = 4 * 1024.0
# What the CPU build's three processes hold beside weights and KV, their RSS summed
# (shared pages count in each): API server ~1,780 MiB, engine core ~1,070, worker ~1,730
# over weights and KV. Measured with vllm-cpu 0.32.0, torch 2.13 (CPU), Gemma 3 270M on
# x86_64, 2 cores: 6,121 MiB peak = 511 weights + 1,024 KV + 4,586.
VLLM_CPU_RUNTIME_MIB = 4600.0
VLLM_BLOCK_TOKENS = 16
# vLLM >= 0.21 counts its CUDA graphs inside the budget; assumed 512 MiB at default sizes.
VLLM_CUDA_GRAPHS_MIB = 512.0


def vllm_activation_bytes(arch: Arch, batched_tokens: int) -> float:
    """Peak activations of vLLM's profiling run: tokens x (3 ffn + 3 hidden) bf16 values.

    Fits vllm-project/vllm#10517 (Llama-3.1-8B: 2.07 GiB over weights for 20,000 tokens).
    """
    ffn = arch.ffn_size or 4 * arch.hidden_size
    return batched_tokens * (3 * ffn + 3 * arch.hidden_size) * 2


def vllm_batched_tokens(gpu_total_mib: float) -> int:
    """vLLM's default max_num_batched_tokens for `vllm serve`: 8192 on >= 70 GiB GPUs, else 2048."""
    return 8192 if gpu_total_mib >= 70 * 1024 else 2048


def vllm_kv_tokens(pool_bytes: float, arch: Arch, kv_type: str) -> int:
    """Tokens the KV pool holds: whole blocks of 16 tokens ("GPU KV cache size: N tokens")."""
    block_bytes = kv_bytes_per_token(arch, kv_type) * VLLM_BLOCK_TOKENS
    return max(0, int(pool_bytes // block_bytes)) * VLLM_BLOCK_TOKENS


def full_length_sequences(capacity_tokens: int, max_model_len: int, max_num_seqs: int) -> int:
    """Sequences of max_model_len tokens the pool holds at once, at most max_num_seqs."""
    return min(capacity_tokens // max_model_len, max_num_seqs)


def predict_vllm(
    arch: Arch,
    max_model_len: int,
    max_num_seqs: int,
    weights_mib: float,
    kv_type: str,
    device: str,
    gpu_total_mib: float | None,
    gpu_util: float,
    cpu_kv_space_mib: float | None = None,
) -> Prediction:
    """vLLM takes gpu_util x GPU memory; what weights, activations and overhead leave is KV.

    It fits when that share is free (the card is taken as empty: vLLM takes its share by
    design, so the other engines' 10% headroom is not its rule) and the pool holds one
    max_model_len sequence.
    """
    if device == "cpu":
        return predict_vllm_cpu(arch, max_model_len, max_num_seqs, weights_mib, kv_type,
                                gpu_total_mib, cpu_kv_space_mib)  # fmt: skip
    batched = vllm_batched_tokens(gpu_total_mib or 0.0)
    activation_mib = vllm_activation_bytes(arch, batched) / MIB
    overhead = CUDA_CONTEXT_MIB + VLLM_CUDA_GRAPHS_MIB
    base_mib = weights_mib + activation_mib + overhead
    capacity: int | None = None
    sequences: int | None = None
    fits: bool | None = None
    if gpu_total_mib is None:  # no budget known: the least it starts with, one sequence
        kv_mib = kv_bytes_per_token(arch, kv_type) * max_model_len / MIB
    else:  # the KV pool takes the rest of the share; none left: vLLM does not start
        kv_mib = max(0.0, gpu_util * gpu_total_mib - base_mib)
        capacity = vllm_kv_tokens(kv_mib * MIB, arch, kv_type)
        sequences = full_length_sequences(capacity, max_model_len, max_num_seqs)
        fits = capacity >= max_model_len
    method = (
        f"vllm rule: pre-allocates {gpu_util:g} x GPU memory; KV pool = that - weights -"
        f" activations ({batched} batched tokens) - overhead (CUDA context + CUDA graphs);"
        f" capacity in blocks of {VLLM_BLOCK_TOKENS} tokens; fits when the share is free (the"
        " card taken as empty) and the pool holds one max_model_len (ctx) sequence;"
        " sequences at once = capacity // ctx, at most"
        " max_num_seqs (parallel)"
    )
    return Prediction(
        engine="vllm", device=device, ctx_per_slot=max_model_len, parallel=max_num_seqs,
        kv_type=kv_type, weights_mib=weights_mib, kv_cache_mib=kv_mib,
        compute_buffer_mib=activation_mib, overhead_mib=overhead, total_mib=base_mib + kv_mib,
        method=method, kv_cells=max_model_len,
        gpu_total_mib=gpu_total_mib, fits=fits, kv_tokens_capacity=capacity,
        full_length_sequences=sequences, gpu_util=gpu_util,
    )  # fmt: skip


def predict_vllm_cpu(
    arch: Arch,
    max_model_len: int,
    max_num_seqs: int,
    weights_mib: float,
    kv_type: str,
    ram_total_mib: float | None,
    kv_space_mib: float | None,
) -> Prediction:
    """vLLM's CPU build: weights, a KV pool of a fixed size, and the runtime of its three
    Python processes (`VLLM_CPU_RUNTIME_MIB`). It starts when the pool holds one
    max_model_len sequence; it fits when the sum leaves the headroom free of the RAM."""
    kv_mib = VLLM_CPU_KV_SPACE_MIB if kv_space_mib is None else kv_space_mib
    capacity = vllm_kv_tokens(kv_mib * MIB, arch, kv_type)
    total = weights_mib + kv_mib + VLLM_CPU_RUNTIME_MIB
    room = fits_with_headroom(total, ram_total_mib)
    fits = None if room is None else room and capacity >= max_model_len
    method = (
        "vllm cpu rule: weights + the KV pool (VLLM_CPU_KVCACHE_SPACE) + the runtime of its"
        f" API server, engine core and worker ({VLLM_CPU_RUNTIME_MIB:.0f} MiB, RSS summed, as"
        " measured on vllm-cpu 0.32.0); capacity in blocks of"
        f" {VLLM_BLOCK_TOKENS} tokens; it starts when the pool holds one max_model_len sequence"
    )
    return Prediction(
        engine="vllm", device="cpu", ctx_per_slot=max_model_len, parallel=max_num_seqs,
        kv_type=kv_type, weights_mib=weights_mib, kv_cache_mib=kv_mib,
        compute_buffer_mib=0.0, overhead_mib=VLLM_CPU_RUNTIME_MIB, total_mib=total,
        method=method, kv_cells=max_model_len, gpu_total_mib=ram_total_mib, fits=fits,
        kv_tokens_capacity=capacity,
        full_length_sequences=full_length_sequences(capacity, max_model_len, max_num_seqs),
    )  # fmt: skip
