"""The same cells side by side across machines (or engines on one machine), with each
side's ratio to the baseline and whether the difference is larger than the noise.

Each value of another side comes with its ratio to the baseline's value; whether a ratio
above 1 is good depends on the metric, so every row says which direction is better. Where
both sides ran the level repeatedly (repeats >= 2), Welch's t says whether their means
differ by more than their repeats' spread (95%); with one run a side, nobody can tell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from harness.metrics import METRICS
from harness.metrics.confidence import welch
from harness.report import weights
from harness.report.cells import (
    CELL_KEYS,
    DEPLOYMENT_KEYS,
    KEY_TITLES,
    LABEL_PARTS,
    latest_levels,
    varies,
)
from harness.report.frame import level_table
from harness.report.repeats import ci_column
from harness.report.run_files import SCALAR_STAT
from harness.report.view import (
    View,
    caption,
    fmt,
    percent,
    percentile_cell,
    split_identity,
    write_csv,
)

COMPARED = (
    ("steady_output_tokens_per_s", "value"),
    ("output_tokens_per_s_per_request", "mean"),
    ("aggregate_output_tokens_per_s", "value"),
    ("ttft_ms", "p50"),
    ("ttft_ms", "p99"),
    ("tpot_ms", "p50"),
    ("energy_per_output_token_j", "value"),
    ("peak_memory_mib", "value"),
    # normalised by each machine's own ceiling: comparable across hardware
    ("decode_bandwidth_utilisation", "value"),
    ("decode_ceiling_tokens_per_s", "value"),
)
SIDES = ("machine", "engine")
# What tells one engine deployment from another, the weights it served included; the rest
# of a cell is what it was sent.
ENGINE_KEYS = tuple(
    key for key in DEPLOYMENT_KEYS if key.startswith("engine") or key in ("quant", "weights")
)
SENT_KEYS = tuple(key for key in (*CELL_KEYS, "machine_id") if key not in ENGINE_KEYS)


class CompareError(Exception):
    """Nothing to compare: one machine only, an unknown baseline, or no shared cell."""


def ratio_column(machine: str, baseline: str) -> str:
    return f"{machine} / {baseline}"


def noise_column(side: str, baseline: str) -> str:
    return f"{side} vs {baseline}"


def count_column(machine: str) -> str:
    """The sample count behind a machine's percentile."""
    return f"{machine} n"


def _value(level: pd.Series | None, name: str) -> float:
    if level is None or name not in level.index or pd.isna(level[name]):
        return float("nan")
    return float(level[name])


def beyond_noise(base: pd.Series, other: pd.Series, name: str) -> str:
    """ "beyond noise (+12.3 ± 4.1)", "within noise (...)", or why it cannot be told."""
    k_a, k_b = int(base.get("repeats") or 1), int(other.get("repeats") or 1)
    if k_a < 2 or k_b < 2:
        return "unknown: run with repeats >= 2"
    sd_a, sd_b = _value(base, ci_column(name, "sd")), _value(other, ci_column(name, "sd"))
    mean_a, mean_b = _value(base, name), _value(other, name)
    if any(pd.isna(v) for v in (sd_a, sd_b, mean_a, mean_b)):
        return "unknown: not measured on both"
    test = welch(mean_a, sd_a, k_a, mean_b, sd_b, k_b)
    verdict = "beyond noise" if test["beyond_noise"] else "within noise"
    return f"{verdict} ({test['difference']:+,.1f} ± {test['ci95']:,.1f})"


def machines_of(frame: pd.DataFrame) -> dict[str, str]:
    """Machine id -> a short description (label, GPU, CPU) of each machine in the frame."""
    described = frame.drop_duplicates("machine_id").sort_values("machine_id")
    return {
        row.machine_id: f"{row.machine_label}: GPU {row.gpu_name}, CPU {row.cpu or '?'}"
        for row in described.itertuples()
    }


def engine_sides(levels: pd.DataFrame) -> pd.Series:
    """Each level's engine deployment: the engine, and its knobs that vary between runs of
    one engine, "llamacpp (parallel=4)"."""
    varying = [
        key
        for key in ENGINE_KEYS[1:]
        if varies(levels[key]) and levels.groupby("engine")[key].nunique().max() > 1
    ]

    def label(row: pd.Series) -> str:
        parts = [LABEL_PARTS[key].format(row[key]) for key in varying if row[key] != ""]
        return f"{row['engine']} ({', '.join(parts)})" if parts else str(row["engine"])

    return levels.apply(label, axis=1).astype(str)


def _sides(levels: pd.DataFrame, by: str) -> tuple[pd.Series, tuple[str, ...]]:
    """Each level's side (its machine, or its engine deployment) and the keys of a row."""
    if by == "machine":
        return levels["machine_id"].astype(str), CELL_KEYS
    return engine_sides(levels), SENT_KEYS


def compare_sides(
    frame: pd.DataFrame, baseline: str | None = None, by: str = "machine"
) -> tuple[pd.DataFrame, str, list[str]]:
    """One row per shared cell x concurrency x compared metric; a value column per side, and
    per side other than the baseline (default: the first) its ratio and noise verdict."""
    levels = latest_levels(level_table(frame))
    side, keys = _sides(levels, by)
    levels = levels.assign(side=side.to_numpy())
    sides = sorted(levels["side"].unique())
    if len(sides) < 2:
        raise CompareError(
            f"the store holds runs of one {by} only ({', '.join(sides)}): "
            f"nothing to compare; run the same cells on another {by} first"
        )
    baseline = baseline or sides[0]
    if baseline not in sides:
        raise CompareError(f"baseline {baseline!r} has no runs; {by}s: {', '.join(sides)}")
    others = [s for s in sides if s != baseline]
    rows = []
    for key, group in levels.groupby([*keys, "concurrency"], dropna=False, sort=True):
        by_side = {row["side"]: row for _, row in group.iterrows()}
        if baseline not in by_side or len(by_side) < 2:
            continue
        for metric_key, stat in COMPARED:
            row = _compared_row(by_side, baseline, others, metric_key, stat)
            if row is not None:
                rows.append({**dict(zip([*keys, "concurrency"], key, strict=True)), **row})
    if not rows:
        raise CompareError(
            f"no cell was measured both on the baseline {baseline!r} and on another {by}"
        )
    return pd.DataFrame(rows), baseline, sides


