"""The engine comparison: one row per cell x machine, its headline figures at one
concurrency, and what makes a row not like for like with another (its flags)."""

from __future__ import annotations

import pandas as pd

from harness.metrics import METRICS
from harness.report import weights
from harness.report.cells import KEY_TITLES, SERIES_KEYS, latest_levels, series_labels
from harness.report.frame import (
    AGGREGATE,
    FAILED,
    PEAK,
    PER_REQUEST,
    PREDICTED,
    SENT,
    STEADY,
    WHOLE_LEVEL,
    aggregate_shown,
    column,
    level_table,
)
from harness.report.repeats import REPEATS_NOTE, ci_column
from harness.report.view import (
    View,
    caption,
    fmt,
    header,
    mean_cell,
    percent,
    percentile_cell,
    split_identity,
)

COMPARISON_VALUES = (
    "at_concurrency",
    "aggregate_tok_s",
    "aggregate_window",
    "steady_tok_s",
    "whole_level_tok_s",
    "single_request_tok_s",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "ttft_max_ms",
    "ttft_n",
    "output_tokens_mean",
    "reached_max_tokens_share",
    "prefix_cache_hit_rate",
    "flags",
    "level_status",
    "peak_memory_mib",
    "peak_memory_kind",
    "predicted_memory_mib",
    "error_rate",
    "energy_per_output_token_j",
    "decode_bandwidth_utilisation",
    "decode_ceiling_tokens_per_s",
    "memory_bandwidth_gbs",
    "repeats",
    "aggregate_tok_s_ci95",
    "aggregate_tok_s_cv",
    "single_request_tok_s_ci95",
    "single_request_tok_s_cv",
)
# Figures of the level at the chosen concurrency, by the comparison's column name.
AT_LEVEL = {
    "ttft_p50_ms": "ttft_ms.p50",
    "ttft_p99_ms": "ttft_ms.p99",
    "ttft_max_ms": "ttft_ms.max",
    "ttft_n": "ttft_ms.n",
    "output_tokens_mean": "output_tokens_mean.value",
    "reached_max_tokens_share": "reached_max_tokens_share.value",
    "prefix_cache_hit_rate": "prefix_cache_hit_rate.value",
    "energy_per_output_token_j": "energy_per_output_token_j.value",
    "decode_bandwidth_utilisation": "decode_bandwidth_utilisation.value",
    "decode_ceiling_tokens_per_s": "decode_ceiling_tokens_per_s.value",
    "memory_bandwidth_gbs": "memory_bandwidth_gbs.value",
}
NOTES = (
    "Steady tok/s: output tokens per second while every worker was busy; marked "
    f"({WHOLE_LEVEL}) where the run recorded no steady window (older runs), the whole "
    "level's figure (ramp-up and drain included). Each percentile shows its sample count; "
    "below 100 samples a p99 is the maximum, named so. Flags: short_outputs, fewer than "
    "95% of requests reached max_tokens, so the row's tok/s are not like for like with an "
    "unflagged one; multi_token_chunks, chunks carry several tokens, so ITL is per chunk "
    "and TPOT is the per-token figure; weights_differ, the table holds rows that served other "
    "weights (another file, or another quantisation), named in the flag. '-': not recorded "
    "by the run."
)


def highest_common_concurrency(levels: pd.DataFrame) -> int | None:
    """The highest concurrency that every cell x machine was measured at (None: none is)."""
    sets = [set(g["concurrency"]) for _, g in levels.groupby(list(SERIES_KEYS), dropna=False)]
    common = set.intersection(*sets) if sets else set()
    return int(max(common)) if common else None


def flags_by_concurrency(levels: pd.DataFrame) -> str:
    """Each flag raised on these levels with the concurrencies it was raised at,
    "short_outputs (c=4, 8)"; "none" where none was, "" where no level recorded flags."""
    raised: dict[str, list[int]] = {}
    recorded = False
    for concurrency, flags in zip(levels["concurrency"], levels["level_flags"], strict=True):
        if not isinstance(flags, str):
            continue  # not recorded
        recorded = True
        for flag in filter(None, flags.split(", ")):
            raised.setdefault(flag, []).append(int(concurrency))
    if not raised:
        return "none" if recorded else ""
    return "; ".join(
        f"{flag} (c={', '.join(str(c) for c in sorted(at))})" for flag, at in sorted(raised.items())
    )


def steady_shown(level: pd.DataFrame) -> bool:
    return bool(len(level)) and level["window"].iloc[0] != WHOLE_LEVEL


def spread(name: str, level: pd.DataFrame, source: str) -> dict[str, float]:
    """The repeats' confidence half-width and CV of one figure of one level (NaN: once)."""
    return {f"{name}_{w}": column(level, ci_column(source, w)).max() for w in ("ci95", "cv")}


