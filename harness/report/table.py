"""The markdown table printed at the end of a run, from its summary only."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from harness.metrics import METRICS


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def run_table(summary: dict[str, Any]) -> str:
    """engine, concurrency, per-request and aggregate tok/s, TTFT p50/p99, peak memory
    measured and predicted, and whether the client may have distorted the level."""
    run = summary.get("run", {})
    per_req = METRICS["output_tokens_per_s_per_request"]
    aggregate = METRICS["aggregate_output_tokens_per_s"]
    ttft = METRICS["ttft_ms"]
    headers = [
        "engine",
        "model",
        "concurrency",
        f"{per_req.label} mean",
        aggregate.label,
        f"{ttft.label} p50 ({ttft.unit})",
        f"{ttft.label} p99 ({ttft.unit})",
        "ok / sent",
        "peak memory (MiB)",
        "predicted (MiB)",
        "status",
        "client check",
    ]
    rows = []
    for level in summary.get("levels", []):
        kind = level.get("peak_memory_kind")
        memory = _fmt(level.get("peak_memory_mib"), 0)
        rows.append(
            [
                run.get("engine"),
                run.get("model"),
                level["concurrency"],
                _fmt(level["output_tokens_per_s_per_request"]["mean"]),
                _fmt(level["aggregate_output_tokens_per_s"]),
                _fmt(level["ttft_ms"]["p50"]),
                _fmt(level["ttft_ms"]["p99"]),
                f"{level['requests_ok']} / {level['requests_sent']}",
                f"{memory} ({kind})" if kind else memory,
                _fmt(level.get("predicted_memory_mib"), 0),
                level.get("status", "ok"),
                ", ".join(level.get("client_flags") or []) or "ok",
            ]
        )
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True) + "\n"