def _compared_row(
    by_side: dict[str, pd.Series], baseline: str, others: list[str], metric_key: str, stat: str
) -> dict[str, Any] | None:
    name, metric = f"{metric_key}.{stat}", METRICS[metric_key]
    base = _value(by_side[baseline], name)
    row: dict[str, Any] = {"metric": metric_key, "stat": stat, "unit": metric.unit}
    row.update(better=metric.better, **{baseline: base})
    for side in others:
        value = _value(by_side.get(side), name)
        row[side] = value
        row[ratio_column(side, baseline)] = value / base if base else float("nan")
        if side in by_side:
            row[noise_column(side, baseline)] = beyond_noise(by_side[baseline], by_side[side], name)
    if stat.startswith("p"):
        for side in (baseline, *others):
            row[count_column(side)] = _value(by_side.get(side), f"{metric_key}.n")
            row[f"{side} max"] = _value(by_side.get(side), f"{metric_key}.max")
    if stat == SCALAR_STAT and all(pd.isna(row[side]) for side in (baseline, *others)):
        return None  # no side recorded it (steady tok/s of older runs)
    if metric_key == "peak_memory_mib":
        kinds = {m: level["peak_memory_kind"] for m, level in by_side.items()}
        row["note"] = ", ".join(f"{m}: {k or '?'}" for m, k in sorted(kinds.items()))
    return row


def compare_machines(frame: pd.DataFrame, baseline: str | None = None) -> tuple[pd.DataFrame, str]:
    """compare_sides across machines."""
    table, baseline, _ = compare_sides(frame, baseline, "machine")
    return table, baseline


def _shown(values: dict[str, Any], machine: str) -> str:
    """A machine's value; a percentile with its sample count (the max below MIN_SAMPLES)."""
    count = values.get(count_column(machine))
    if values["unit"] == "fraction":
        return percent(values[machine])
    if count is None or pd.isna(count):
        return fmt(values[machine])
    return percentile_cell(values["stat"], values[machine], values[f"{machine} max"], count)


def compare_view(table: pd.DataFrame, baseline: str, sides: dict[str, str], by: str) -> View:
    """The comparison as a table; ratios are other side / baseline."""
    others = [m for m in sides if m != baseline and m in table.columns]
    keys = CELL_KEYS if by == "machine" else SENT_KEYS
    varying, constant = split_identity(table, keys)
    headers = [KEY_TITLES[key] for key in varying] + ["concurrency", "metric", f"{baseline}"]
    for side in others:
        headers += [side, ratio_column(side, baseline), f"{noise_column(side, baseline)} (95%)"]
    headers.append("note")
    rows = []
    # records, not itertuples: machine ids such as "gpu-box" are not Python identifiers
    for values in table.to_dict("records"):
        metric = METRICS[values["metric"]]
        stat = "" if values["stat"] == SCALAR_STAT else f" {values['stat']}"
        name = f"{metric.label}{stat} ({metric.unit}, {metric.better} is better)"
        cells = [fmt(values[key]) for key in varying] + [str(values["concurrency"]), name]
        cells.append(_shown(values, baseline))
        for side in others:
            ratio = values[ratio_column(side, baseline)]
            noise = values.get(noise_column(side, baseline))
            cells += [_shown(values, side), "-" if pd.isna(ratio) else f"{ratio:.2f}x"]
            cells.append(noise if isinstance(noise, str) else "-")
        rows.append([*cells, fmt(values.get("note"))])
    described = "; ".join(f"{side} = {text}" for side, text in sides.items())
    noise = (
        "A difference is beyond noise where the 95% confidence interval of the difference "
        "of the means (Welch's t, from each side's repeats) excludes 0."
    )
    notes = " ".join(p for p in (caption(constant), f"{by.title()}s: {described}.", noise) if p)
    return View(f"{by.title()}s compared (baseline {baseline})", notes, headers, rows)


def engines_served(frame: pd.DataFrame, names: list[str]) -> dict[str, str]:
    """Each engine side and the weights it served; where they differ, said on every side."""
    levels = latest_levels(level_table(frame))
    levels = levels.assign(side=engine_sides(levels).to_numpy())
    served = weights.served_by(levels, "side")
    differ = weights.differ(levels)
    return {
        name: f"served {served.get(name, 'weights not recorded')}"
        + (
            f" ({weights.WEIGHTS_DIFFER}: the difference is not the engine's alone)"
            if differ
            else ""
        )
        for name in names
    }


def write_compare(
    frame: pd.DataFrame, out: Path, baseline: str | None = None, by: str = "machine"
) -> View:
    """Write compare.md and compare.csv under `out`; returns the table."""
    table, baseline, names = compare_sides(frame, baseline, by)
    sides = machines_of(frame) if by == "machine" else engines_served(frame, names)
    view = compare_view(table, baseline, sides, by)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(table, out / "compare.csv")
    (out / "compare.md").write_text(view.markdown())
    return view