def engine_comparison(frame: pd.DataFrame, concurrency: int | None = None) -> pd.DataFrame:
    """One row per cell x machine: the headline figures, aggregate at one concurrency.

    The concurrency defaults to the highest common one; where there is none, each row uses
    its own highest, and `at_concurrency` says which.
    """
    levels = latest_levels(level_table(frame))
    chosen = concurrency if concurrency is not None else highest_common_concurrency(levels)
    shown, window = aggregate_shown(levels)
    levels = levels.assign(series=series_labels(levels), shown=shown, window=window)
    rows = []
    for key, group in levels.groupby(list(SERIES_KEYS), dropna=False, sort=True):
        at = int(group["concurrency"].max()) if chosen is None else chosen
        single = group[group["concurrency"] == 1]
        level = group[group["concurrency"] == at]
        peak = column(group, PEAK)
        sent = column(group, SENT).sum()
        rows.append(
            {
                "series": group["series"].iloc[0],
                **dict(zip(SERIES_KEYS, key, strict=True)),
                "at_concurrency": at,
                "aggregate_tok_s": column(level, "shown").max(),
                "aggregate_window": level["window"].iloc[0] if len(level) else "",
                "steady_tok_s": column(level, STEADY).max(),
                "whole_level_tok_s": column(level, AGGREGATE).max(),
                "single_request_tok_s": column(single, PER_REQUEST).max(),
                **{name: column(level, source).max() for name, source in AT_LEVEL.items()},
                "flags": flags_by_concurrency(group),
                "level_status": level["level_status"].iloc[0] if len(level) else "",
                "peak_memory_mib": peak.max(),
                "peak_memory_kind": group.loc[peak.idxmax(), "peak_memory_kind"]
                if peak.notna().any()
                else "",
                "predicted_memory_mib": column(group, PREDICTED).max(),
                "error_rate": column(group, FAILED).sum() / sent if sent else float("nan"),
                "repeats": int(level["repeats"].max()) if len(level) else 1,
                "weights_id": group["weights_id"].iloc[0],
                **spread("aggregate_tok_s", level, STEADY if steady_shown(level) else AGGREGATE),
                **spread("single_request_tok_s", single, PER_REQUEST),
            }
        )
    table = pd.DataFrame(rows, columns=["series", *SERIES_KEYS, *COMPARISON_VALUES, "weights_id"])
    return table.assign(flags=[with_weights_flag(table, row) for _, row in table.iterrows()])


def with_weights_flag(table: pd.DataFrame, row: pd.Series) -> str:
    """The row's flags, and weights_differ where the table holds other weights."""
    extra = weights.flag_text(table, row, side="engine")
    shown = "" if row["flags"] == "none" and extra else str(row["flags"])
    return "; ".join(part for part in (shown, extra) if part)


def comparison_view(table: pd.DataFrame, concurrency: int | None) -> View:
    """The engine comparison to show; `concurrency` None means each row's highest."""
    varying, constant = split_identity(table)
    at = (
        f"{concurrency} concurrent" if concurrency is not None else "each row's highest concurrency"
    )
    headers = [KEY_TITLES[key] for key in varying] + [
        header("steady_output_tokens_per_s"),
        header("output_tokens_mean"),
        header("reached_max_tokens_share"),
        "flags",
        header("output_tokens_per_s_per_request", "@ 1 concurrent"),
        header("ttft_ms", "p50"),
        header("ttft_ms", "p99"),
        header("prefix_cache_hit_rate"),
        header("peak_memory_mib", "measured (kind)"),
        f"predicted memory ({METRICS['peak_memory_mib'].unit})",
        header("error_rate", "all levels"),
        header("energy_per_output_token_j"),
        METRICS["decode_bandwidth_utilisation"].label,
    ]
    rows = []
    for row in table.itertuples(index=False):
        where = f"c={row.at_concurrency}" if concurrency is None else ""
        window = row.aggregate_window if row.aggregate_window == WHOLE_LEVEL else ""
        status = row.level_status or "ok"
        memory = fmt(row.peak_memory_mib, 0)
        rows.append(
            [fmt(getattr(row, key)) for key in varying]
            + [
                mean_cell(
                    row.aggregate_tok_s,
                    row.aggregate_tok_s_ci95,
                    row.aggregate_tok_s_cv,
                    row.repeats,
                    status,
                    window,
                    where,
                ),
                fmt(row.output_tokens_mean),
                fmt(row.reached_max_tokens_share, 2),
                fmt(row.flags),
                mean_cell(
                    row.single_request_tok_s,
                    row.single_request_tok_s_ci95,
                    row.single_request_tok_s_cv,
                    row.repeats,
                ),
                percentile_cell("p50", row.ttft_p50_ms, row.ttft_max_ms, row.ttft_n),
                percentile_cell("p99", row.ttft_p99_ms, row.ttft_max_ms, row.ttft_n),
                fmt(row.prefix_cache_hit_rate, 2),
                f"{memory} ({row.peak_memory_kind})" if row.peak_memory_kind else memory,
                fmt(row.predicted_memory_mib, 0),
                fmt(row.error_rate, 3),
                fmt(row.energy_per_output_token_j, 3),
                percent(row.decode_bandwidth_utilisation),
            ]
        )
    scope = (
        f"Figures at {at}, except per-request tok/s (at 1 concurrent), flags (at the "
        "concurrencies named), memory (the peak of all levels) and the error rate (all levels)."
    )
    repeated = REPEATS_NOTE if (table["repeats"] > 1).any() else ""
    served = weights.sentence(table, side="engine")
    text = " ".join(part for part in (caption(constant), served, scope, NOTES, repeated) if part)
    return View(f"Engines compared at {at}", text, headers, rows)
