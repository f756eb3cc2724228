"""What every server the harness starts itself shares: its port and process, the wait until
it answers (with another port when the free one picked was taken), the read-backs over
HTTP that never raise, and a stop after which nothing of it is left."""

from __future__ import annotations

import json
import logging
from typing import Any

from harness.engines.base import (
    HTTP_ERRORS,
    Engine,
    EngineError,
    http_get,
    log_tail,
    poll_until,
    retry_if_port_lost,
)
from harness.engines.gpu_release import GpuMemoryWatch
from harness.engines.process import ManagedProcess

log = logging.getLogger(__name__)


class OwnedServer(Engine):
    """A server process (or container) owned by the harness, answering on `port`."""

    health_path = "/health"
    health_interval_s = 0.25

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.port = self.engine_cfg.port
        self.process: ManagedProcess | None = None
        self.gpu_memory = GpuMemoryWatch()

    # -- what a subclass may provide -----------------------------------------------------
    def restart(self) -> None:
        """Start again after the port picked for the server was taken meanwhile."""
        self.start()

    def after_ready(self) -> None:
        """Runs once the server answers (e.g. pull the model); may raise EngineError."""

    def server_settings(self) -> dict[str, Any]:
        """Settings the server reports (slots, context...)."""
        return {}

    def network(self) -> str:
        """How clients reach the server: `host` (no hop between them) or `bridge`."""
        return "host"

    def describe(self) -> str:
        return f"{self.engine_cfg.name} at {self.root_url}"

    # -- shared ---------------------------------------------------------------------------
    @property
    def root_url(self) -> str:
        return f"http://{self.engine_cfg.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def start_process(self, args: list[str], env: dict[str, str] | None = None) -> None:
        """Start the server process (the GPU's memory before the first start is kept)."""
        self.gpu_memory.take_baseline()
        self.process = ManagedProcess(args, self.log_path, env=env)
        self.process.start()

    def died(self) -> str | None:
        """Why waiting longer for the server is pointless, or None."""
        if self.process is not None and not self.process.alive():
            return f"the server exited with code {self.process.exit_code()}"
        return None

    def engine_log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log_path, lines)

    def startup_log(self) -> str:
        """What the server wrote since it was last started."""
        if self.process is None or not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log_file:
            log_file.seek(self.process.log_offset)
            return log_file.read().decode(errors="replace")

    def wait_ready(self) -> None:
        try:
            retry_if_port_lost(self._wait_healthy, self._port_taken_meanwhile, self.restart)
        except EngineError as exc:
            raise EngineError(
                f"{exc} (engine.startup_timeout_s={self.engine_cfg.startup_timeout_s:.0f}); "
                f"last lines of the engine log:\n{self.engine_log_tail()}"
            ) from None
        if self.process is not None:  # its engine core, workers, runners exist by now
            self.process.remember_family()
        self.after_ready()

    def _wait_healthy(self) -> None:
        poll_until(
            lambda: http_get(f"{self.root_url}{self.health_path}", timeout_s=2)[0] == 200,
            self.engine_cfg.startup_timeout_s,
            self.describe(),
            interval_s=self.health_interval_s,
            still_possible=self.died,
        )

    def _port_taken_meanwhile(self) -> bool:
        """The free port picked for the server was taken by another program first."""
        return (
            not self.engine_cfg.port and self.process is not None and self.process.lost_its_port()
        )

    def get_json(self, path: str, timeout_s: float = 5.0) -> Any:
        """A JSON document from the server, or None when it does not answer with one."""
        try:
            status, body = http_get(f"{self.root_url}{path}", timeout_s=timeout_s)
            return json.loads(body) if status == 200 else None
        except HTTP_ERRORS as exc:
            log.debug("GET %s%s: %s", self.root_url, path, exc)
            return None

    def settings(self) -> dict[str, Any]:
        return {**self.server_settings(), "network": self.network()}

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process is not None and self.process.pid else []

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def stop(self) -> None:
        """Stop the server and everything it started, then wait (bounded) until the GPU
        memory it held is free again."""
        if self.process is not None:
            self.process.stop(self.engine_cfg.stop_grace_s)
        self.gpu_memory.wait_until_released()
