"""The same cells (engine, model, settings, concurrency) side by side across machines.

Each value of another machine comes with its ratio to the baseline machine's value; whether
a ratio above 1 is good depends on the metric, so every row says which direction is better.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from harness.metrics import METRICS
from harness.report.cells import CELL_KEYS, KEY_TITLES, latest_levels
from harness.report.frame import level_table
from harness.report.run_files import SCALAR_STAT
from harness.report.view import View, caption, fmt, percentile_cell, split_identity, write_csv

COMPARED = (
    ("steady_output_tokens_per_s", "value"),
    ("output_tokens_per_s_per_request", "mean"),
    ("aggregate_output_tokens_per_s", "value"),
    ("ttft_ms", "p50"),
    ("ttft_ms", "p99"),
    ("tpot_ms", "p50"),
    ("peak_memory_mib", "value"),
)


class CompareError(Exception):
    """Nothing to compare: one machine only, an unknown baseline, or no shared cell."""


def ratio_column(machine: str, baseline: str) -> str:
    return f"{machine} / {baseline}"


def count_column(machine: str) -> str:
    """The sample count behind a machine's percentile."""
    return f"{machine} n"


def _value(level: pd.Series | None, name: str) -> float:
    if level is None or name not in level.index or pd.isna(level[name]):
        return float("nan")
    return float(level[name])


def machines_of(frame: pd.DataFrame) -> dict[str, str]:
    """Machine id -> a short description (label, GPU, CPU) of each machine in the frame."""
    described = frame.drop_duplicates("machine_id").sort_values("machine_id")
    return {
        row.machine_id: f"{row.machine_label}: GPU {row.gpu_name}, CPU {row.cpu or '?'}"
        for row in described.itertuples()
    }


def compare_machines(frame: pd.DataFrame, baseline: str | None = None) -> tuple[pd.DataFrame, str]:
    """One row per shared cell x concurrency x compared metric; a value column per machine
    and a ratio column per machine other than the baseline (default: the first machine id)."""
    levels = latest_levels(level_table(frame))
    machines = sorted(levels["machine_id"].unique())
    if len(machines) < 2:
        raise CompareError(
            f"the store holds runs of one machine only ({', '.join(machines)}): "
            "nothing to compare; run the same cells on another machine first"
        )
    baseline = baseline or machines[0]
    if baseline not in machines:
        raise CompareError(f"baseline {baseline!r} has no runs; machines: {', '.join(machines)}")
    others = [machine for machine in machines if machine != baseline]
    rows = []
    for key, group in levels.groupby([*CELL_KEYS, "concurrency"], dropna=False, sort=True):
        by_machine = {row["machine_id"]: row for _, row in group.iterrows()}
        if baseline not in by_machine or len(by_machine) < 2:
            continue
        for metric_key, stat in COMPARED:
            name = f"{metric_key}.{stat}"
            base = _value(by_machine[baseline], name)
            metric = METRICS[metric_key]
            row: dict[str, Any] = dict(zip([*CELL_KEYS, "concurrency"], key, strict=True))
            row.update(metric=metric_key, stat=stat, unit=metric.unit, better=metric.better)
            row[baseline] = base
            for machine in others:
                value = _value(by_machine.get(machine), name)
                row[machine] = value
                row[ratio_column(machine, baseline)] = value / base if base else float("nan")
            if stat.startswith("p"):
                for machine in machines:
                    count = _value(by_machine.get(machine), f"{metric_key}.n")
                    row[count_column(machine)] = count
                    row[f"{machine} max"] = _value(by_machine.get(machine), f"{metric_key}.max")
            if stat == SCALAR_STAT and all(pd.isna(row[machine]) for machine in machines):
                continue  # no machine recorded it (steady tok/s of older runs)
            if metric_key == "peak_memory_mib":
                kinds = {m: level["peak_memory_kind"] for m, level in by_machine.items()}
                row["note"] = ", ".join(f"{m}: {k or '?'}" for m, k in sorted(kinds.items()))
            rows.append(row)
    if not rows:
        raise CompareError(
            f"no cell was measured both on the baseline {baseline!r} and on another machine"
        )
    return pd.DataFrame(rows), baseline


def _shown(values: dict[str, Any], machine: str) -> str:
    """A machine's value; a percentile with its sample count (the max below MIN_SAMPLES)."""
    count = values.get(count_column(machine))
    if count is None or pd.isna(count):
        return fmt(values[machine])
    return percentile_cell(values["stat"], values[machine], values[f"{machine} max"], count)


def compare_view(table: pd.DataFrame, baseline: str, machines: dict[str, str]) -> View:
    """The comparison as a table; ratios are other machine / baseline."""
    others = [m for m in machines if m != baseline and m in table.columns]
    varying, constant = split_identity(table, CELL_KEYS)
    headers = [KEY_TITLES[key] for key in varying] + ["concurrency", "metric", f"{baseline}"]
    for machine in others:
        headers += [machine, ratio_column(machine, baseline)]
    headers.append("note")
    rows = []
    # records, not itertuples: machine ids such as "gpu-box" are not Python identifiers
    for values in table.to_dict("records"):
        metric = METRICS[values["metric"]]
        stat = "" if values["stat"] == SCALAR_STAT else f" {values['stat']}"
        name = f"{metric.label}{stat} ({metric.unit}, {metric.better} is better)"
        cells = [fmt(values[key]) for key in varying] + [str(values["concurrency"]), name]
        cells.append(_shown(values, baseline))
        for machine in others:
            ratio = values[ratio_column(machine, baseline)]
            cells += [_shown(values, machine), "-" if pd.isna(ratio) else f"{ratio:.2f}x"]
        rows.append([*cells, fmt(values.get("note"))])
    described = "; ".join(f"{machine} = {text}" for machine, text in machines.items())
    notes = " ".join(part for part in (caption(constant), f"Machines: {described}.") if part)
    return View(f"Machines compared (baseline {baseline})", notes, headers, rows)


def write_compare(frame: pd.DataFrame, out: Path, baseline: str | None = None) -> View:
    """Write compare.md and compare.csv under `out`; returns the table."""
    table, baseline = compare_machines(frame, baseline)
    view = compare_view(table, baseline, machines_of(frame))
    out.mkdir(parents=True, exist_ok=True)
    write_csv(table, out / "compare.csv")
    (out / "compare.md").write_text(view.markdown())
    return view
