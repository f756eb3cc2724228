"""Every run of a store in one tidy long DataFrame: one row per run x level x metric statistic.

Values come from each run's summary.json (written from the raw records); the run's identity
comes from its summary `run` block and its environment.json. Runs whose files cannot be read
(half-written, hand-edited) are skipped with a SkippedRunWarning, never fatal.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.config import kv_cache_type_for
from harness.metrics import DISTRIBUTION_METRICS, METRICS, STATISTICS
from harness.store import ENVIRONMENT_FILE, SUMMARY_FILE, iter_run_dirs, read_records

RUN_COLUMNS = (
    "experiment",
    "machine_id",
    "machine_label",
    "gpu_name",
    "cpu",
    "engine",
    "engine_kind",
    "engine_parallel",
    "engine_ctx_size",
    "engine_kv_cache_type",
    "engine_flash_attn",
    "engine_n_gpu_layers",
    "engine_gpu_memory_utilization",
    "model",
    "quant",
    "workload",
    "max_tokens",
    "harness_version",
    "git_commit",
    "run_id",
    "run_path",
    "run_status",
    "started_at",
)
LEVEL_COLUMNS = (
    "level_index",
    "load_mode",
    "concurrency",
    "rate_per_s",
    "level_status",
    "peak_memory_kind",
)
VALUE_COLUMNS = ("metric", "stat", "value", "unit")
COLUMNS = (*RUN_COLUMNS, *LEVEL_COLUMNS, *VALUE_COLUMNS)
INTEGER_COLUMNS = ("engine_parallel", "engine_ctx_size", "level_index", "concurrency")

# Engine knobs beside slots and context that decide speed and memory, and the engine kinds
# that apply each (elsewhere the column is empty, so it never tells two engines apart).
ENGINE_KNOBS = {
    "engine_kv_cache_type": ("llamacpp", "llamacpp_embedded", "ollama", "vllm"),
    "engine_flash_attn": ("llamacpp", "llamacpp_embedded", "ollama"),
    "engine_n_gpu_layers": ("llamacpp", "llamacpp_embedded"),
    "engine_gpu_memory_utilization": ("vllm",),
}

# What makes two runs measurements of the same thing (a "cell"), machine aside.
CELL_KEYS = (
    "experiment",
    "engine",
    "engine_kind",
    "engine_parallel",
    "engine_ctx_size",
    *ENGINE_KNOBS,
    "model",
    "quant",
    "workload",
    "max_tokens",
    "load_mode",
)
# One line in a figure, one row in a table: a cell on one machine.
SERIES_KEYS = ("machine_id", *CELL_KEYS)

SCALAR_STAT = "value"  # the `stat` of metrics that have one value per level
SCALAR_METRICS = tuple(key for key in METRICS if key not in DISTRIBUTION_METRICS)
# Level quantities that are not metrics but the tables need beside them.
LEVEL_QUANTITIES = {
    "predicted_memory_mib": "MiB",
    "requests_sent": "requests",
    "requests_ok": "requests",
    "requests_failed": "requests",
    "wall_time_s": "s",
}


class SkippedRunWarning(UserWarning):
    """A run directory whose files could not be read; the report goes on without it."""


class EmptyStoreError(Exception):
    """The store holds no run with a finished level."""


@dataclass(frozen=True)
class Store:
    results: Path  # the store root; run_path in the frame is relative to it
    frame: pd.DataFrame
    skipped: tuple[tuple[str, str], ...]  # (run path, reason)


def _gpu_name(machine: dict[str, Any]) -> str:
    names = [str(gpu.get("name", "?")) for gpu in machine.get("gpus") or []]
    if not names:
        return "none"
    distinct = sorted(set(names))
    if len(distinct) == 1:
        return distinct[0] if len(names) == 1 else f"{len(names)} x {distinct[0]}"
    return " + ".join(names)


def _run_fields(run_dir: Path, results: Path, summary: dict[str, Any]) -> dict[str, Any]:
    run = summary["run"]
    environment = json.loads((run_dir / ENVIRONMENT_FILE).read_text())
    machine = environment.get("machine", {})
    config = environment.get("config", {})
    harness = environment.get("software", {}).get("harness", {})
    relative = run_dir.relative_to(results)
    machine_id = run.get("machine_id") or machine.get("machine_id") or relative.parts[-2]
    return {
        "experiment": run.get("experiment") or relative.parts[0],
        "machine_id": machine_id,
        "machine_label": (config.get("machine") or {}).get("label") or machine_id,
        "gpu_name": _gpu_name(machine),
        "cpu": machine.get("cpu") or "",
        "engine": run.get("engine") or "",
        "engine_kind": run.get("engine_kind") or "",
        "engine_parallel": run.get("engine_parallel"),
        "engine_ctx_size": run.get("engine_ctx_size"),
        **_engine_knobs(config.get("engine") or {}, run.get("engine_kind") or ""),
        "model": run.get("model") or "",
        "quant": run.get("quant") or "",
        "workload": run.get("workload") or "",
        "max_tokens": _text((config.get("workload") or {}).get("max_tokens")),
        "harness_version": harness.get("version") or "",
        "git_commit": harness.get("git_commit") or "",
        "run_id": run_dir.name,
        "run_path": relative.as_posix(),
        "run_status": summary.get("status") or "",
        "started_at": summary.get("started_at") or "",
    }


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _engine_knobs(engine: dict[str, Any], kind: str) -> dict[str, str]:
    """The knobs of ENGINE_KNOBS as text, from the run's stored config ("" where they do
    not apply to its engine kind)."""
    knobs = {}
    for column, kinds in ENGINE_KNOBS.items():
        value = engine.get(column.removeprefix("engine_"))
        if column == "engine_kv_cache_type":
            value = kv_cache_type_for(kind, value)
        if kind not in kinds:
            knobs[column] = ""
        else:
            knobs[column] = "default" if value is None else str(value)
    return knobs


def _level_rows(level: dict[str, Any]) -> list[tuple[str, str, float, str]]:
    rows = []
    for key in DISTRIBUTION_METRICS:
        stats = level.get(key) or {}
        for stat in STATISTICS:
            if stats.get(stat) is not None:
                unit = "count" if stat == "n" else METRICS[key].unit
                rows.append((key, stat, float(stats[stat]), unit))
    for key in SCALAR_METRICS:
        if level.get(key) is not None:
            rows.append((key, SCALAR_STAT, float(level[key]), METRICS[key].unit))
    for key, unit in LEVEL_QUANTITIES.items():
        if level.get(key) is not None:
            rows.append((key, SCALAR_STAT, float(level[key]), unit))
    return rows


def _run_rows(run_dir: Path, results: Path) -> list[dict[str, Any]]:
    summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    if not isinstance(summary.get("run"), dict) or not isinstance(summary.get("levels"), list):
        raise ValueError("summary.json has no run block or no levels list")
    fields = _run_fields(run_dir, results, summary)
    rows = []
    for position, level in enumerate(summary["levels"]):
        level_fields = {
            "level_index": level.get("level_index", position),
            "load_mode": level.get("mode") or "concurrency",
            "concurrency": int(level["concurrency"]),
            "rate_per_s": level.get("rate_per_s"),
            "level_status": level.get("status") or "ok",
            "peak_memory_kind": level.get("peak_memory_kind") or "",
        }
        for metric, stat, value, unit in _level_rows(level):
            values = {"metric": metric, "stat": stat, "value": value, "unit": unit}
            rows.append({**fields, **level_fields, **values})
    return rows


def load_store(results: Path, experiment: str | None = None) -> Store:
    """Read every run under `results` (or under one experiment of it) into a Store."""
    results = Path(results)
    root = results / experiment if experiment else results
    run_dirs = list(iter_run_dirs(root)) if root.is_dir() else []
    if not run_dirs:
        raise EmptyStoreError(f"no runs found under {root}: run `make bench` first")
    rows: list[dict[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    for run_dir in run_dirs:
        try:
            rows.extend(_run_rows(run_dir, results))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            skipped.append((str(run_dir), reason))
            warnings.warn(f"skipped {run_dir}: {reason}", SkippedRunWarning, stacklevel=2)
    if not rows:
        raise EmptyStoreError(f"no run with a finished level under {root}: run `make bench` first")
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for column in INTEGER_COLUMNS:
        frame[column] = frame[column].astype("Int64")
    frame["rate_per_s"] = frame["rate_per_s"].astype("float64")
    return Store(results, frame, tuple(skipped))


def load_frame(results: Path, experiment: str | None = None) -> pd.DataFrame:
    """The tidy long frame of every run under `results` (one experiment if given)."""
    return load_store(results, experiment).frame


def level_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per run x level, one column per `metric.stat` (scalars: `metric.value`)."""
    index = [*RUN_COLUMNS, *LEVEL_COLUMNS]
    keyed = frame.assign(column=frame["metric"] + "." + frame["stat"])
    wide = keyed.set_index([*index, "column"])["value"].unstack("column").reset_index()
    wide.columns.name = None
    order = ["run_path", "level_index", "concurrency"]
    return wide.sort_values(order, kind="stable").reset_index(drop=True)


