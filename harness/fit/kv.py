"""Exact KV cache sizes: 2 (K and V) x layers x KV heads x head dim x bytes x cells.

Separate K/V head dims, per-layer KV heads and sliding-window layers are counted; how many
cells an engine allocates is the engine's rule (``llamacpp``, ``vllm``).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.fit.arch import Arch, FitError

# Bytes per cached value: ggml block sizes (q8_0 stores 32 values in 34 bytes, q4_0 in 18);
# vLLM's "auto" is the model's 16-bit dtype and its fp8 variants take one byte.
KV_BYTES_PER_ELEMENT: dict[str, float] = {
    "f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q5_1": 24 / 32, "q5_0": 22 / 32,
    "q4_1": 20 / 32, "q4_0": 18 / 32, "iq4_nl": 18 / 32, "fp8": 1.0, "fp8_e4m3": 1.0,
    "fp8_e5m2": 1.0, "auto": 2.0,
}  # fmt: skip


@dataclass(frozen=True)
class CacheCells:
    """KV cells an engine allocates: per stream (sequence slot) for full and window layers."""

    streams: int
    full_per_stream: int
    swa_per_stream: int


def kv_bytes_per_element(kv_type: str) -> float:
    """Bytes one cached value takes; a FitError names the allowed types."""
    if kv_type not in KV_BYTES_PER_ELEMENT:
        raise FitError(
            f"--kv-type={kv_type!r} is not valid; choose one of: {', '.join(KV_BYTES_PER_ELEMENT)}"
        )
    return KV_BYTES_PER_ELEMENT[kv_type]


def kv_cache_bytes(arch: Arch, cells: CacheCells, kv_type: str) -> float:
    """Sum over layers of (K dim + V dim) x KV heads x cells x bytes per element."""
    per_element = kv_bytes_per_element(kv_type)
    total = 0.0
    for layer, heads in enumerate(arch.kv_heads):
        per_stream = cells.swa_per_stream if arch.is_swa(layer) else cells.full_per_stream
        total += heads * (arch.head_dim_k + arch.head_dim_v) * per_stream * cells.streams
    return total * per_element


def kv_bytes_per_token(arch: Arch, kv_type: str) -> float:
    """KV bytes one token takes across all layers (no window saving: vLLM's page size)."""
    dims = sum(heads * (arch.head_dim_k + arch.head_dim_v) for heads in arch.kv_heads)
    return dims * kv_bytes_per_element(kv_type)
