"""Store-wide tables, as markdown and CSV: throughput by concurrency, and engines compared."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.report.cells import KEY_TITLES, SERIES_KEYS, latest_levels, series_labels
from harness.report.comparison import comparison_view, engine_comparison, highest_common_concurrency
from harness.report.frame import (
    AGGREGATE,
    PER_REQUEST,
    STEADY,
    STEADY_WINDOW,
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
    markdown,
    mean_cell,
    split_identity,
    write_csv,
)

# The table's columns that carry their repeats' spread, and the level column it is of.
SPREAD_SOURCES = {
    "aggregate_tok_s": STEADY,
    "output_tokens_per_s_per_request_mean": PER_REQUEST,
    "aggregate_output_tokens_per_s": AGGREGATE,
}
WHOLE_LEVEL_NOTE = (
    f"Marked ({WHOLE_LEVEL}): the run recorded no steady window (runs stored before it "
    "existed), so the figure is the whole level's, ramp-up and drain included."
)


def throughput_by_concurrency(frame: pd.DataFrame) -> pd.DataFrame:
    """Steady and whole-level aggregate tok/s and per-request tok/s of every cell x machine
    at each concurrency; `aggregate_tok_s` is the one tables lead with (`aggregate_window`
    says which)."""
    levels = latest_levels(level_table(frame))
    table = levels[[*SERIES_KEYS, "concurrency", "level_status", "level_flags", "run_id"]].copy()
    table.insert(0, "series", series_labels(levels))
    table["aggregate_tok_s"], table["aggregate_window"] = aggregate_shown(levels)
    table["steady_output_tokens_per_s"] = column(levels, STEADY)
    table["aggregate_output_tokens_per_s"] = column(levels, AGGREGATE)
    table["output_tokens_per_s_per_request_mean"] = column(levels, PER_REQUEST)
    table["repeats"] = levels["repeats"].to_numpy()
    steady = table["aggregate_window"] == STEADY_WINDOW
    for name, source in SPREAD_SOURCES.items():
        for what in ("ci95", "cv"):
            spread = column(levels, ci_column(source, what))
            if name == "aggregate_tok_s":  # the whole level's where it shows that figure
                spread = spread.where(steady, column(levels, ci_column(AGGREGATE, what)))
            table[f"{name}_{what}"] = spread.to_numpy()
    return table


def throughput_views(table: pd.DataFrame) -> list[View]:
    """The '1 / 5 / 10 / 20 concurrent' shape: one row per engine, one column per level;
    the steady aggregate first, then per-request and whole-level tok/s."""
    varying, constant = split_identity(table)
    concurrencies = sorted(int(c) for c in table["concurrency"].unique())
    headers = [KEY_TITLES[key] for key in varying] + [f"{c} concurrent" for c in concurrencies]
    fallback = (table["aggregate_window"] == WHOLE_LEVEL).any()
    steady_note = "Output tokens per second over the steady window (every worker busy). " + (
        WHOLE_LEVEL_NOTE if fallback else ""
    )
    per_request = "output_tokens_per_s_per_request"
    sections = (
        ("aggregate_tok_s", header("steady_output_tokens_per_s"), steady_note),
        (f"{per_request}_mean", header(per_request, "mean"), ""),
        ("aggregate_output_tokens_per_s", header("aggregate_output_tokens_per_s", WHOLE_LEVEL), ""),
    )
    views = []
    for value_column, title, note in sections:
        rows = []
        for key, group in table.groupby(varying, dropna=False, sort=True):
            by_level = {int(r.concurrency): r for r in group.itertuples()}
            cells = []
            for c in concurrencies:
                if c not in by_level:
                    cells.append("-")
                    continue
                level = by_level[c]._asdict()
                window = level["aggregate_window"] if value_column == "aggregate_tok_s" else ""
                window = window if window == WHOLE_LEVEL else ""
                ci, cv = level[f"{value_column}_ci95"], level[f"{value_column}_cv"]
                value, repeats = level[value_column], level["repeats"]
                cells.append(mean_cell(value, ci, cv, repeats, level["level_status"], window))
            rows.append([fmt(k) for k in key] + cells)
        repeated = REPEATS_NOTE if (table["repeats"] > 1).any() else ""
        text = " ".join(part for part in (caption(constant), note, repeated) if part)
        views.append(View(title, text, headers, rows))
    return views


def chosen_concurrency(frame: pd.DataFrame, concurrency: int | None) -> int | None:
    """The concurrency the comparison uses: the one asked for, else the highest common."""
    if concurrency is not None:
        return concurrency
    return highest_common_concurrency(latest_levels(level_table(frame)))


def write_tables(
    frame: pd.DataFrame, out: Path, concurrency: int | None = None
) -> dict[str, list[View]]:
    """Write both tables as .md and .csv under `out`; returns their views by file name."""
    out.mkdir(parents=True, exist_ok=True)
    chosen = chosen_concurrency(frame, concurrency)
    throughput = throughput_by_concurrency(frame)
    comparison = engine_comparison(frame, chosen)
    views = {
        "throughput_by_concurrency": throughput_views(throughput),
        "engine_comparison": [comparison_view(comparison, chosen)],
    }
    write_csv(throughput, out / "throughput_by_concurrency.csv")
    write_csv(comparison, out / "engine_comparison.csv")
    for name, shown in views.items():
        (out / f"{name}.md").write_text(markdown(shown))
    return views
