"""Store-wide tables, as markdown and CSV: throughput by concurrency, and engines compared."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from harness.metrics import METRICS
from harness.report.cells import SERIES_KEYS, applicable, latest_levels, series_labels, varies
from harness.report.frame import level_table

PER_REQUEST = "output_tokens_per_s_per_request.mean"
AGGREGATE = "aggregate_output_tokens_per_s.value"
TTFT_P50 = "ttft_ms.p50"
TTFT_P99 = "ttft_ms.p99"
PEAK = "peak_memory_mib.value"
PREDICTED = "predicted_memory_mib.value"
SENT = "requests_sent.value"
FAILED = "requests_failed.value"

# A cell that shows a number: "1,234.5", "-", "2.00x", "45.2 (interrupted)", "474 (gpu)".
NUMBER = re.compile(r"^(-|-?[\d,]+(\.\d+)?x?( \(.+\))?)$")

KEY_TITLES = {
    "machine_id": "machine",
    "experiment": "experiment",
    "engine": "engine",
    "engine_kind": "kind",
    "engine_parallel": "parallel",
    "engine_ctx_size": "ctx",
    "engine_kv_cache_type": "KV cache",
    "engine_flash_attn": "flash attn",
    "engine_n_gpu_layers": "GPU layers",
    "engine_gpu_memory_utilization": "GPU mem fraction",
    "model": "model",
    "quant": "quant",
    "workload": "workload",
    "max_tokens": "max tokens",
    "load_mode": "load",
}


def column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column of `frame`, or NaN throughout where no run measured it."""
    if name in frame.columns:
        return frame[name].astype("float64")
    return pd.Series(float("nan"), index=frame.index, dtype="float64")


def fmt(value: Any, digits: int = 1) -> str:
    """A table cell: thousands separators, fixed decimals, '-' for missing."""
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value) if str(value) != "" else "-"


def header(metric_key: str, detail: str = "") -> str:
    """A column title from the metric registry: label, detail, unit."""
    metric = METRICS[metric_key]
    return f"{metric.label}{' ' + detail if detail else ''} ({metric.unit})"


def split_identity(
    table: pd.DataFrame, keys: Sequence[str] = SERIES_KEYS
) -> tuple[list[str], dict[str, Any]]:
    """The identity keys that vary between rows, and the values of those that do not."""
    varying = [key for key in keys if key == "engine" or varies(table[key])]
    if "engine_kind" in varying and table.groupby("engine")["engine_kind"].nunique().max() == 1:
        varying.remove("engine_kind")  # the engine name already says it
        keys = [key for key in keys if key != "engine_kind"]
    constant = {}
    for key in keys:
        values = applicable(table[key])
        if key not in varying and len(values):  # a knob of no engine here is left out
            constant[key] = values.iloc[0]
    return varying, constant


def caption(constant: dict[str, Any]) -> str:
    shown = [f"{KEY_TITLES[key]} {fmt(value)}" for key, value in constant.items()]
    return f"All rows: {', '.join(shown)}." if shown else ""


@dataclass(frozen=True)
class View:
    """A table ready to show: title, a caption for what all rows share, formatted cells."""

    title: str
    caption: str
    headers: list[str]
    rows: list[list[str]]

    def _table(self, tablefmt: str) -> str:
        """Numbers right-aligned, names left; tabulate escapes every cell of an HTML table."""
        columns = list(zip(*self.rows, strict=True)) if self.rows else []
        align = ["right" if all(NUMBER.match(c) for c in cells) else "left" for cells in columns]
        return tabulate(
            self.rows,
            headers=self.headers,
            tablefmt=tablefmt,
            disable_numparse=True,
            colalign=align or None,
        )

    def markdown(self) -> str:
        caption = f"{self.caption}\n\n" if self.caption else ""
        return f"### {self.title}\n\n{caption}{self._table('github')}\n"

    def html(self) -> str:
        table = self._table("html")
        caption = f'<p class="caption">{escape(self.caption)}</p>\n' if self.caption else ""
        return f"<h3>{escape(self.title)}</h3>\n{caption}{table}\n"


def markdown(views: Sequence[View]) -> str:
    return "\n".join(view.markdown() for view in views)


