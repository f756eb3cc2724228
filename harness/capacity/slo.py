"""One probe against the SLO: each target's value, the statistic it was judged on, and
whether it held; the binding target of a search.

A p99 needs harness.metrics.MIN_SAMPLES["p99"] (100) samples: a probe with fewer is judged
on its maximum, which is stricter, and says so (`judged_on`: "max (n=40 < 100)").
Open-loop (rate) probes are judged from when each request was due (the user's wait on
the client included), closed-loop ones from the wire.
"""

from __future__ import annotations

import math
from typing import Any

from harness.config import target_metric
from harness.metrics import MIN_SAMPLES

# Level statuses that are a verdict; an interrupted level or a dead engine is not.
VERDICT_STATUSES = ("ok", "partial", "failed")
FROM_DUE = {"ttft_ms": "ttft_from_due_ms", "e2e_ms": "e2e_from_due_ms"}


def check_target(level: dict[str, Any], name: str, limit: float) -> dict[str, Any]:
    """One target on one level: its value, what it was judged on, and whether it held."""
    metric, stat = target_metric(name)
    if stat is None:
        value = level.get(metric)
        return _checked(limit, value, "value", level.get("requests_sent") or 0)
    if level.get("mode") == "rate" and FROM_DUE.get(metric) in level:
        metric = FROM_DUE[metric]
    stats = level.get(metric) or {}
    n = int(stats.get("n") or 0)
    needed = MIN_SAMPLES.get(stat, 1)
    if n >= needed:
        return _checked(limit, stats.get(stat), stat, n, metric)
    judged = f"max (n={n} < {needed})" if n else "no samples"
    return _checked(limit, stats.get("max") if n else None, judged, n, metric)


def _checked(
    limit: float, value: Any, judged_on: str, n: int, metric: str | None = None
) -> dict[str, Any]:
    held = value is not None and float(value) <= limit
    checked = {"limit": limit, "value": value, "judged_on": judged_on, "n": n, "held": held}
    return {**checked, "metric": metric} if metric else checked


def judge(level: dict[str, Any], targets: dict[str, float]) -> dict[str, Any] | None:
    """The probe's verdict: every target checked, `held` when all held; None where the
    level is no verdict (interrupted, engine died)."""
    status = level.get("status") or "ok"
    if status not in VERDICT_STATUSES:
        return None
    checks = {name: check_target(level, name, limit) for name, limit in targets.items()}
    return {
        "held": status != "failed" and all(c["held"] for c in checks.values()),
        "status": status,
        "targets": checks,
    }


def use(check: dict[str, Any]) -> float:
    """How much of its limit a target used (value / limit; inf for a missing value or a
    zero limit exceeded)."""
    value, limit = check["value"], check["limit"]
    if value is None:
        return math.inf
    if limit == 0:
        return 0.0 if value == 0 else math.inf
    return float(value) / limit


def binding_target(verdict: dict[str, Any]) -> str | None:
    """The target that decided a probe: of those that missed, the one furthest over its
    limit (of all, the nearest to it where every one held)."""
    checks = verdict["targets"]
    missed = {name: c for name, c in checks.items() if not c["held"]} or checks
    return max(missed, key=lambda name: use(missed[name])) if missed else None
