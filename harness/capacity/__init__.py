"""Capacity under an SLO: the highest closed-loop concurrency (or open-loop rate) at which
every target holds, found on one running engine by probes that are ordinary levels.

`search` brackets and bisects, `slo` judges one probe, `schedule` turns the search into
the job's levels and its result into summary.json's `capacity`; `capacity_line` is the
line a run ends with.
"""

from __future__ import annotations

from typing import Any

from harness.capacity.slo import use


def _load_text(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    number = f"{int(value)}" if float(value).is_integer() else f"{value:g}"
    return f"{number} {unit[:-1] if unit.endswith('users') and value == 1 else unit}"


def target_text(name: str, check: dict[str, Any]) -> str:
    """ "ttft_p99_ms 412 <= 500"; judged on the maximum: "ttft_p99_ms max 412 (n=40) <= 500"."""
    value = check["value"]
    shown = "-" if value is None else f"{value:.3g}" if value < 1 else f"{value:.0f}"
    judged = check["judged_on"]
    if judged.startswith("max"):
        shown = f"max {shown} (n={check['n']})"
    sign = "<=" if check["held"] else ">"
    return f"{name} {shown} {sign} {check['limit']:g}"


def capacity_line(summary: dict[str, Any]) -> str | None:
    """The line a capacity run ends with, or None for a run without a search."""
    result = summary.get("capacity")
    if not result:
        return None
    unit, binding = result["unit"], result.get("binding")
    status = result["status"]
    if status == "below_start":
        first = result["probes"][0] if result["probes"] else None
        if not first:
            return "capacity: not measured (no probe finished)"
        shown = target_text(first["binding"], first["targets"][first["binding"]])
        load = _load_text(first["load"], unit)
        return f"capacity: none: {load} already misses ({shown}; binding: {first['binding']})"
    at = result.get("at_capacity") or {}
    if binding is None:  # nothing missed up to max_load: report the closest target
        name = max(at, key=lambda n: use(at[n])) if at else None
        shown = target_text(name, at[name]) if name else "no target"
        return (
            f"capacity: at least {_load_text(result['capacity'], unit)} ({shown}; binding: none "
            f"up to capacity.max_load={result['max_load']:g})"
            + ("" if status == "at_max" else f"; search {status}")
        )
    shown = target_text(binding, at[binding]) if binding in at else binding
    text = f"capacity: {_load_text(result['capacity'], unit)} ({shown}; binding: {binding})"
    return text if status == "found" else f"{text}; search {status}"
