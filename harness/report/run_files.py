"""One run directory's files -> rows of the store's tidy frame.

Values come from the run's summary.json (written from the raw records); the run's identity
comes from its summary `run` block and its environment.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.config import kv_cache_type_for
from harness.metrics import DISTRIBUTION_METRICS, METRICS, STATISTICS
from harness.report.cells import ENGINE_KNOBS
from harness.store import ENVIRONMENT_FILE, SUMMARY_FILE

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


def run_rows(run_dir: Path, results: Path) -> list[dict[str, Any]]:
    """One row per level x metric statistic of the run in `run_dir` (under `results`)."""
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
