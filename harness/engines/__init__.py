"""Engines by kind. Adding an engine: one module here, one line below, one conf/engine YAML."""

from __future__ import annotations

from pathlib import Path

from harness.config import EngineConfig, ModelConfig
from harness.engines.base import Engine, EngineError
from harness.engines.llamacpp import LlamaServer
from harness.engines.llamacpp_embedded import EmbeddedLlamaCpp
from harness.engines.ollama import Ollama
from harness.engines.openai_server import ExternalOpenAI
from harness.engines.vllm import Vllm
from harness.engines.vllm_cpu import VllmCpu

ENGINES: dict[str, type[Engine]] = {
    EmbeddedLlamaCpp.kind: EmbeddedLlamaCpp,
    ExternalOpenAI.kind: ExternalOpenAI,
    LlamaServer.kind: LlamaServer,
    Ollama.kind: Ollama,
    Vllm.kind: Vllm,
}


def create_engine(engine_cfg: EngineConfig, model_cfg: ModelConfig, run_dir: Path) -> Engine:
    """The engine for a config; llama.cpp with launcher=embedded runs the xllamacpp server,
    vLLM with device=cpu its CPU build."""
    try:
        engine_type = ENGINES[engine_cfg.kind]
    except KeyError:
        raise EngineError(
            f"engine.kind={engine_cfg.kind!r} is not valid; choose one of: {', '.join(ENGINES)}"
        ) from None
    if engine_cfg.launcher == "embedded":
        engine_type = EmbeddedLlamaCpp
    if engine_cfg.kind == Vllm.kind and engine_cfg.device == "cpu":
        engine_type = VllmCpu
    return engine_type(engine_cfg, model_cfg, run_dir)


__all__ = ["ENGINES", "Engine", "EngineError", "create_engine"]
