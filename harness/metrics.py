"""Per-request records -> per-level summary. Every metric is defined here, once.

Tables, figure labels and the README read METRICS; nothing else computes a metric.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.records import RequestRecord

STATISTICS = ("mean", "p50", "p90", "p99", "max", "n")


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    better: str  # "lower" | "higher"
    definition: str


METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric(
            "ttft_ms",
            "TTFT",
            "ms",
            "lower",
            "request sent -> first streamed chunk that carries generated content "
            "(role-only and empty deltas do not count)",
        ),
        Metric("ttfb_ms", "TTFB", "ms", "lower", "request sent -> first byte of the response body"),
        Metric(
            "itl_ms",
            "ITL",
            "ms",
            "lower",
            "gap between consecutive content chunks of one request (all gaps of a level pooled)",
        ),
        Metric(
            "tpot_ms",
            "TPOT",
            "ms",
            "lower",
            "(E2E - TTFT) / (output tokens - 1), for requests with at least 2 output tokens",
        ),
        Metric("e2e_ms", "E2E latency", "ms", "lower", "request sent -> last byte"),
        Metric(
            "output_tokens_per_s_per_request",
            "per-request tok/s",
            "tok/s",
            "higher",
            "output tokens / E2E latency, per request",
        ),
        Metric(
            "decode_tokens_per_s_per_request",
            "per-request decode rate",
            "tok/s",
            "higher",
            "(output tokens - 1) / (E2E - TTFT), per request",
        ),
        Metric(
            "aggregate_output_tokens_per_s",
            "aggregate tok/s",
            "tok/s",
            "higher",
            "output tokens of all successful requests of a level / the level's wall time "
            "(first request sent -> last request finished)",
        ),
        Metric(
            "requests_per_s",
            "requests/s",
            "req/s",
            "higher",
            "successful requests of a level / the level's wall time",
        ),
        Metric("error_rate", "error rate", "fraction", "lower", "failed requests / requests sent"),
        Metric(
            "goodput",
            "goodput",
            "fraction",
            "higher",
            "share of requests sent that succeeded and met the TTFT and TPOT targets",
        ),
        Metric(
            "peak_memory_mib",
            "peak memory",
            "MiB",
            "lower",
            "max GPU memory used over the level (NVML, per device, nothing subtracted); "
            "for a CPU engine (embedded llama.cpp, or no GPU layers) or without NVML: peak "
            "RSS of the engine's process tree, labelled process_rss; null for a server on "
            "another machine",
        ),
    )
}

# Metrics with one value per request (or per gap), summarised by STATISTICS.
DISTRIBUTION_METRICS = (
    "ttft_ms",
    "ttfb_ms",
    "itl_ms",
    "tpot_ms",
    "e2e_ms",
    "output_tokens_per_s_per_request",
    "decode_tokens_per_s_per_request",
)


def describe(values: Sequence[float]) -> dict[str, float | int | None]:
    """mean, p50, p90, p99, max and n of a sample (None for an empty one)."""
    if len(values) == 0:
        return {"mean": None, "p50": None, "p90": None, "p99": None, "max": None, "n": 0}
    arr = np.asarray(values, dtype=float)
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    return {
        "mean": float(arr.mean()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": float(arr.max()),
        "n": int(arr.size),
    }


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


def per_request_values(records: Iterable[RequestRecord]) -> dict[str, list[float]]:
    """The samples of every distribution metric, from successful requests only."""
    samples: dict[str, list[float]] = {key: [] for key in DISTRIBUTION_METRICS}
    for record in records:
        if not record.ok:
            continue
        samples["itl_ms"].extend(itl_gaps_ms(record))
        samples["e2e_ms"].append(record.e2e_ms)
        per_request = {
            "ttft_ms": record.ttft_ms,
            "ttfb_ms": record.ttfb_ms,
            "tpot_ms": tpot_ms(record),
            "output_tokens_per_s_per_request": output_tokens_per_s(record),
            "decode_tokens_per_s_per_request": decode_tokens_per_s(record),
        }
        for key, value in per_request.items():
            if value is not None:
                samples[key].append(value)
    return samples


def meets_targets(
    record: RequestRecord, ttft_target_ms: float | None, tpot_target_ms: float | None
) -> bool:
    if not record.ok:
        return False
    if ttft_target_ms is not None and (record.ttft_ms is None or record.ttft_ms > ttft_target_ms):
        return False
    tpot = tpot_ms(record)
    return not (tpot_target_ms is not None and (tpot is None or tpot > tpot_target_ms))


def summarize_level(
    records: Sequence[RequestRecord],
    concurrency: int,
    wall_time_s: float | None = None,
    ttft_target_ms: float | None = None,
    tpot_target_ms: float | None = None,
) -> dict[str, Any]:
    """The summary of one load level, computed from its raw records only.

    The wall time defaults to first request sent -> last request finished.
    """
    ok = [r for r in records if r.ok]
    if wall_time_s is None:
        wall_time_s = (
            max(r.end_mono_s for r in records) - min(r.start_mono_s for r in records)
            if records
            else 0.0
        )
    output_tokens_total = sum(r.output_tokens or 0 for r in ok)
    samples = per_request_values(records)
    summary: dict[str, Any] = {
        "concurrency": concurrency,
        "requests_sent": len(records),
        "requests_ok": len(ok),
        "requests_failed": len(records) - len(ok),
        "errors_by_type": dict(Counter(r.error_type for r in records if not r.ok)),
        "wall_time_s": wall_time_s,
        "output_tokens_total": output_tokens_total,
        "prompt_tokens_total": sum(r.prompt_tokens or 0 for r in ok),
        "output_tokens_source": dict(Counter(r.output_tokens_source for r in ok)),
    }
    for key in DISTRIBUTION_METRICS:
        summary[key] = describe(samples[key])
    summary["aggregate_output_tokens_per_s"] = (
        output_tokens_total / wall_time_s if wall_time_s > 0 else None
    )
    summary["requests_per_s"] = len(ok) / wall_time_s if wall_time_s > 0 else None
    summary["error_rate"] = (len(records) - len(ok)) / len(records) if records else None
    if ttft_target_ms is None and tpot_target_ms is None:
        summary["goodput"] = None
    else:
        good = sum(meets_targets(r, ttft_target_ms, tpot_target_ms) for r in records)
        summary["goodput"] = good / len(records) if records else None
    summary["goodput_targets"] = {"ttft_ms": ttft_target_ms, "tpot_ms": tpot_target_ms}
    return summary


def metrics_markdown() -> str:
    """The metric definitions as a markdown table (the README embeds this output)."""
    lines = ["| metric | key | unit | better | definition |", "| --- | --- | --- | --- | --- |"]
    for metric in METRICS.values():
        lines.append(
            f"| {metric.label} | `{metric.key}` | {metric.unit} | {metric.better} "
            f"| {metric.definition} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(metrics_markdown(), end="")
