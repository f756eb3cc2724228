"""Which memory a job measures: the GPU through NVML, or the engine's process tree.

A CPU engine's memory is its RSS whatever GPU the machine has; a server on another
machine is not measured with this machine's GPU at all; and an engine that was asked for
GPU layers but reports none offloaded is measured as the CPU engine it is.
"""

from __future__ import annotations

import logging

from harness.config import EngineConfig
from harness.engines import Engine
from harness.engines.served import ServedEngine
from harness.telemetry.sampler import Sampler

log = logging.getLogger(__name__)


def engine_on_cpu(engine: EngineConfig) -> bool:
    """The embedded llama.cpp server, llama.cpp with no layer offloaded, or vLLM's CPU
    build: its memory is its process tree's, whatever GPU the machine has."""
    if engine.kind == "llamacpp_embedded" or engine.launcher == "embedded":
        return True
    if engine.kind == "vllm" and engine.device == "cpu":
        return True
    return engine.kind == "llamacpp" and engine.n_gpu_layers == 0


def gpu_mode_for(engine_cfg: EngineConfig, engine: Engine, requested: str) -> str:
    """telemetry.gpu as it applies to this engine: `off` where the GPU is not its memory."""
    if requested == "off":
        return "off"
    if not engine.on_this_machine:
        log.info("%s is not on this machine: its memory is not measured here", engine.base_url)
        return "off"
    if engine_on_cpu(engine_cfg) and requested == "auto":
        return "off"
    return requested


def follow_read_back(sampler: Sampler, engine: Engine) -> None:
    """After the engine is ready: measure RSS where it says it runs on no GPU."""
    if sampler.kind == "gpu" and engine.runs_on_gpu() is False:
        log.info("the engine reports no layer on a GPU: measuring its process tree's RSS")
        sampler.measure_process_rss()


def follow_launcher(sampler: Sampler, engine: Engine) -> None:
    """A compose container is given every GPU, not this process's CUDA_VISIBLE_DEVICES:
    where NVML names no engine process, the sampler must not fall back to those."""
    if isinstance(engine, ServedEngine) and engine.launcher == "compose":
        sampler.given_devices = None
