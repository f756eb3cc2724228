"""What every figure of a report shares: the Plot it returns, one colour per engine (and a
line style per series of one engine), the concurrency axis, one legend below, and files
written with no dates or random ids in them (byte-identical when drawn twice)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

SVG_HASH_SALT = "harness-report"
LINE_STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P")
CONCURRENCY_LABEL = "concurrency (requests in flight)"


@dataclass
class Plot:
    """A figure and, per series label, the values it shows (x -> y, or a named value)."""

    figure: Figure
    series: dict[str, Any] = field(default_factory=dict)
    # per series label, the 95% confidence half-width drawn as an error bar at each x
    errors: dict[str, Any] = field(default_factory=dict)


def engine_colours(engines: Iterable[str]) -> dict[str, str]:
    """A stable colour per engine: the sorted distinct names, in order, onto tab10."""
    palette = matplotlib.colormaps["tab10"].colors
    names = sorted(set(engines))
    return {
        name: matplotlib.colors.to_hex(palette[i % len(palette)]) for i, name in enumerate(names)
    }


def series_styles(levels: pd.DataFrame, labels: pd.Series) -> dict[str, dict[str, Any]]:
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


def concurrency_axis(axes: Any, concurrencies: Iterable[int]) -> None:
    ticks = sorted(set(int(c) for c in concurrencies))
    axes.set_xscale("log", base=2)
    axes.xaxis.set_major_locator(FixedLocator(ticks))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.set_xticklabels([str(t) for t in ticks])
    axes.set_xlabel(CONCURRENCY_LABEL)
    axes.grid(True, alpha=0.3)


def new_figure(width: float = 7.0, height: float = 4.5, ncols: int = 1) -> tuple[Figure, Any]:
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.subplots(1, ncols, squeeze=False)[0]


def finish(figure: Figure, y_from_zero: bool = True) -> None:
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


def save(plot: Plot, out: Path, name: str) -> list[Path]:
    """Write `name`.png and `name`.svg under `out`, with no dates or random ids in them."""
    out.mkdir(parents=True, exist_ok=True)
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASH_SALT, "svg.fonttype": "path"}):
        plot.figure.savefig(png, format="png", dpi=110, metadata={"Software": None})
        plot.figure.savefig(svg, format="svg", metadata={"Date": None})
    return [png, svg]
