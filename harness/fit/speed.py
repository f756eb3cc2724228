"""How fast at most: the decode ceiling of one stream on a GPU of known memory bandwidth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.ceiling.decode_bytes import gguf_decode_weights, kv_bytes_per_sequence
from harness.ceiling.gpus import gpu_peak, known_gpus
from harness.constants import MIB
from harness.fit.arch import FitError
from harness.fit.model import ModelFacts


def gpu_bandwidth(name: str | None, bandwidth_gbs: float | None) -> tuple[float, str]:
    """The bandwidth given (--gpu-bw), else the table's for the GPU named (--gpu)."""
    if bandwidth_gbs is not None:
        if bandwidth_gbs <= 0:
            raise FitError(f"--gpu-bw={bandwidth_gbs!r} is not valid; it must be > 0")
        return bandwidth_gbs, f"{name or 'GPU'} ({bandwidth_gbs:g} GB/s given)"
    row = gpu_peak(name or "")
    if row is None:
        raise FitError(
            f"--gpu={name!r} is not in the table; give --gpu-bw (GB/s) or one of: "
            + ", ".join(known_gpus())
        )
    return (
        row.memory_bandwidth_gbs,
        f"{row.label} ({row.memory_bandwidth_gbs:g} GB/s, {row.source})",
    )


def decode_ceiling(
    facts: ModelFacts, gguf: Path | None, kv_type: str, ctx: int, bandwidth_gbs: float
) -> dict[str, Any]:
    """Tok/s of one stream if each step only had to read its bytes at the peak bandwidth:
    at an empty context and at a full `ctx` one. Weights: the GGUF's tensors, else the
    estimate the fit uses."""
    if gguf is not None:
        weight_bytes = gguf_decode_weights(gguf).weight_bytes
    else:
        weight_bytes = facts.weights_mib * MIB
    full = weight_bytes + kv_bytes_per_sequence(facts.arch, ctx, kv_type)
    return {
        "memory_bandwidth_gbs": bandwidth_gbs,
        "weight_bytes_per_step": weight_bytes,
        "tokens_per_s_empty_context": bandwidth_gbs * 1e9 / weight_bytes,
        "tokens_per_s_full_context": bandwidth_gbs * 1e9 / full,
    }
