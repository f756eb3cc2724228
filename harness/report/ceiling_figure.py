"""Each series' tok/s beside the machine's decode ceiling, across concurrency."""

from __future__ import annotations

import pandas as pd

from harness.metrics import METRICS
from harness.report.cells import series_labels
from harness.report.frame import aggregate_shown, column
from harness.report.plotting import Plot, concurrency_axis, finish, new_figure, series_styles

CEILING = "decode_ceiling_tokens_per_s.value"
UTILISATION = "decode_bandwidth_utilisation.value"


def has_ceilings(levels: pd.DataFrame) -> bool:
    return bool(column(levels, CEILING).notna().any())


def _points(levels: pd.DataFrame, values: pd.Series) -> dict[str, dict[int, float]]:
    series: dict[str, dict[int, float]] = {}
    labels = series_labels(levels)
    for label, concurrency, value in zip(labels, levels["concurrency"], values, strict=True):
        if not pd.isna(value):
            series.setdefault(label, {})[int(concurrency)] = float(value)
    return dict(sorted(series.items()))


def throughput_vs_ceiling(levels: pd.DataFrame) -> Plot:
    """Steady aggregate tok/s (solid, markers) and the decode ceiling at the same running
    sequences (dotted), one colour per engine; log scale, as the two can be far apart."""
    figure, (axes,) = new_figure()
    shown, _ = aggregate_shown(levels)
    measured = _points(levels, shown)
    ceiling = _points(levels, column(levels, CEILING))
    styles = series_styles(levels, series_labels(levels))
    for label, points in measured.items():
        axes.plot(list(points), list(points.values()), label=label, **styles[label])
        if label in ceiling:
            top = ceiling[label]
            axes.plot(list(top), list(top.values()), color=styles[label]["color"], linestyle=":",
                      linewidth=1.6, label=f"{label}: bandwidth ceiling")  # fmt: skip
    axes.set_yscale("log")
    metric = METRICS["steady_output_tokens_per_s"]
    axes.set_ylabel(f"output tokens per second ({metric.unit})")
    axes.set_title("Throughput beside the memory-bandwidth ceiling")
    concurrency_axis(axes, levels["concurrency"])
    finish(figure, y_from_zero=False)
    return Plot(figure, {"measured": measured, "ceiling": ceiling})