def latest_levels(levels: pd.DataFrame) -> pd.DataFrame:
    """Closed-loop levels, the newest run's measurement of each cell x machine x concurrency.

    A later run of the same cell (a re-run, or a resumed job) supersedes an earlier one level
    by level, so an interrupted run still contributes the levels nobody measured since.
    Open-loop (rate) levels are left out: their x is a rate, not a concurrency.
    """
    closed = levels[levels["load_mode"] != "rate"]
    ordered = closed.sort_values(["started_at", "run_id"], kind="stable")
    newest = ordered.drop_duplicates([*SERIES_KEYS, "concurrency"], keep="last")
    return newest.sort_values([*SERIES_KEYS, "concurrency"], kind="stable").reset_index(drop=True)


_LABEL_PARTS = {
    "model": "{}",
    "quant": "{}",
    "engine_parallel": "parallel={}",
    "engine_ctx_size": "ctx={}",
    "engine_kv_cache_type": "kv={}",
    "engine_flash_attn": "flash_attn={}",
    "engine_n_gpu_layers": "ngl={}",
    "engine_gpu_memory_utilization": "gpu_util={}",
    "workload": "workload={}",
    "max_tokens": "max_tokens={}",
    "load_mode": "{}",
    "experiment": "{}",
}


def applicable(column: pd.Series) -> pd.Series:
    """The values of an identity column, without the "" of rows it does not apply to (a knob
    of another engine kind)."""
    return column if pd.api.types.is_numeric_dtype(column) else column[column != ""]


