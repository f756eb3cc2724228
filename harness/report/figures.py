"""Figures of a store, drawn with matplotlib's object API (Agg for PNG; no pyplot state).

Each function returns the Figure and the data it plotted, so tests can hold the figures to
the tables. Colours: one per engine, from the sorted engine names onto tab10.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

from harness.metrics import METRICS
from harness.report.cells import latest_levels, series_labels
from harness.report.frame import (
    AGGREGATE,
    PEAK,
    PER_REQUEST,
    PREDICTED,
    WHOLE_LEVEL,
    aggregate_shown,
    column,
    level_table,
    load_requests,
)

SVG_HASH_SALT = "harness-report"
LINE_STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P")
CONCURRENCY_LABEL = "concurrency (requests in flight)"


@dataclass
class Plot:
    """A figure and, per series label, the values it shows (x -> y, or a named value)."""

    figure: Figure
    series: dict[str, Any] = field(default_factory=dict)


def engine_colours(engines: Iterable[str]) -> dict[str, str]:
    """A stable colour per engine: the sorted distinct names, in order, onto tab10."""
    palette = matplotlib.colormaps["tab10"].colors
    names = sorted(set(engines))
    return {
        name: matplotlib.colors.to_hex(palette[i % len(palette)]) for i, name in enumerate(names)
    }


def _styles(levels: pd.DataFrame, labels: pd.Series) -> dict[str, dict[str, Any]]:
    """Colour by engine; line style and marker tell apart the series of one engine."""
    colours = engine_colours(levels["engine"])
    styles: dict[str, dict[str, Any]] = {}
    per_engine: dict[str, int] = {}
    for engine, label in sorted(set(zip(levels["engine"], labels, strict=True))):
        index = per_engine.get(engine, 0)
        per_engine[engine] = index + 1
        styles[label] = {
            "color": colours[engine],
            "linestyle": LINE_STYLES[index % len(LINE_STYLES)],
            "marker": MARKERS[index % len(MARKERS)],
        }
    return styles


def _concurrency_axis(axes: Any, concurrencies: Iterable[int]) -> None:
    ticks = sorted(set(int(c) for c in concurrencies))
    axes.set_xscale("log", base=2)
    axes.xaxis.set_major_locator(FixedLocator(ticks))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.set_xticklabels([str(t) for t in ticks])
    axes.set_xlabel(CONCURRENCY_LABEL)
    axes.grid(True, alpha=0.3)


def _series(levels: pd.DataFrame, value_column: str) -> dict[str, dict[int, float]]:
    labels = series_labels(levels)
    values = column(levels, value_column)
    series: dict[str, dict[int, float]] = {}
    for label, concurrency, value in zip(labels, levels["concurrency"], values, strict=True):
        if not pd.isna(value):
            series.setdefault(label, {})[int(concurrency)] = float(value)
    return dict(sorted(series.items()))


def _line(axes: Any, levels: pd.DataFrame, value_column: str, metric_key: str, stat: str) -> dict:
    series = _series(levels, value_column)
    styles = _styles(levels, series_labels(levels))
    for label, points in series.items():
        axes.plot(list(points), list(points.values()), label=label, **styles[label])
    metric = METRICS[metric_key]
    axes.set_ylabel(f"{metric.label}{' ' + stat if stat else ''} ({metric.unit})")
    _concurrency_axis(axes, levels["concurrency"])
    return series


def _new(width: float = 7.0, height: float = 4.5, ncols: int = 1) -> tuple[Figure, Any]:
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.subplots(1, ncols, squeeze=False)[0]


def _finish(figure: Figure, y_from_zero: bool = True) -> None:
    """Start every y axis at zero (after drawing, so the top still fits the data) and add
    one legend for the whole figure, below the plots."""
    handles: dict[str, Any] = {}
    for axes in figure.axes:
        if y_from_zero:
            axes.set_ylim(bottom=0)
        for handle, label in zip(*axes.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if handles:
        ordered = sorted(handles)
        # as many columns as fit the figure's width at about 14 small characters per inch
        per_row = int(figure.get_figwidth() * 14) // (max(map(len, ordered)) + 6)
        figure.legend(
            [handles[label] for label in ordered],
            ordered,
            loc="outside lower center",
            ncols=max(1, min(len(ordered), per_row)),
            fontsize="small",
        )


def aggregate_throughput(levels: pd.DataFrame) -> Plot:
    """Aggregate output tok/s against concurrency, one line per cell x machine: over the
    steady window (left; the whole level's where a run recorded none) and the whole level."""
    figure, (steady_axes, whole_axes) = _new(width=11.0, ncols=2)
    shown, window = aggregate_shown(levels)
    levels = levels.assign(aggregate_shown=shown)
    steady = _line(steady_axes, levels, "aggregate_shown", "steady_output_tokens_per_s", "")
    whole = _line(whole_axes, levels, AGGREGATE, "aggregate_output_tokens_per_s", WHOLE_LEVEL)
    fallback = f" ({WHOLE_LEVEL} where not recorded)" if (window == WHOLE_LEVEL).any() else ""
    steady_axes.set_title(f"Aggregate throughput, steady window{fallback}", fontsize="medium")
    whole_axes.set_title(f"Aggregate throughput, {WHOLE_LEVEL}", fontsize="medium")
    _finish(figure)
    return Plot(figure, {"steady": steady, "whole_level": whole})


def per_request_throughput(levels: pd.DataFrame) -> Plot:
    """Mean per-request output tok/s against concurrency."""
    figure, (axes,) = _new()
    series = _line(axes, levels, PER_REQUEST, "output_tokens_per_s_per_request", "mean")
    axes.set_title("Per-request throughput")
    _finish(figure)
    return Plot(figure, series)


def ttft_band(levels: pd.DataFrame) -> Plot:
    """TTFT p50 as a line, the p90 dashed, the band up to p99 shaded (up to the max where
    a level has too few samples for a p99; p90 likewise has gaps)."""
    figure, (axes,) = _new()
    p50 = _line(axes, levels, "ttft_ms.p50", "ttft_ms", "p50, p90 dashed, p99/max band")
    p90 = _series(levels, "ttft_ms.p90")
    top = column(levels, "ttft_ms.p99").fillna(column(levels, "ttft_ms.max"))
    p99 = _series(levels.assign(ttft_top=top), "ttft_top")
    styles = _styles(levels, series_labels(levels))
    for label, points in p50.items():
        xs = list(points)
        colour = styles[label]["color"]
        upper = [p99.get(label, {}).get(x, np.nan) for x in xs]
        axes.fill_between(xs, list(points.values()), upper, color=colour, alpha=0.15, lw=0)
        tail = [p90.get(label, {}).get(x, np.nan) for x in xs]
        axes.plot(xs, tail, color=colour, linestyle="--", linewidth=0.8)
    axes.set_title("Time to first token")
    _finish(figure)
    return Plot(figure, {"p50": p50, "p90": p90, "p99_or_max": p99})


def inter_token(levels: pd.DataFrame) -> Plot:
    """ITL p50 and TPOT p50 against concurrency, side by side."""
    figure, (itl_axes, tpot_axes) = _new(width=11.0, ncols=2)
    itl = _line(itl_axes, levels, "itl_ms.p50", "itl_ms", "p50")
    tpot = _line(tpot_axes, levels, "tpot_ms.p50", "tpot_ms", "p50")
    itl_axes.set_title("Inter-token latency")
    tpot_axes.set_title("Time per output token")
    _finish(figure)
    return Plot(figure, {"itl_ms": itl, "tpot_ms": tpot})


def latency_cdfs(requests: pd.DataFrame, levels: pd.DataFrame) -> Plot:
    """Empirical CDFs of TTFT (top) and E2E latency (bottom), one column per concurrency."""
    concurrencies = sorted(int(c) for c in levels["concurrency"].unique())
    figure = Figure(figsize=(3.2 * max(len(concurrencies), 2), 6.0), layout="constrained")
    grid = figure.subplots(2, max(len(concurrencies), 1), squeeze=False)
    styles = _styles(levels, series_labels(levels))
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
    _finish(figure, y_from_zero=False)
    return Plot(figure, dict(sorted(plotted.items())))


def memory_per_run(frame: pd.DataFrame) -> Plot:
    """Per run (keyed by run id): the measured peak memory and its kind, and the predicted."""
    levels = level_table(frame)
    levels = levels.assign(series=series_labels(levels))
    colours = engine_colours(levels["engine"])
    runs = sorted(levels.groupby("run_id", sort=True), key=lambda item: item[0])
    figure, (axes,) = _new(width=max(7.0, 1.4 * len(runs)), height=5.0)
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


def save(plot: Plot, out: Path, name: str) -> list[Path]:
    """Write `name`.png and `name`.svg under `out`, with no dates or random ids in them."""
    out.mkdir(parents=True, exist_ok=True)
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASH_SALT, "svg.fonttype": "path"}):
        plot.figure.savefig(png, format="png", dpi=110, metadata={"Software": None})
        plot.figure.savefig(svg, format="svg", metadata={"Date": None})
    return [png, svg]


def draw_all(results: Path, frame: pd.DataFrame) -> dict[str, Plot]:
    """Every figure of the report, by file name (the levels are those the tables show)."""
    levels = latest_levels(level_table(frame))
    return {
        "aggregate_throughput": aggregate_throughput(levels),
        "per_request_throughput": per_request_throughput(levels),
        "ttft": ttft_band(levels),
        "inter_token_latency": inter_token(levels),
        "latency_cdf": latency_cdfs(load_requests(results, levels), levels),
        "memory": memory_per_run(frame),
    }
