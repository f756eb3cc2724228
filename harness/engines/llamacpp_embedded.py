"""llama.cpp's server on the CPU, through the xllamacpp wheel, in a child process."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from harness.config import kv_cache_type_for
from harness.engines.base import (
    Engine,
    EngineError,
    http_get,
    log_tail,
    parse_prometheus,
    poll_until,
    refuse_taken_port,
    retry_if_port_lost,
)
from harness.engines.host import free_port
from harness.engines.process import ManagedProcess
from harness.engines.provision import describe_gguf, resolve_gguf


class EmbeddedLlamaCpp(Engine):
    """Started, measured and stopped by the harness; no GPU or Docker needed."""

    kind = "llamacpp_embedded"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.port = self.engine_cfg.port or free_port(self.engine_cfg.host)
        self.process: ManagedProcess | None = None
        self.model_path: str | None = None

    @property
    def root_url(self) -> str:
        return f"http://{self.engine_cfg.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def served_model(self) -> str:
        return self.model_cfg.name

    def preflight(self) -> None:
        refuse_taken_port(self.engine_cfg)

    def provision(self) -> dict[str, Any]:
        from harness.engines.llamacpp import gguf_model  # imports this module

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
            kv_cache_type_for(self.kind, cfg.kv_cache_type),
        ]

    def start(self) -> None:
        try:
            import xllamacpp  # noqa: F401
        except ImportError as exc:
            raise EngineError(
                "engine=llamacpp-embedded needs the xllamacpp package: "
                "pip install 'llm-bench-harness[embedded]' (make bench installs it)"
            ) from exc
        self.process = ManagedProcess(self.command(), self.log_path)
        self.process.start()

    def _died(self) -> str | None:
        if self.process and not self.process.alive():
            return (
                f"the server exited with code {self.process.exit_code()}; "
                f"last lines of {self.log_path}:\n{log_tail(self.log_path)}"
            )
        return None

    def wait_ready(self) -> None:
        retry_if_port_lost(self._wait_healthy, self._port_taken_meanwhile, self._restart)

    def _wait_healthy(self) -> None:
        poll_until(
            lambda: http_get(f"{self.root_url}/health", timeout_s=2)[0] == 200,
            self.engine_cfg.startup_timeout_s,
            f"llama.cpp server at {self.root_url}",
            still_possible=self._died,
        )

    def _port_taken_meanwhile(self) -> bool:
        """The free port picked was taken by someone else before the server bound it."""
        return (
            not self.engine_cfg.port and self.process is not None and self.process.lost_its_port()
        )

    def _restart(self) -> None:
        self.port = free_port(self.engine_cfg.host)
        self.start()

    def version(self) -> dict[str, Any]:
        import xllamacpp

        info: dict[str, Any] = {
            "engine": "llama.cpp (xllamacpp)",
            "xllamacpp": xllamacpp.__version__,
        }
        status, body = http_get(f"{self.root_url}/props")
        if status == 200:
            props = json.loads(body)
            info["build_info"] = props.get("build_info")
        return info

    def settings(self) -> dict[str, Any]:
        status, body = http_get(f"{self.root_url}/props")
        if status != 200:
            return {}
        props = json.loads(body)
        defaults = props.get("default_generation_settings", {})
        return {
            "total_slots": props.get("total_slots"),
            "ctx_per_slot": defaults.get("n_ctx"),
            "model_ftype": props.get("model_ftype"),
        }

    def requested_settings(self) -> dict[str, Any]:
        cfg = self.engine_cfg
        return {
            "parallel": cfg.parallel,
            "ctx_size_total": cfg.ctx_size * cfg.parallel,
            "threads": cfg.threads or os.cpu_count() or 1,  # what the server process uses
            "n_gpu_layers": cfg.n_gpu_layers,
            "flash_attn": cfg.flash_attn,
            "kv_cache_type": kv_cache_type_for(self.kind, cfg.kv_cache_type),
        }

    def scrape(self) -> dict[str, float]:
        status, body = http_get(f"{self.root_url}/metrics")
        return parse_prometheus(body) if status == 200 else {}

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process and self.process.pid else []

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(self.engine_cfg.stop_grace_s)
