"""One figure per run over time (timeseries.csv): output tokens per second, requests in
flight (the client's, and the engine's running and waiting), the engine's KV cache use
and preemptions, each level shaded and named, so saturation and preemption show where
they happen."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from harness.report.plotting import Plot, finish
from harness.telemetry.series import ENGINE_GAUGES, SERIES_FILE

# The shortest span between two scrapes that a counter's rate is taken over.
MIN_RATE_SPAN_S = 0.5


def read_series(run_dir: Path) -> pd.DataFrame | None:
    """The run's time series, with `t_s` since its first level started; None without one."""
    path = run_dir / SERIES_FILE
    if not path.exists():
        return None
    try:
        series = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError):
        return None
    if series.empty:
        return None
    starts = (series["t_mono_s"] - series["t_level_s"]).groupby(series["level_index"]).min()
    series["t_s"] = series["t_mono_s"] - starts.min()
    series.attrs["level_starts_s"] = (starts - starts.min()).to_dict()
    return series


def _by_level(rows: pd.DataFrame) -> pd.Series:
    """Values by t_s (summed over labels), a gap (NaN) after each level so that no line
    joins one level to the next across the pause between them."""
    parts = []
    for _, level in rows.groupby("level_index", sort=False):
        values = level.groupby("t_s")["value"].sum().sort_index()
        parts.append(pd.concat([values, pd.Series([np.nan], index=[values.index[-1] + 1e-6])]))
    return pd.concat(parts).sort_index() if parts else pd.Series(dtype=float)


def gauge(series: pd.DataFrame, meaning: str) -> pd.Series:
    """An engine series by meaning (ENGINE_GAUGES), summed over labels, indexed by t_s."""
    names = ENGINE_GAUGES[meaning]
    engine = series[series["source"] == "engine"]
    return _by_level(engine[engine["name"].str.partition("{")[0].isin(names)])


def client(series: pd.DataFrame, name: str) -> pd.Series:
    return _by_level(series[(series["source"] == "client") & (series["name"] == name)])


def _levels(run_dir: Path) -> dict[int, str]:
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    names = {}
    for level in summary.get("levels", []):
        mode, rate = level.get("mode") or "concurrency", level.get("rate_per_s")
        name = f"{rate:g}/s" if mode == "rate" else f"c={level['concurrency']}"
        repeat = f" #{level['repeat'] + 1}" if level.get("repeat") else ""
        names[level.get("level_index", 0)] = name + repeat
    return names


def _shade(axes: list[Any], series: pd.DataFrame, names: dict[int, str]) -> None:
    starts = series.attrs["level_starts_s"]
    ends = series.groupby("level_index")["t_s"].max().to_dict()
    for n, (index, start) in enumerate(sorted(starts.items(), key=lambda item: item[1])):
        for ax in axes:
            ax.axvspan(start, ends[index], color="0.92" if n % 2 else "0.97", lw=0, zorder=0)
        axes[0].annotate(
            names.get(index, str(index)), (start, 1.0), xycoords=("data", "axes fraction"),
            xytext=(2, -10), textcoords="offset points", fontsize="x-small", color="0.3",
        )  # fmt: skip


def run_timeline(run_dir: Path, title: str) -> Plot | None:
    """The run's figure over time, or None where it recorded no time series."""
    series = read_series(run_dir)
    if series is None:
        return None
    figure = Figure(figsize=(11.0, 7.5), layout="constrained")
    rate_axes, flight_axes, kv_axes = figure.subplots(3, 1, sharex=True)
    plotted: dict[str, dict[float, float]] = {}

    def draw(axes: Any, values: pd.Series, label: str, **style: Any) -> None:
        if len(values):
            axes.plot(values.index, values.to_numpy(), label=label, **style)
            kept = values.dropna()
            plotted[label] = dict(zip(kept.index, kept.to_numpy(), strict=True))

    draw(rate_axes, client(series, "output_tokens_per_s"), "client: output tok/s", color="C0")
    generated = gauge(series, "generated_tokens_total")
    if generated.notna().sum() > 1:  # the counter's rise per second, level by level
        seconds = np.diff(generated.index, prepend=np.nan)
        # a level's last scrape may follow the one before by a moment: no rate from that
        rate = (generated.diff() / seconds).where(seconds >= MIN_RATE_SPAN_S)
        draw(rate_axes, rate.clip(lower=0), "engine: generated tok/s", color="C0", ls=":")
    draw(flight_axes, client(series, "in_flight"), "client: in flight", color="C1")
    draw(flight_axes, gauge(series, "requests_running"), "engine: running", color="C2", ls="--")
    draw(flight_axes, gauge(series, "requests_waiting"), "engine: waiting", color="C3", ls="--")
    kv = gauge(series, "kv_cache_usage")
    draw(kv_axes, kv * 100, "engine: KV cache use (%)", color="C4")
    preempted = gauge(series, "preemptions_total")
    if len(preempted):
        first = preempted.dropna().iloc[0]
        draw(kv_axes, preempted - first, "engine: preemptions (cumulative)", color="C5")
    if not len(kv) and not len(preempted):
        kv_axes.annotate(
            "the engine exports no KV cache gauge nor preemption counter",
            (0.5, 0.5), xycoords="axes fraction", ha="center", color="0.4",
        )  # fmt: skip
    rate_axes.set_ylabel("tok/s")
    flight_axes.set_ylabel("requests")
    kv_axes.set_ylabel("% of KV cache / count")
    kv_axes.set_xlabel("seconds since the first level started")
    rate_axes.set_title(title, fontsize="medium")
    for axes in (rate_axes, flight_axes, kv_axes):
        axes.grid(True, alpha=0.3)
    _shade([rate_axes, flight_axes, kv_axes], series, _levels(run_dir))
    finish(figure)
    return Plot(figure, plotted)
