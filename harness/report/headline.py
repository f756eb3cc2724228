"""The report's first lines: per engine, what one user gets (tok/s), how many users it
serves within the SLO, and the memory it peaks at, in three sentences written from the
data (the newest measurement of each, as the tables show it)."""

from __future__ import annotations

from html import escape
from typing import Any

import pandas as pd

from harness.report import weights
from harness.report.capacity import answer, capacity_runs
from harness.report.cells import latest_levels, series_labels
from harness.report.frame import PEAK, PER_REQUEST, Store, column, level_table
from harness.report.repeats import ci_column
from harness.report.view import fmt


def _places(levels: pd.DataFrame) -> str:
    models = sorted(set(levels["model"]))
    machines = sorted({f"{m} ({g if g != 'none' else 'no GPU'})" for m, g in
                       zip(levels["machine_id"], levels["gpu_name"], strict=True)})  # fmt: skip
    return f"{', '.join(models)} on {', '.join(machines)}"


def single_user(levels: pd.DataFrame) -> str | None:
    one = levels[levels["concurrency"] == 1].assign(tok=column(levels, PER_REQUEST))
    one = one.assign(ci=column(one, ci_column(PER_REQUEST))).dropna(subset=["tok"])
    if one.empty:
        return None
    parts = [
        f"{row.series} {fmt(row.tok)}{'' if pd.isna(row.ci) else ' ± ' + fmt(row.ci)} tok/s"
        for row in one.sort_values("tok", ascending=False).itertuples()
    ]
    return f"For a single user ({_places(one)}): {'; '.join(parts)}."


def capacity(store: Store, levels: pd.DataFrame) -> str:
    runs = capacity_runs(store)
    if not runs:
        return (
            'No capacity search is stored: `make capacity SLO="ttft_p99_ms=500,'
            'tpot_p99_ms=50"` finds how many users an engine serves within targets.'
        )
    labels = dict(zip(levels["run_path"], levels["series"], strict=True))
    by_slo: dict[str, list[str]] = {}
    seen: set[tuple[str, str, str]] = set()
    for run in runs:  # newest first: one answer per engine, model and machine
        key = (run["engine"], run["model"], run["machine"])
        if key in seen:
            continue
        seen.add(key)
        slo = ", ".join(f"{n} <= {v:g}" for n, v in run["result"]["slo"].items())
        text = answer({**run, "engine": labels.get(run["run"], run["engine"])})
        by_slo.setdefault(slo, []).append(text)
    parts = [f"within {slo}, {'; '.join(texts)}" for slo, texts in by_slo.items()]
    return f"Capacity {' and '.join(parts)}."


def memory(levels: pd.DataFrame) -> str | None:
    levels = levels.assign(peak=column(levels, PEAK)).dropna(subset=["peak"])
    if levels.empty:
        return None
    peaks = []
    for label, group in levels.groupby("series", sort=True):
        top = group.loc[group["peak"].idxmax()]
        kind = {"gpu": "GPU", "process_rss": "process RSS"}.get(top["peak_memory_kind"], "")
        peaks.append(
            (top["peak"], f"{label} {fmt(top['peak'], 0)} MiB{' ' + kind if kind else ''}")
        )
    return f"Peak memory: {'; '.join(text for _, text in sorted(peaks, reverse=True))}."


def headline(store: Store) -> list[str]:
    """The headline's sentences (two or three)."""
    levels = latest_levels(level_table(store.frame))
    levels = levels.assign(series=series_labels(levels))
    served = weights.sentence(levels, side="engine")  # never a ranking across weights unsaid
    sentences: list[Any] = [single_user(levels), served, capacity(store, levels), memory(levels)]
    return [s for s in sentences if s]


def headline_html(store: Store) -> str:
    return '<div class="headline"><p>' + " ".join(escape(s) for s in headline(store)) + "</p></div>"
