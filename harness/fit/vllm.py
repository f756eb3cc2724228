"""vLLM's memory rule: it pre-allocates a share of the GPU, and the KV pool is what is left."""

from __future__ import annotations

from harness.constants import MIB
from harness.fit.arch import Arch, FitError
from harness.fit.kv import kv_bytes_per_token
from harness.fit.prediction import CUDA_CONTEXT_MIB, HEADROOM, Prediction

VLLM_GPU_UTIL = 0.9
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


def predict_vllm(
    arch: Arch,
    ctx_per_slot: int,
    parallel: int,
    weights_mib: float,
    kv_type: str,
    device: str,
    gpu_total_mib: float | None,
    gpu_util: float,
) -> Prediction:
    """vLLM takes gpu_util x GPU memory; what weights, activations and overhead leave is KV."""
    if device != "gpu":
        raise FitError("--device='cpu' is not valid with --engine='vllm'; its rule is for GPUs")
    batched = vllm_batched_tokens(gpu_total_mib or 0.0)
    activation_mib = vllm_activation_bytes(arch, batched) / MIB
    overhead = CUDA_CONTEXT_MIB + VLLM_CUDA_GRAPHS_MIB
    base_mib = weights_mib + activation_mib + overhead
    capacity: int | None = None
    if gpu_total_mib is None:  # no budget known: the least it needs
        kv_mib = kv_bytes_per_token(arch, kv_type) * ctx_per_slot * parallel / MIB
    else:  # the KV pool takes the rest of the share; none left: vLLM does not start
        kv_mib = max(0.0, gpu_util * gpu_total_mib - base_mib)
        capacity = vllm_kv_tokens(kv_mib * MIB, arch, kv_type)
    total = base_mib + kv_mib
    # It fits when the pool holds every slot's full context and the share leaves the headroom.
    fits = None
    if capacity is not None:
        fits = capacity >= ctx_per_slot * parallel and gpu_util <= 1 - HEADROOM + 1e-9
    method = (
        f"vllm rule: pre-allocates {gpu_util:g} x GPU memory; KV pool = that - weights -"
        f" activations ({batched} batched tokens) - overhead (CUDA context + CUDA graphs);"
        f" capacity in blocks of {VLLM_BLOCK_TOKENS} tokens; fits when it holds ctx x parallel"
    )
    return Prediction(
        engine="vllm", device=device, ctx_per_slot=ctx_per_slot, parallel=parallel,
        kv_type=kv_type, weights_mib=weights_mib, kv_cache_mib=kv_mib,
        compute_buffer_mib=activation_mib, overhead_mib=overhead, total_mib=total, method=method,
        kv_cells=ctx_per_slot * parallel, gpu_total_mib=gpu_total_mib, fits=fits,
        kv_tokens_capacity=capacity,
    )  # fmt: skip