def varies(column: pd.Series) -> bool:
    """True when rows differ in this identity column, where it applies to them."""
    return applicable(column).nunique(dropna=False) > 1


def series_labels(levels: pd.DataFrame) -> pd.Series:
    """A short name per row: the engine, then only the keys that vary across `levels`."""
    varying = [key for key in _LABEL_PARTS if varies(levels[key])]
    many_machines = levels["machine_id"].nunique() > 1

    def label(row: pd.Series) -> str:
        parts = [_LABEL_PARTS[key].format(row[key]) for key in varying if row[key] != ""]
        text = f"{row['engine']} ({', '.join(parts)})" if parts else str(row["engine"])
        return f"{text} @ {row['machine_id']}" if many_machines else text

    return levels.apply(label, axis=1).astype(str) if len(levels) else pd.Series(dtype=str)


def load_requests(results: Path, levels: pd.DataFrame) -> pd.DataFrame:
    """The successful requests behind each row of `levels` (from requests.jsonl)."""
    rows = []
    labels = series_labels(levels)
    for (_, level), label in zip(levels.iterrows(), labels, strict=True):
        for record in read_records(Path(results) / level["run_path"]):
            if record.ok and record.concurrency == level["concurrency"]:
                rows.append(
                    {
                        "series": label,
                        "engine": level["engine"],
                        "concurrency": int(level["concurrency"]),
                        "ttft_ms": record.ttft_ms,
                        "e2e_ms": record.e2e_ms,
                    }
                )
    columns = ["series", "engine", "concurrency", "ttft_ms", "e2e_ms"]
    return pd.DataFrame(rows, columns=columns)
