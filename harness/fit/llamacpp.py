"""llama.cpp's and Ollama's memory rule: KV cells per slot, the compute buffer, the overhead."""

from __future__ import annotations

from harness.constants import MIB
from harness.fit.arch import Arch
from harness.fit.kv import CacheCells, kv_cache_bytes
from harness.fit.prediction import CUDA_CONTEXT_MIB, Prediction, fits_with_headroom

KV_PAD_CELLS = 256  # llama.cpp rounds the cells of each KV stream up to a multiple of 256
N_UBATCH = 512  # llama.cpp / Ollama default physical batch
# Process RSS beyond model, KV and compute buffers for the embedded engine on the CPU (Python,
# llama.cpp libraries, tokenizer tables, server threads): about 90-110 MiB measured here.
CPU_RUNTIME_MIB = 100.0


def pad_up(value: int, multiple: int = KV_PAD_CELLS) -> int:
    return -(-value // multiple) * multiple


def llamacpp_cells(
    arch: Arch, ctx_per_slot: int, parallel: int, unified: bool, n_ubatch: int = N_UBATCH
) -> CacheCells:
    """llama.cpp: n_ctx = ctx x parallel; one padded stream per slot unless the cache is unified.

    Window layers keep window (x slots when unified) + n_ubatch cells, padded, at most all.
    """
    streams, full = (
        (1, pad_up(ctx_per_slot * parallel)) if unified else (parallel, pad_up(ctx_per_slot))
    )
    if not arch.has_swa:
        return CacheCells(streams, full, full)
    window = (arch.sliding_window or 0) * (parallel if unified else 1) + n_ubatch
    return CacheCells(streams, full, min(full, pad_up(window)))


def llamacpp_compute_bytes(
    arch: Arch, cells: CacheCells, n_outputs: int, flash_attn: bool = True, n_ubatch: int = N_UBATCH
) -> float:
    """Worst-case graph buffer: the KQ masks stay live; the peak is the largest of three points.

    FFN: n_ubatch x (4 ffn + 2 hidden) floats; attention without flash attention: the KQ scores,
    n_ubatch x cells x heads floats (+ 4 hidden); output: n_outputs x vocab logits. Matches
    llama.cpp's own logs to within 2%: gemma3-270m on the CPU (flash attention, measured here)
    and a 32-layer Mistral-7B at 2K/32K on CUDA (164/2144 MiB, fedora-copr/logdetective#106).
    """
    mask_bytes = 2 if flash_attn else 4
    masked_cells = cells.full_per_stream + (cells.swa_per_stream if arch.has_swa else 0)
    masks = n_ubatch * masked_cells * mask_bytes
    ffn = arch.ffn_size or 4 * arch.hidden_size
    ffn_point = n_ubatch * (4 * ffn + 2 * arch.hidden_size) * 4
    scores = 2 * arch.head_dim_k if flash_attn else cells.full_per_stream
    attention_point = n_ubatch * (scores * arch.n_heads + 4 * arch.hidden_size) * 4
    output_point = (n_outputs * (arch.vocab_size or 0) + n_ubatch * arch.hidden_size) * 4
    return masks + max(ffn_point, attention_point, output_point)


def predict_llamacpp(
    arch: Arch,
    rule: str,
    ctx_per_slot: int,
    parallel: int,
    weights_mib: float,
    kv_type: str,
    device: str,
    gpu_total_mib: float | None,
    flash_attn: bool,
) -> Prediction:
    """llama.cpp (rule "llamacpp"), Ollama ("ollama") or an unknown engine ("generic")."""
    unified = rule == "ollama"  # Ollama: one cache of num_ctx x parallel cells
    cells = llamacpp_cells(arch, ctx_per_slot, parallel, unified)
    # Current llama.cpp reserves logits for one token per slot; Ollama and unknown engines
    # are taken to reserve them for the whole batch, as llama.cpp used to.
    n_outputs = parallel if rule == "llamacpp" else N_UBATCH
    compute = llamacpp_compute_bytes(arch, cells, n_outputs, flash_attn)
    if device == "cpu":  # the logits buffer lives in host memory
        compute += n_outputs * (arch.vocab_size or 0) * 4
    overhead = CPU_RUNTIME_MIB if device == "cpu" else CUDA_CONTEXT_MIB
    kv_mib = kv_cache_bytes(arch, cells, kv_type) / MIB
    total = weights_mib + kv_mib + compute / MIB + overhead
    layout = "1 unified stream" if unified else f"{cells.streams} stream(s)"
    window = f", window layers {cells.swa_per_stream}" if arch.has_swa else ""
    method = (
        f"{rule} rule: KV {layout} x {cells.full_per_stream} cells (padded to {KV_PAD_CELLS})"
        f"{window}; compute buffer = masks + max(FFN, attention, logits) at n_ubatch"
        f" {N_UBATCH}, flash attention {'on' if flash_attn else 'off'}; overhead = "
        + ("process runtime (CPU)" if device == "cpu" else "CUDA context")
    )
    return Prediction(
        engine=rule, device=device, ctx_per_slot=ctx_per_slot, parallel=parallel,
        kv_type=kv_type, weights_mib=weights_mib, kv_cache_mib=kv_mib,
        compute_buffer_mib=compute / MIB, overhead_mib=overhead, total_mib=total, method=method,
        kv_cells=cells.full_per_stream * cells.streams, gpu_total_mib=gpu_total_mib,
        fits=fits_with_headroom(total, gpu_total_mib),
    )  # fmt: skip
