"""Figures of a store, drawn with matplotlib's object API (Agg for PNG; no pyplot state).

Each function returns the Figure and the data it plotted, so tests can hold the figures to
the tables. Colours: one per engine, from the sorted engine names onto tab10.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from harness.metrics import METRICS
from harness.report.ceiling_figure import has_ceilings, throughput_vs_ceiling
from harness.report.cells import latest_levels, series_labels
from harness.report.frame import (
    AGGREGATE,
    PEAK,
    PER_REQUEST,
    PREDICTED,
    STEADY,
    WHOLE_LEVEL,
    aggregate_shown,
    column,
    level_table,
    load_requests,
)
from harness.report.plotting import (
    Plot,
    concurrency_axis,
    engine_colours,
    finish,
    new_figure,
    save,
    series_styles,
)
from harness.report.repeats import ci_column

__all__ = ["Plot", "draw_all", "engine_colours", "save"]


def _series(levels: pd.DataFrame, value_column: str) -> dict[str, dict[int, float]]:
    labels = series_labels(levels)
    values = column(levels, value_column)
    series: dict[str, dict[int, float]] = {}
    for label, concurrency, value in zip(labels, levels["concurrency"], values, strict=True):
        if not pd.isna(value):
            series.setdefault(label, {})[int(concurrency)] = float(value)
    return dict(sorted(series.items()))


def _errors(levels: pd.DataFrame, value_column: str) -> dict[str, dict[int, float]]:
    """Per series, the 95% confidence half-width of each point of levels run repeatedly."""
    name = ci_column(value_column)
    return _series(levels, name) if name in levels.columns else {}


def _line(axes: Any, levels: pd.DataFrame, value_column: str, metric_key: str, stat: str) -> dict:
    """One line per series; error bars (95% CI) where its levels ran repeatedly."""
    series = _series(levels, value_column)
    errors = _errors(levels, value_column)
    styles = series_styles(levels, series_labels(levels))
    for label, points in series.items():
        axes.plot(list(points), list(points.values()), label=label, **styles[label])
        shown = {x: e for x, e in errors.get(label, {}).items() if x in points}
        if shown:
            xs = list(shown)
            ys, half = [points[x] for x in xs], list(shown.values())
            colour = styles[label]["color"]
            axes.errorbar(xs, ys, yerr=half, fmt="none", ecolor=colour, capsize=4, lw=1.2)
    metric = METRICS[metric_key]
    axes.set_ylabel(f"{metric.label}{' ' + stat if stat else ''} ({metric.unit})")
    concurrency_axis(axes, levels["concurrency"])
    return series


def aggregate_throughput(levels: pd.DataFrame) -> Plot:
    """Aggregate output tok/s against concurrency, one line per cell x machine: over the
    steady window (left; the whole level's where a run recorded none) and the whole level."""
    figure, (steady_axes, whole_axes) = new_figure(width=11.0, ncols=2)
    shown, window = aggregate_shown(levels)
    steady_ci = column(levels, ci_column(STEADY)).where(
        window != WHOLE_LEVEL, column(levels, ci_column(AGGREGATE))
    )
    levels = levels.assign(aggregate_shown=shown, **{ci_column("aggregate_shown"): steady_ci})
    steady = _line(steady_axes, levels, "aggregate_shown", "steady_output_tokens_per_s", "")
    whole = _line(whole_axes, levels, AGGREGATE, "aggregate_output_tokens_per_s", WHOLE_LEVEL)
    fallback = f" ({WHOLE_LEVEL} where not recorded)" if (window == WHOLE_LEVEL).any() else ""
    steady_axes.set_title(f"Aggregate throughput, steady window{fallback}", fontsize="medium")
    whole_axes.set_title(f"Aggregate throughput, {WHOLE_LEVEL}", fontsize="medium")
    finish(figure)
    errors = {
        "steady": _errors(levels, "aggregate_shown"),
        "whole_level": _errors(levels, AGGREGATE),
    }
    return Plot(figure, {"steady": steady, "whole_level": whole}, errors)


def per_request_throughput(levels: pd.DataFrame) -> Plot:
    """Mean per-request output tok/s against concurrency."""
    figure, (axes,) = new_figure()
    series = _line(axes, levels, PER_REQUEST, "output_tokens_per_s_per_request", "mean")
    axes.set_title("Per-request throughput")
    finish(figure)
    return Plot(figure, series, _errors(levels, PER_REQUEST))


def ttft_band(levels: pd.DataFrame) -> Plot:
    """TTFT p50 as a line, the p90 dashed, the band up to p99 shaded (up to the max where
    a level has too few samples for a p99; p90 likewise has gaps)."""
    figure, (axes,) = new_figure()
    p50 = _line(axes, levels, "ttft_ms.p50", "ttft_ms", "p50, p90 dashed, p99/max band")
    p90 = _series(levels, "ttft_ms.p90")
    top = column(levels, "ttft_ms.p99").fillna(column(levels, "ttft_ms.max"))
    p99 = _series(levels.assign(ttft_top=top), "ttft_top")
    styles = series_styles(levels, series_labels(levels))
    for label, points in p50.items():
        xs = list(points)
        colour = styles[label]["color"]
        upper = [p99.get(label, {}).get(x, np.nan) for x in xs]
        axes.fill_between(xs, list(points.values()), upper, color=colour, alpha=0.15, lw=0)
        tail = [p90.get(label, {}).get(x, np.nan) for x in xs]
        axes.plot(xs, tail, color=colour, linestyle="--", linewidth=0.8)
    axes.set_title("Time to first token")
    finish(figure)
    return Plot(figure, {"p50": p50, "p90": p90, "p99_or_max": p99})


def inter_token(levels: pd.DataFrame) -> Plot:
    """ITL p50 and TPOT p50 against concurrency, side by side."""
    figure, (itl_axes, tpot_axes) = new_figure(width=11.0, ncols=2)
    itl = _line(itl_axes, levels, "itl_ms.p50", "itl_ms", "p50")
    tpot = _line(tpot_axes, levels, "tpot_ms.p50", "tpot_ms", "p50")
    itl_axes.set_title("Inter-token latency")
    tpot_axes.set_title("Time per output token")
    finish(figure)
    return Plot(figure, {"itl_ms": itl, "tpot_ms": tpot})


def latency_cdfs(requests: pd.DataFrame, levels: pd.DataFrame) -> Plot:
    """Empirical CDFs of TTFT (top) and E2E latency (bottom), one column per concurrency."""
    concurrencies = sorted(int(c) for c in levels["concurrency"].unique())
    figure = Figure(figsize=(3.2 * max(len(concurrencies), 2), 6.0), layout="constrained")
    grid = figure.subplots(2, max(len(concurrencies), 1), squeeze=False)
    styles = series_styles(levels, series_labels(levels))
    plotted: dict[str, dict[int, dict[str, list[float]]]] = {}
    for col, concurrency in enumerate(concurrencies):
        at_level = requests[requests["concurrency"] == concurrency]
        for row, metric_key in enumerate(("ttft_ms", "e2e_ms")):
            axes = grid[row][col]
            for label, group in sorted(at_level.groupby("series"), key=lambda item: item[0]):
                values = np.sort(group[metric_key].dropna().to_numpy(dtype=float))
                if not len(values):
                    continue
                share = np.arange(1, len(values) + 1) / len(values)
                style = {k: v for k, v in styles[label].items() if k != "marker"}
                axes.step(values, share, where="post", label=label, **style)
                plotted.setdefault(label, {}).setdefault(concurrency, {})[metric_key] = list(values)
            metric = METRICS[metric_key]
            axes.set_xlabel(f"{metric.label} ({metric.unit})")
            axes.set_ylabel("share of requests")
            axes.set_ylim(0, 1.02)
            axes.grid(True, alpha=0.3)
            axes.set_title(f"{concurrency} concurrent", fontsize="medium")
    finish(figure, y_from_zero=False)
    return Plot(figure, dict(sorted(plotted.items())))


def memory_per_run(frame: pd.DataFrame) -> Plot:
    """Per run (keyed by run id): the measured peak memory and its kind, and the predicted."""
    levels = level_table(frame)
    levels = levels.assign(series=series_labels(levels))
    colours = engine_colours(levels["engine"])
    runs = sorted(levels.groupby("run_id", sort=True), key=lambda item: item[0])
    figure, (axes,) = new_figure(width=max(7.0, 1.4 * len(runs)), height=5.0)
    series: dict[str, dict[str, Any]] = {}
    ticks = []
    for index, (run_id, group) in enumerate(runs):
        peak = column(group, PEAK)
        values = {
            "measured": peak.max(),
            "predicted": column(group, PREDICTED).max(),
            "kind": group.loc[peak.idxmax(), "peak_memory_kind"] if peak.notna().any() else "",
        }
        colour = colours[group["engine"].iloc[0]]
        measured = 0.0 if pd.isna(values["measured"]) else values["measured"]
        predicted = 0.0 if pd.isna(values["predicted"]) else values["predicted"]
        axes.bar(index - 0.2, measured, 0.4, color=colour)
        axes.bar(index + 0.2, predicted, 0.4, color="white", edgecolor=colour, hatch="//")
        if pd.isna(values["predicted"]):
            axes.annotate(
                "not predicted",
                (index + 0.2, 0),
                xytext=(0, 4),
                textcoords="offset points",
                rotation=90,
                ha="center",
                va="bottom",
                fontsize="small",
                color="dimgray",
            )
        stamp = run_id.rsplit("__", 1)[-1][:15]
        ticks.append(f"{group['series'].iloc[0]}\n{stamp} {values['kind']}".rstrip())
        series[run_id] = values
    axes.set_xticks(np.arange(len(runs)), ticks, rotation=30, ha="right", fontsize="small")
    metric = METRICS["peak_memory_mib"]
    axes.set_ylabel(f"{metric.label} ({metric.unit})")
    axes.set_xlabel("run (filled: measured peak, hatched: predicted)")
    axes.set_title("Peak memory: measured vs predicted")
    axes.grid(True, axis="y", alpha=0.3)
    return Plot(figure, series)


def draw_all(results: Path, frame: pd.DataFrame) -> dict[str, Plot]:
    """Every figure of the report, by file name (the levels are those the tables show)."""
    levels = latest_levels(level_table(frame))
    ceiling = {"ceiling": throughput_vs_ceiling(levels)} if has_ceilings(levels) else {}
    return {
        "aggregate_throughput": aggregate_throughput(levels),
        **ceiling,
        "per_request_throughput": per_request_throughput(levels),
        "ttft": ttft_band(levels),
        "inter_token_latency": inter_token(levels),
        "latency_cdf": latency_cdfs(load_requests(results, levels), levels),
        "memory": memory_per_run(frame),
    }
