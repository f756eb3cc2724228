"""llama.cpp's server on the CPU, through the xllamacpp wheel, in a child process."""

from __future__ import annotations

import os
import sys
from typing import Any

from harness.engines.base import EngineError, refuse_taken_port
from harness.engines.host import free_port
from harness.engines.llamacpp_props import LlamaCppServer, gguf_model
from harness.engines.owned import OwnedServer
from harness.engines.provision import describe_gguf, resolve_gguf


class EmbeddedLlamaCpp(LlamaCppServer, OwnedServer):
    """Started, measured and stopped by the harness; no GPU or Docker needed."""

    kind = "llamacpp_embedded"
    offload_wanted = False  # the CPU engine: a wheel without a GPU backend is what it is for

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.port = self.engine_cfg.port or free_port(self.engine_cfg.host)
        self.model_path: str | None = None

    def preflight(self) -> None:
        refuse_taken_port(self.engine_cfg)

    def provision(self) -> dict[str, Any]:
        path = resolve_gguf(gguf_model(self.model_cfg))
        self.model_path = str(path)
        return describe_gguf(self.model_cfg, path)

    def command(self) -> list[str]:
        """The exact argument list that starts the server."""
        if self.model_path is None:
            raise EngineError("provision() must run before command()")
        cfg = self.engine_cfg
        return [
            sys.executable,
            "-m",
            "harness.engines.xllamacpp_server",
            "--model",
            self.model_path,
            "--alias",
            self.served_model,
            "--host",
            cfg.host,
            "--port",
            str(self.port),
            "--parallel",
            str(cfg.parallel),
            # llama.cpp splits its context among the slots: give each slot ctx_size.
            "--ctx-size",
            str(cfg.ctx_size * cfg.parallel),
            "--threads",
            str(cfg.threads),
            "--n-gpu-layers",
            str(cfg.n_gpu_layers),
            "--flash-attn",
            cfg.flash_attn,
            "--cache-type",
            self.kv_cache_type(),
            "--cache-ram-mib",
            str(cfg.cache_ram_mib if cfg.cache_ram_mib is not None else 0),
        ]

    def start(self) -> None:
        try:
            import xllamacpp  # noqa: F401
        except ImportError as exc:
            raise EngineError(
                "engine=llamacpp-embedded needs the xllamacpp package: "
                "pip install 'llm-bench-harness[embedded]' (make bench installs it)"
            ) from exc
        self.start_process(self.command())

    def restart(self) -> None:
        self.port = free_port(self.engine_cfg.host)
        self.start()

    def after_ready(self) -> None:
        self.check_offload()

    def threads_requested(self) -> int:
        return self.engine_cfg.threads or os.cpu_count() or 1  # what the server process uses

    def version(self) -> dict[str, Any]:
        import xllamacpp

        return {
            "engine": "llama.cpp (xllamacpp)",
            "xllamacpp": xllamacpp.__version__,
            "build_info": self.build_info(),
        }
