"""Figures of one request, derived from its record, and the statistics of a sample."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.metrics.definitions import MIN_SAMPLES
from harness.records import RequestRecord


def describe(values: Sequence[float]) -> dict[str, float | int | None]:
    """mean, p50, p90, p99, max and n of a sample (None for an empty one); a percentile
    is None below the sample count it needs (MIN_SAMPLES)."""
    if len(values) == 0:
        return {"mean": None, "p50": None, "p90": None, "p99": None, "max": None, "n": 0}
    arr = np.asarray(values, dtype=float)
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    return {
        "mean": float(arr.mean()),
        "p50": float(p50),
        "p90": float(p90) if arr.size >= MIN_SAMPLES["p90"] else None,
        "p99": float(p99) if arr.size >= MIN_SAMPLES["p99"] else None,
        "max": float(arr.max()),
        "n": int(arr.size),
    }


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile whatever the sample size: for flags, not for reported figures."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else None


def itl_gaps_ms(record: RequestRecord) -> list[float]:
    times = record.chunk_times_ms
    return [later - earlier for earlier, later in zip(times, times[1:], strict=False)]


def tpot_ms(record: RequestRecord) -> float | None:
    if record.ttft_ms is None or not record.output_tokens or record.output_tokens < 2:
        return None
    return (record.e2e_ms - record.ttft_ms) / (record.output_tokens - 1)


def output_tokens_per_s(record: RequestRecord) -> float | None:
    if not record.output_tokens or record.e2e_ms <= 0:
        return None
    return record.output_tokens / (record.e2e_ms / 1000.0)


def decode_tokens_per_s(record: RequestRecord) -> float | None:
    if record.ttft_ms is None or not record.output_tokens or record.output_tokens < 2:
        return None
    decode_s = (record.e2e_ms - record.ttft_ms) / 1000.0
    return (record.output_tokens - 1) / decode_s if decode_s > 0 else None


def from_due_ms(record: RequestRecord, latency_ms: float | None) -> float | None:
    """A latency measured from the wire, moved back to when the request was due."""
    wait = record.client_wait_ms
    return None if latency_ms is None or wait is None else latency_ms + wait


def reached_max_tokens(record: RequestRecord) -> bool | None:
    if record.max_tokens is None or record.output_tokens is None:
        return None
    return record.output_tokens >= record.max_tokens
