"""summary.json of one run: what ran, each level's figures, and how the run ended."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.config import BenchConfig, EngineConfig
from harness.fit import predict_for_config
from harness.store import SUMMARY_SCHEMA_VERSION
from harness.telemetry.policy import engine_on_cpu

log = logging.getLogger(__name__)


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_summary(
    bench: BenchConfig, machine: str, config_hash: str, previous: dict[str, Any] | None
) -> dict[str, Any]:
    """The summary of a run that is starting; with `previous`, one that resumes."""
    summary: dict[str, Any] = {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "status": "running",
        "error": None,
        "started_at": now_utc(),
        "finished_at": None,
        "run": {
            "experiment": bench.experiment.name,
            "machine_id": machine,
            "engine": bench.engine.name,
            "engine_kind": bench.engine.kind,
            "model": bench.model.name,
            "quant": None,  # read back from the engine once it serves (runner)
            "weights": None,
            "weights_id": None,
            "workload": bench.workload.name,
            "engine_parallel": bench.engine.parallel,
            "engine_ctx_size": bench.engine.ctx_size,
            "config_hash": config_hash,
        },
        "levels": (previous or {}).get("levels", []),
    }
    if previous is not None:
        summary["started_at"] = previous.get("started_at", summary["started_at"])
        summary["resumed_at"] = [*previous.get("resumed_at", []), now_utc()]
    return summary


def set_weights(summary: dict[str, Any], weights: dict[str, Any]) -> None:
    """The run's quant and weights, as the engine reported them (engines.weights.finish)."""
    summary["run"].update(
        quant=weights.get("quant") or "unknown", weights=weights["label"], weights_id=weights["id"]
    )


def add_level(summary: dict[str, Any], level: dict[str, Any]) -> None:
    summary["levels"].append(level)
    summary["levels"].sort(key=lambda lv: lv.get("level_index", 0))


def predicted_memory(
    bench: BenchConfig, model_info: dict[str, Any], gpus: list[dict[str, Any]]
) -> dict[str, Any]:
    """fit's prediction for this deployment, to stand beside the measured peak."""
    engine = bench.engine
    on_cpu = engine_on_cpu(engine) or not gpus
    path = model_info.get("path")
    try:
        prediction = predict_for_config(
            bench.model,
            engine.kind,
            engine.ctx_size,
            engine.parallel,
            gguf_path=Path(path) if path else None,
            kv_type=engine.kv_cache_type,
            device="cpu" if on_cpu else "gpu",
            gpu_total_mib=None if on_cpu else gpus[0].get("memory_total_mib"),
            gpu_util=engine.gpu_memory_utilization,
            flash_attn=engine.flash_attn != "off",
            cpu_kv_space_mib=engine.cpu_kvcache_space_gib * 1024.0,
            vllm_weights=engine.vllm_weights,
        )
    except Exception as exc:  # a model without known architecture: say so, measure on
        log.info("no memory prediction: %s", exc)
        return {"total_mib": None, "error": str(exc)}
    return with_prompt_cache(prediction.to_dict(), engine, on_cpu)


def with_prompt_cache(
    predicted: dict[str, Any], engine: EngineConfig, on_cpu: bool
) -> dict[str, Any]:
    """llama.cpp's host-memory prompt cache, where it is on, counted at its limit: on the
    CPU it shares the memory measured; unbounded (-1), the prediction has no ceiling."""
    mib = engine.cache_ram_mib if engine.kind in ("llamacpp", "llamacpp_embedded") else 0
    if not mib or not on_cpu:
        return predicted
    method = predicted["method"]
    if mib < 0:
        method += "; a prompt cache without a limit (--cache-ram -1)"
        return {**predicted, "prompt_cache_mib": None, "total_mib": None, "method": method}
    method += f"; + the prompt cache at its limit ({mib} MiB, --cache-ram)"
    total = predicted["total_mib"] + mib
    return {**predicted, "prompt_cache_mib": float(mib), "total_mib": total, "method": method}
