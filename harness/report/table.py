"""The markdown table printed at the end of a run, from its summary only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tabulate import tabulate

from harness.metrics import METRICS, MIN_SAMPLES

BANDWIDTH_COLUMN = METRICS["decode_bandwidth_utilisation"].label  # "% of bandwidth ceiling"


def percent(value: Any) -> str:
    """A fraction as a percentage, "45%" ("4.5%" below a tenth); '-' for missing."""
    if value is None:
        return "-"
    return f"{value:.0%}" if abs(value) >= 0.1 else f"{value:.1%}"


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def percentile_text(
    stat: str, value: Any, maximum: Any, count: int, fmt: Callable[[Any], str]
) -> str:
    """A percentile with its sample count, "2,339.3 (n=16)"; from fewer samples than it
    needs (MIN_SAMPLES), the maximum, named so: "max 2,395.6 (n=16)". Every table writes
    percentiles through this."""
    if not count:
        return "-"
    if count < MIN_SAMPLES.get(stat, 0):
        return f"max {fmt(maximum)} (n={count})"
    return f"{fmt(value)} (n={count})"


def _with_n(stats: dict[str, Any], stat: str) -> str:
    return percentile_text(stat, stats.get(stat), stats.get("max"), stats.get("n") or 0, _fmt)


def _steady(level: dict[str, Any]) -> str:
    """The steady-window aggregate; a run stored before it existed shows its whole-level
    figure, marked so."""
    if "steady_output_tokens_per_s" in level:
        return _fmt(level["steady_output_tokens_per_s"])
    return f"{_fmt(level.get('aggregate_output_tokens_per_s'))} (whole level)"


def run_table(summary: dict[str, Any]) -> str:
    """engine, concurrency, per-request and steady aggregate tok/s, mean output tokens,
    TTFT p50/p99 with their counts, peak memory measured and predicted, and the checks:
    what makes a level unlike another (flags) and whether the client distorted it."""
    run = summary.get("run", {})
    per_req = METRICS["output_tokens_per_s_per_request"]
    steady = METRICS["steady_output_tokens_per_s"]
    out_mean = METRICS["output_tokens_mean"]
    ttft = METRICS["ttft_ms"]
    ceiling = METRICS["decode_ceiling_tokens_per_s"]
    headers = [
        "engine",
        "model",
        "concurrency",
        f"{per_req.label} mean",
        steady.label,
        out_mean.label,
        f"{ttft.label} p50 ({ttft.unit})",
        f"{ttft.label} p99 ({ttft.unit})",
        "ok / sent",
        "peak memory (MiB)",
        "predicted (MiB)",
        BANDWIDTH_COLUMN,
        f"{ceiling.label} ({ceiling.unit})",
        "status",
        "checks",
    ]
    rows = []
    repeated = any(level.get("repeat") for level in summary.get("levels", []))
    for level in summary.get("levels", []):
        kind = level.get("peak_memory_kind")
        load = level["concurrency"]
        if level.get("mode") == "rate" and level.get("rate_per_s") is not None:
            load = f"rate {level['rate_per_s']:g}/s"
        if repeated:  # which pass over the ladder (repeats=K)
            load = f"{load} (#{level.get('repeat', 0) + 1})"
        memory = _fmt(level.get("peak_memory_mib"), 0)
        rows.append(
            [
                run.get("engine"),
                run.get("model"),
                load,
                _fmt(level["output_tokens_per_s_per_request"]["mean"]),
                _steady(level),
                _fmt(level.get("output_tokens_mean")),
                _with_n(level["ttft_ms"], "p50"),
                _with_n(level["ttft_ms"], "p99"),
                f"{level['requests_ok']} / {level['requests_sent']}",
                f"{memory} ({kind})" if kind else memory,
                _fmt(level.get("predicted_memory_mib"), 0),
                percent(level.get("decode_bandwidth_utilisation")),
                _fmt(level.get("decode_ceiling_tokens_per_s")),
                level.get("status", "ok"),
                ", ".join([*(level.get("flags") or []), *(level.get("client_flags") or [])])
                or "ok",
            ]
        )
    if any(level.get("energy_j") is not None for level in summary.get("levels", [])):
        energy = METRICS["energy_per_output_token_j"]
        headers.insert(-2, f"{energy.label} ({energy.unit})")
        for row, level in zip(rows, summary.get("levels", []), strict=True):
            row.insert(-2, _fmt(level.get("energy_per_output_token_j"), 3))
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True) + "\n"