def throughput_by_concurrency(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-request and aggregate tok/s of every cell x machine at each concurrency."""
    levels = latest_levels(level_table(frame))
    table = levels[[*SERIES_KEYS, "concurrency", "level_status", "run_id"]].copy()
    table.insert(0, "series", series_labels(levels))
    table["output_tokens_per_s_per_request_mean"] = column(levels, PER_REQUEST)
    table["aggregate_output_tokens_per_s"] = column(levels, AGGREGATE)
    return table


def _with_status(value: float, status: str) -> str:
    text = fmt(value)
    return text if status == "ok" or text == "-" else f"{text} ({status})"


def throughput_views(table: pd.DataFrame) -> list[View]:
    """The '1 / 5 / 10 / 20 concurrent' shape: one row per engine, one column per level."""
    varying, constant = split_identity(table)
    concurrencies = sorted(int(c) for c in table["concurrency"].unique())
    headers = [KEY_TITLES[key] for key in varying] + [f"{c} concurrent" for c in concurrencies]
    sections = (
        ("output_tokens_per_s_per_request_mean", "output_tokens_per_s_per_request", "mean"),
        ("aggregate_output_tokens_per_s", "aggregate_output_tokens_per_s", ""),
    )
    views = []
    for value_column, metric_key, detail in sections:
        rows = []
        for key, group in table.groupby(varying, dropna=False, sort=True):
            by_level = {int(r.concurrency): r for r in group.itertuples()}
            cells = [
                _with_status(getattr(by_level[c], value_column), by_level[c].level_status)
                if c in by_level
                else "-"
                for c in concurrencies
            ]
            rows.append([fmt(k) for k in key] + cells)
        views.append(View(header(metric_key, detail), caption(constant), headers, rows))
    return views


def highest_common_concurrency(levels: pd.DataFrame) -> int | None:
    """The highest concurrency that every cell x machine was measured at (None: none is)."""
    sets = [set(g["concurrency"]) for _, g in levels.groupby(list(SERIES_KEYS), dropna=False)]
    common = set.intersection(*sets) if sets else set()
    return int(max(common)) if common else None


COMPARISON_VALUES = (
    "single_request_tok_s",
    "at_concurrency",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "aggregate_tok_s",
    "level_status",
    "peak_memory_mib",
    "peak_memory_kind",
    "predicted_memory_mib",
    "error_rate",
)


def engine_comparison(frame: pd.DataFrame, concurrency: int | None = None) -> pd.DataFrame:
    """One row per cell x machine: the headline figures, aggregate at one concurrency.

    The concurrency defaults to the highest common one; where there is none, each row uses
    its own highest, and `at_concurrency` says which.
    """
    levels = latest_levels(level_table(frame))
    chosen = concurrency if concurrency is not None else highest_common_concurrency(levels)
    levels = levels.assign(series=series_labels(levels))
    rows = []
    for key, group in levels.groupby(list(SERIES_KEYS), dropna=False, sort=True):
        at = int(group["concurrency"].max()) if chosen is None else chosen
        single = group[group["concurrency"] == 1]
        level = group[group["concurrency"] == at]
        peak = column(group, PEAK)
        has_peak = peak.notna().any()
        sent = column(group, SENT).sum()
        rows.append(
            {
                "series": group["series"].iloc[0],
                **dict(zip(SERIES_KEYS, key, strict=True)),
                "single_request_tok_s": column(single, PER_REQUEST).max(),
                "at_concurrency": at,
                "ttft_p50_ms": column(level, TTFT_P50).max(),
                "ttft_p99_ms": column(level, TTFT_P99).max(),
                "aggregate_tok_s": column(level, AGGREGATE).max(),
                "level_status": level["level_status"].iloc[0] if len(level) else "",
                "peak_memory_mib": peak.max(),
                "peak_memory_kind": group.loc[peak.idxmax(), "peak_memory_kind"]
                if has_peak
                else "",
                "predicted_memory_mib": column(group, PREDICTED).max(),
                "error_rate": column(group, FAILED).sum() / sent if sent else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=["series", *SERIES_KEYS, *COMPARISON_VALUES])


def comparison_view(table: pd.DataFrame, concurrency: int | None) -> View:
    """The engine comparison to show; `concurrency` None means each row's highest."""
    varying, constant = split_identity(table)
    at = f"@ {concurrency} concurrent" if concurrency is not None else "@ highest concurrency"
    headers = [KEY_TITLES[key] for key in varying] + [
        header("output_tokens_per_s_per_request", "@ 1 concurrent"),
        header("ttft_ms", f"p50 {at}"),
        header("ttft_ms", f"p99 {at}"),
        header("aggregate_output_tokens_per_s", at),
        header("peak_memory_mib", "measured (kind)"),
        f"predicted memory ({METRICS['peak_memory_mib'].unit})",
        header("error_rate", "all levels"),
    ]
    rows = []
    for row in table.itertuples(index=False):
        aggregate = _with_status(row.aggregate_tok_s, row.level_status or "ok")
        if concurrency is None and aggregate != "-":
            aggregate += f" (c={row.at_concurrency})"
        memory = fmt(row.peak_memory_mib, 0)
        rows.append(
            [fmt(getattr(row, key)) for key in varying]
            + [
                fmt(row.single_request_tok_s),
                fmt(row.ttft_p50_ms),
                fmt(row.ttft_p99_ms),
                aggregate,
                f"{memory} ({row.peak_memory_kind})" if row.peak_memory_kind else memory,
                fmt(row.predicted_memory_mib, 0),
                fmt(row.error_rate, 3),
            ]
        )
    return View("Engines compared", caption(constant), headers, rows)


def write_csv(table: pd.DataFrame, path: Path) -> Path:
    table.to_csv(path, index=False, lineterminator="\n")
    return path


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
