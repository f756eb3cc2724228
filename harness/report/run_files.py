"""One run directory's files -> rows of the store's tidy frame.

Values come from the run's summary.json (written from the raw records); the run's identity
comes from its summary `run` block and its environment.json (machine, engine version, and
the resolved config, the same as .hydra/config.yaml). A field an older run did not record
is "unknown" in an identity column and absent (no row) among the values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.config import kv_cache_type_for
from harness.metrics import DISTRIBUTION_METRICS, FROM_DUE_METRICS, METRICS, MIN_SAMPLES, STATISTICS
from harness.report.cells import DEPLOYMENT_KEYS, ENGINE_KNOBS, WORKLOAD_KNOBS
from harness.store import ENVIRONMENT_FILE, SUMMARY_FILE

RUN_COLUMNS = (
    "experiment",
    "machine_id",
    "machine_label",
    "gpu_name",
    "cpu",
    *DEPLOYMENT_KEYS,
    "weights_id",  # what decides "the same weights" (engines.weights.weights_id)
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
    "level_flags",  # what makes the level unlike another, comma-separated; None: not recorded
    "finish_reasons",  # "length: 14, stop: 2"; None: not recorded
)
VALUE_COLUMNS = ("metric", "stat", "value", "unit")

SCALAR_STAT = "value"  # the `stat` of metrics that have one value per level
DISTRIBUTIONS = (*DISTRIBUTION_METRICS, *FROM_DUE_METRICS)
SCALAR_METRICS = tuple(key for key in METRICS if key not in DISTRIBUTIONS)
# Level quantities that are not metrics but the tables need beside them.
LEVEL_QUANTITIES = {
    "predicted_memory_mib": "MiB",
    "requests_sent": "requests",
    "requests_ok": "requests",
    "requests_failed": "requests",
    "wall_time_s": "s",
    "steady_window_s": "s",
    "content_chunks_total": "chunks",
    "itl_zero_gaps": "gaps",
    "cached_prompt_tokens_total": "tok",
    "prefix_cache_reported_by": "requests",
    "memory_bandwidth_gbs": "GB/s",  # the ceiling the level was set beside
}
UNKNOWN = "unknown"  # an identity field the run did not record (an older harness)
# The parts of an engine's version() that name its build, in this order.
VERSION_FIELDS = ("version", "xllamacpp", "build_info")


def shown_stat(stats: dict[str, Any], stat: str) -> float | None:
    """A statistic of a stored distribution, or None where it means nothing: a percentile
    of fewer samples than it needs (MIN_SAMPLES), which an older run may have stored."""
    value = stats.get(stat)
    needed = MIN_SAMPLES.get(stat)
    if value is None or (needed is not None and (stats.get("n") or 0) < needed):
        return None
    return float(value)


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
    engine, workload = config.get("engine") or {}, config.get("workload") or {}
    kind = run.get("engine_kind") or ""
    relative = run_dir.relative_to(results)
    machine_id = run.get("machine_id") or machine.get("machine_id") or relative.parts[-2]
    return {
        "experiment": run.get("experiment") or relative.parts[0],
        "machine_id": machine_id,
        "machine_label": (config.get("machine") or {}).get("label") or machine_id,
        "gpu_name": _gpu_name(machine),
        "cpu": machine.get("cpu") or "",
        "engine": run.get("engine") or "",
        "engine_kind": kind,
        "engine_version": engine_version((environment.get("engine") or {}).get("version")),
        "engine_parallel": run.get("engine_parallel"),
        "engine_ctx_size": run.get("engine_ctx_size"),
        **_engine_knobs(
            engine, kind, (environment.get("engine") or {}).get("settings_in_effect") or {}
        ),
        "engine_extra_args": _recorded(engine, "extra_args"),
        "model": run.get("model") or "",
        "quant": run.get("quant") or "",
        "weights": run.get("weights") or UNKNOWN,
        "weights_id": run.get("weights_id") or "",
        "workload": run.get("workload") or "",
        **_workload_shape(workload),
        "max_tokens": _text(workload.get("max_tokens")),
        "harness_version": harness.get("version") or "",
        "git_commit": harness.get("git_commit") or "",
        "run_id": run_dir.name,
        "run_path": relative.as_posix(),
        "run_status": summary.get("status") or "",
        "started_at": summary.get("started_at") or "",
    }


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def config_text(value: Any) -> str:
    """A config value as an identity cell: 0 and 0.0 alike, a list as its words."""
    if value is None:
        return "default"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return " ".join(str(item) for item in value) or "none"
    return str(value)


def _recorded(config: dict[str, Any], key: str) -> str:
    return config_text(config[key]) if key in config else UNKNOWN


def engine_version(version: Any) -> str:
    """The engine's build as one short text, from environment.json's engine.version."""
    if not isinstance(version, dict):
        return str(version) if version else UNKNOWN
    parts = [str(version[key]) for key in VERSION_FIELDS if version.get(key)]
    if version.get("image_digest"):
        parts.append("image " + str(version["image_digest"]).rpartition(":")[2][:12])
    return " ".join(parts) or UNKNOWN


def _workload_shape(workload: dict[str, Any]) -> dict[str, str]:
    """What each request of the workload looked like; a knob of another workload kind
    is ""."""
    kind = _recorded(workload, "kind")
    shape = {
        "workload_kind": kind,
        "workload_api": _recorded(workload, "api"),
        "workload_shared_prefix_tokens": _recorded(workload, "shared_prefix_tokens"),
        "workload_ignore_eos": _recorded(workload, "ignore_eos"),
    }
    for column, kinds in WORKLOAD_KNOBS.items():
        key = column.removeprefix("workload_")
        shape[column] = _recorded(workload, key) if kind in kinds else ""
    return shape


# Knobs the engine reports back: what took effect is shown, not what was asked.
IN_EFFECT = {"engine_n_gpu_layers": "gpu_layers_offloaded", "engine_cache_ram_mib": "cache_ram_mib"}


def _engine_knobs(engine: dict[str, Any], kind: str, in_effect: dict[str, Any]) -> dict[str, str]:
    """The knobs of ENGINE_KNOBS as text ("" where they do not apply to its engine kind):
    as the engine reported them where it did (IN_EFFECT), else from the stored config."""
    knobs = {}
    for column, kinds in ENGINE_KNOBS.items():
        value = engine.get(column.removeprefix("engine_"))
        if in_effect.get(IN_EFFECT.get(column, "")) is not None:
            value = in_effect[IN_EFFECT[column]]
        if column == "engine_kv_cache_type":
            value = kv_cache_type_for(kind, value)
        if kind not in kinds:
            knobs[column] = ""
        else:
            knobs[column] = config_text(value)
    return knobs


def _joined(items: list[str] | None) -> str | None:
    return None if items is None else ", ".join(str(item) for item in items)


def _level_rows(level: dict[str, Any]) -> list[tuple[str, str, float, str]]:
    rows = []
    for key in DISTRIBUTIONS:
        stats = level.get(key) or {}
        for stat in STATISTICS:
            value = shown_stat(stats, stat)
            if value is not None:
                unit = "count" if stat == "n" else METRICS[key].unit
                rows.append((key, stat, value, unit))
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
            "level_flags": _joined(level.get("flags")),
            "finish_reasons": _joined(
                [f"{reason}: {count}" for reason, count in sorted(level["finish_reasons"].items())]
                if isinstance(level.get("finish_reasons"), dict)
                else None
            ),
        }
        for metric, stat, value, unit in _level_rows(level):
            values = {"metric": metric, "stat": stat, "value": value, "unit": unit}
            rows.append({**fields, **level_fields, **values})
    return rows
