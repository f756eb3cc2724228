"""llama.cpp's `llama-server`: native binary, or the server(-cuda) image under Compose."""

from __future__ import annotations

import shlex
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from harness.engines.base import EngineError
from harness.engines.llamacpp_props import LlamaCppServer, gguf_model
from harness.engines.provision import describe_gguf, resolve_gguf
from harness.engines.served import ServedEngine


@cache
def supports_flag(binary: str, flag: str) -> bool:
    """Whether `binary --help` lists `flag` (older builds lack e.g. --fit)."""
    try:
        done = subprocess.run(
            [binary, "--help"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return flag in done.stdout + done.stderr


class LlamaServer(LlamaCppServer, ServedEngine):
    """`llama-server` with pinned slots, context per slot, GPU layers, flash attention, KV type."""

    kind = "llamacpp"
    default_binary = "llama-server"
    default_service = "llamacpp"
    container_port = 8080
    health_path = "/health"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model_path: Path | None = None

    def check_model(self) -> None:
        gguf_model(self.model_cfg)

    def provision(self) -> dict[str, Any]:
        self.preflight()
        model = gguf_model(self.model_cfg)
        self.model_path = resolve_gguf(model)
        return describe_gguf(model, self.model_path)

    def server_args(self, model_path: str, host: str, port: int) -> list[str]:
        """Arguments after the executable; the same natively and in the container."""
        cfg = self.engine_cfg
        return [
            "--model",
            model_path,
            "--alias",
            self.served_model,
            "--host",
            host,
            "--port",
            str(port),
            # llama-server splits its context among the slots: give each slot ctx_size.
            "--ctx-size",
            str(cfg.ctx_size * cfg.parallel),
            "--parallel",
            str(cfg.parallel),
            "--n-gpu-layers",
            str(cfg.n_gpu_layers),
            "--flash-attn",
            cfg.flash_attn,
            "--cache-type-k",
            self.kv_cache_type(),
            "--cache-type-v",
            self.kv_cache_type(),
            "--metrics",
        ]

    def tail_args(self) -> list[str]:
        """Threads (when pinned) and the user's extra arguments."""
        threads = ["--threads", str(self.engine_cfg.threads)] if self.engine_cfg.threads else []
        return [*threads, *self.engine_cfg.extra_args]

    def native_command(self) -> list[str]:
        if self.model_path is None:
            raise EngineError("provision() must run before the server starts")
        args = self.server_args(str(self.model_path), self.engine_cfg.host, self.port)
        # --fit (on by default in recent builds) may resize what is not set explicitly.
        fit = ["--fit", "off"] if supports_flag(self.binary, "--fit") else []
        cache = self.cache_ram_args() if supports_flag(self.binary, "--cache-ram") else []
        return [self.binary, *args, *fit, *cache, *self.tail_args()]

    def cache_ram_args(self) -> list[str]:
        """The host-memory prompt cache, pinned (engine.cache_ram_mib; 0: off)."""
        mib = self.engine_cfg.cache_ram_mib
        return [] if mib is None else ["--cache-ram", str(mib)]

    def service_env(self) -> dict[str, str]:
        if self.model_path is None:
            raise EngineError("provision() must run before the server starts")
        cfg = self.engine_cfg
        return {
            "ENGINE_BIND_HOST": cfg.host,
            "LLAMACPP_PORT": str(self.port),
            "LLAMACPP_MODELS_DIR": str(self.model_path.parent),
            "LLAMACPP_MODEL_FILE": self.model_path.name,
            "LLAMACPP_ALIAS": self.served_model,
            "LLAMACPP_CTX_SIZE": str(cfg.ctx_size * cfg.parallel),
            "LLAMACPP_PARALLEL": str(cfg.parallel),
            "LLAMACPP_N_GPU_LAYERS": str(cfg.n_gpu_layers),
            "LLAMACPP_FLASH_ATTN": cfg.flash_attn,
            "LLAMACPP_CACHE_TYPE": self.kv_cache_type(),
            "LLAMACPP_EXTRA_ARGS": shlex.join([*self.cache_ram_args(), *self.tail_args()]),
        }

    def after_ready(self) -> None:
        self.check_offload()

    def version(self) -> dict[str, Any]:
        return {
            "engine": "llama.cpp (llama-server)",
            "build_info": self.build_info(),
            **self.launch_info(),
        }
