"""The original write-up's rule of thumb, kept beside the estimate for comparison."""

from __future__ import annotations

from dataclasses import dataclass

from harness.fit.quant import nominal_bits


@dataclass(frozen=True)
class Heuristic:
    """The original write-up's rule of thumb, in GB."""

    weights_gb: float
    kv_gb: float
    overhead_gb: float
    total_gb: float
    label: str = "original write-up heuristic"


def original_heuristic(params_b: float, quant: str, ctx_tokens: int) -> Heuristic:
    """weights = params_b x bits/8 x 1.25; kv = params_b/7 x ctx/4096 x 0.5; overhead 0.8 GB."""
    weights = params_b * nominal_bits(quant) / 8 * 1.25
    kv = params_b / 7 * ctx_tokens / 4096 * 0.5
    return Heuristic(weights, kv, 0.8, weights + kv + 0.8)
