"""A job's ceilings: the machine's, found before the engine starts, and the bytes one decode
step reads of the weights it serves; every level is then set beside them."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from harness.ceiling.decode_bytes import DecodeBytes, DecodeWeights, decode_bytes_per_step
from harness.ceiling.machine import given_ceilings, machine_ceilings
from harness.ceiling.utilisation import FAR_FROM_CEILING, far_from_ceiling, level_ceiling
from harness.config import BenchConfig, kv_cache_type_for
from harness.constants import MIB
from harness.fit import KV_BYTES_PER_ELEMENT, engine_rule, resolve_model

log = logging.getLogger(__name__)

DTYPE_BYTES = {"auto": 2.0, "bfloat16": 2.0, "float16": 2.0, "float32": 4.0}


def _kv_type(bench: BenchConfig) -> str:
    kv = kv_cache_type_for(bench.engine.kind, bench.engine.kv_cache_type)
    return kv if kv in KV_BYTES_PER_ELEMENT else "f16"


def decode_bytes_for_run(bench: BenchConfig, model_info: dict[str, Any]) -> DecodeBytes:
    """What one decode step of this deployment reads: the checkpoint vLLM was given (its
    config.json), the GGUF llama.cpp serves (dequantised for vLLM, unless it loads the GGUF
    itself: engine.vllm_weights=gguf), or else the fit's estimate from the model config
    (params x bits per weight)."""
    kv_type = _kv_type(bench)
    for_vllm = engine_rule(bench.engine.kind) == "vllm" and bench.engine.vllm_weights != "gguf"
    folder = model_info.get("vllm_model_dir")
    if folder and (Path(folder) / "config.json").is_file():
        config = json.loads((Path(folder) / "config.json").read_text())
        return decode_bytes_per_step(kv_type, hf_config=config)
    path = model_info.get("path")
    if path and Path(path).is_file():
        dtype = DTYPE_BYTES.get(bench.engine.dtype, 2.0) if for_vllm else None
        return decode_bytes_per_step(kv_type, gguf_path=Path(path), dtype_bytes=dtype)
    facts = resolve_model(bench.model, for_vllm, vllm_weights=bench.engine.vllm_weights)
    output = float((facts.arch.vocab_size or 0) * facts.arch.hidden_size)
    weights = DecodeWeights(
        facts.weights_mib * MIB, facts.params_b * 1e9, output, f"estimate: {facts.weights_source}"
    )
    return DecodeBytes(weights, facts.arch, kv_type)


class JobCeilings:
    """The machine's ceilings and the decode bytes of one job, applied to each level."""

    def __init__(self, ceilings: dict[str, Any], decode: DecodeBytes | None) -> None:
        self.ceilings, self.decode = ceilings, decode

    @classmethod
    def find(
        cls,
        bench: BenchConfig,
        model_info: dict[str, Any],
        on_gpu: bool,
        machine_id: str,
        here: bool = True,
    ) -> JobCeilings:
        """Never fails the job: a ceiling or a model it cannot size is logged and left out.
        A server on another machine (`here` False) has only the ceilings the user gave."""
        try:
            if here:
                ceilings = machine_ceilings(bench.machine, on_gpu, Path(bench.results), machine_id)
            else:
                ceilings = given_ceilings(bench.machine)
        except Exception as exc:  # a failed measurement must not cost the benchmark
            log.warning("the machine's ceilings are unknown: %s", exc)
            ceilings = {"device": "gpu" if on_gpu else "cpu", "error": str(exc)}
        try:
            decode = decode_bytes_for_run(bench, model_info)
        except Exception as exc:  # a model it cannot size (FitError): measured all the same
            log.info("no decode bytes per step: %s", exc)
            decode = None
        return cls(ceilings, decode)

    def record(self) -> dict[str, Any]:
        """What summary.json keeps about the weights one step reads."""
        if self.decode is None:
            return {"weights": None}
        return {
            "weights": self.decode.weights.to_dict(),
            "arch_source": self.decode.arch.source,
            "kv_type": self.decode.kv_type,
        }

    def apply(self, level: dict[str, Any]) -> None:
        """Add the level's ceiling figures (and the far_from_ceiling flag) to its summary."""
        if self.decode is None:
            return
        try:
            level.update(level_ceiling(level, self.decode, self.ceilings))
        except (TypeError, ValueError, ZeroDivisionError) as exc:  # the level is kept without
            log.warning("level %s: no ceiling figures: %s", level.get("level_index"), exc)
            return
        if far_from_ceiling(level, self.ceilings.get("device")):
            level.setdefault("flags", []).append(FAR_FROM_CEILING)
            log.warning(
                "level %s: single-stream decode at %.0f%% of the GPU's bandwidth ceiling: "
                "is it on the CPU, or partly offloaded?",
                level.get("level_index", 0) + 1,
                100 * level["decode_bandwidth_utilisation"],
            )
