"""A table ready to show (markdown and HTML) and how its cells are written."""

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
from harness.report.cells import KEY_TITLES, SERIES_KEYS, applicable, implied, varies
from harness.report.table import percent as percent_text
from harness.report.table import percentile_text

# A cell that shows a number: "1,234.5", "-", "2.00x", "45.2 (interrupted)", "474 (gpu)",
# "max 2,395.6 (n=16)", "45.2 ± 1.3 (CV 1.2%, k=3)".
NUMBER = re.compile(r"^(max )?(-|-?[\d,]+(\.\d+)?x?)( ± [\d,]+(\.\d+)?)?( \(.+\))?$")


def fmt(value: Any, digits: int = 1) -> str:
    """A table cell: thousands separators, fixed decimals, '-' for missing."""
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value) if str(value) != "" else "-"


def percent(value: Any) -> str:
    """A fraction as a percentage cell, "45%" ("4.5%" below a tenth); '-' for missing."""
    missing = value is pd.NA or (isinstance(value, float) and pd.isna(value))
    return percent_text(None if missing else value)


def marked(value: Any, *notes: str) -> str:
    """A number with what the reader must know about it, in brackets: "45.2 (interrupted)"."""
    text = fmt(value)
    shown = [note for note in notes if note and note != "ok"]
    return text if text == "-" or not shown else f"{text} ({', '.join(shown)})"


def mean_cell(value: Any, ci95: Any, cv: Any, repeats: Any, *notes: str, digits: int = 1) -> str:
    """The mean of repeats with its 95% confidence interval and coefficient of variation,
    "45.2 ± 1.3 (CV 1.2%, k=3)"; a level run once is its value, as `marked` writes it."""
    text = fmt(value, digits)
    k = 0 if repeats is None or pd.isna(repeats) else int(repeats)
    if text == "-" or k < 2 or ci95 is None or pd.isna(ci95):
        return marked(value, *notes) if digits == 1 else text
    spread = f"CV {cv:.1%}" if cv is not None and not pd.isna(cv) else ""
    shown = [note for note in (spread, f"k={k}", *notes) if note and note != "ok"]
    return f"{text} ± {fmt(ci95, digits)} ({', '.join(shown)})"


def percentile_cell(stat: str, value: Any, maximum: Any, n: Any, digits: int = 1) -> str:
    """A percentile with its sample count, "2,339.3 (n=16)"; from fewer samples than it
    needs (MIN_SAMPLES), the maximum, named so: "max 2,395.6 (n=16)"."""
    count = 0 if n is None or pd.isna(n) else int(n)
    return percentile_text(stat, value, maximum, count, lambda v: fmt(v, digits))


def header(metric_key: str, detail: str = "") -> str:
    """A column title from the metric registry: label, detail, unit."""
    metric = METRICS[metric_key]
    return f"{metric.label}{' ' + detail if detail else ''} ({metric.unit})"


def split_identity(
    table: pd.DataFrame, keys: Sequence[str] = SERIES_KEYS
) -> tuple[list[str], dict[str, Any]]:
    """The identity keys that vary between rows, and the values of those that do not (a key
    another one already says, such as each engine's kind, is left out while it varies)."""
    varying = [key for key in keys if key == "engine" or varies(table[key])]
    for key in [key for key in varying if implied(table, key)]:
        varying.remove(key)
        keys = [other for other in keys if other != key]
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


def write_csv(table: pd.DataFrame, path: Path) -> Path:
    table.to_csv(path, index=False, lineterminator="\n")
    return path
