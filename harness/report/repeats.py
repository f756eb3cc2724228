"""Repeats of a level (repeats=K: the same load K times in one run) as one row: the mean
of each figure, with its 95% confidence interval (Student t), standard deviation and
coefficient of variation beside it, `{column}:ci95`, `:sd`, `:cv`; `repeats` says K.

Peaks (memory, maxima) are the highest of the repeats, counts their mean; a status is the
worst of them and flags are every flag any repeat raised.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.metrics.confidence import mean_ci

REPEAT_KEYS = ("run_path", "load_mode", "concurrency", "rate_per_s")
HIGHEST = ("peak_memory_mib.value", "peak_memory_above_baseline_mib.value")
STATUS_ORDER = ("ok", "partial", "interrupted", "engine_died", "server_gone", "failed")
REPEATS_NOTE = (
    "Where a level ran k times (repeats=k): the mean ± the half-width of its 95% confidence "
    "interval (Student t, k-1 degrees of freedom) and the coefficient of variation (sd / mean)."
)


def ci_column(column: str, what: str = "ci95") -> str:
    """The column beside `column` that holds its repeats' `what` (ci95, sd, cv)."""
    return f"{column}:{what}"


def _worst(statuses: pd.Series) -> str:
    known = [s for s in statuses if isinstance(s, str)]
    rank = {status: i for i, status in enumerate(STATUS_ORDER)}
    return max(known, key=lambda s: rank.get(s, len(STATUS_ORDER))) if known else "ok"


def _flags(flags: pd.Series) -> str | None:
    recorded = [f for f in flags if isinstance(f, str)]
    if not recorded:
        return None
    return ", ".join(sorted({flag for text in recorded for flag in text.split(", ") if flag}))


def _combined(group: pd.DataFrame, metric_columns: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = group.iloc[-1].to_dict()
    row.update(
        repeats=len(group),
        level_status=_worst(group["level_status"]),
        level_flags=_flags(group["level_flags"]),
    )
    for name in metric_columns:
        values = [float(v) for v in group[name] if not pd.isna(v)]
        if not values:
            continue
        if name in HIGHEST or name.endswith(".max"):
            row[name] = max(values)
            continue
        stats = mean_ci(values)
        row[name] = stats["mean"]
        for what in ("ci95", "sd", "cv"):
            row[ci_column(name, what)] = stats[what]
    return row


def combine_repeats(levels: pd.DataFrame) -> pd.DataFrame:
    """One row per run x load: repeats of a level combined, the rest as they were."""
    if levels.empty:
        return levels.assign(repeats=pd.Series(dtype="Int64"))
    sizes = levels.groupby(list(REPEAT_KEYS), dropna=False)["level_index"].transform("size")
    if (sizes == 1).all():
        return levels.assign(repeats=1)
    metric_columns = [name for name in levels.columns if "." in name]
    rows = [
        _combined(group, metric_columns) if len(group) > 1 else {**group.iloc[0], "repeats": 1}
        for _, group in levels.groupby(list(REPEAT_KEYS), dropna=False, sort=False)
    ]
    combined = pd.DataFrame(rows)
    order = ["run_path", "level_index", "concurrency"]
    return combined.sort_values(order, kind="stable").reset_index(drop=True)
