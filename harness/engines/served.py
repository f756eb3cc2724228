"""What the engine servers share: start natively or under Compose, wait, watch, stop.

A subclass says how its server is called (native argument list, compose environment),
which HTTP path answers when it is ready, and how to read its version and metrics.
"""

from __future__ import annotations

import json
import os
import time
from abc import abstractmethod
from typing import Any

from harness.engines import host
from harness.engines.base import (
    Engine,
    EngineError,
    http_get,
    log_tail,
    poll_until,
    refuse_taken_port,
    retry_if_port_lost,
)
from harness.engines.compose import ComposeService, image_digest, load_compose, service_needs_gpu
from harness.engines.launch import Needs, choose_launcher, gather_facts
from harness.engines.process import ManagedProcess

STATE_CHECK_INTERVAL_S = 2.0


class ServedEngine(Engine):
    """An engine server owned by the harness: native process or compose service."""

    default_binary: str
    default_service: str
    container_port: int
    health_path: str
    native_needs_gpu: bool = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.launcher: str | None = None
        self.port = self.engine_cfg.port
        self.process: ManagedProcess | None = None
        self.compose: ComposeService | None = None
        self._pids: list[int] = []
        self._last_state_check = 0.0

    # -- what a subclass provides -------------------------------------------------------
    def check_model(self) -> None:
        """Raise EngineError naming the model field to set when the model cannot run here."""

    @abstractmethod
    def native_command(self) -> list[str]:
        """The argument list of the native server."""

    def native_env(self) -> dict[str, str]:
        """Environment variables the native server needs beside the inherited ones."""
        return {}

    @abstractmethod
    def compose_env(self) -> dict[str, str]:
        """The variables docker/compose.yaml reads for this service."""

    def after_ready(self) -> None:
        """Runs once the server answers (e.g. pull the model); may raise EngineError."""

    # -- shared ---------------------------------------------------------------------------
    @property
    def binary(self) -> str:
        return self.engine_cfg.binary or self.default_binary

    @property
    def service(self) -> str:
        return self.engine_cfg.service or self.default_service

    @property
    def root_url(self) -> str:
        return f"http://{self.engine_cfg.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def needs(self) -> Needs:
        services = load_compose()["services"]
        definition = services.get(self.service, {})
        return Needs(
            engine=self.engine_cfg.name,
            binary=self.binary,
            native_gpu=self.native_needs_gpu,
            compose_gpu=service_needs_gpu(definition),
            embedded=self.kind == "llamacpp",
        )

    def preflight(self) -> None:
        """Fail within seconds when this machine cannot start the engine or run the model."""
        if self.launcher is not None:
            return
        needs = self.needs()
        requested = self.engine_cfg.launcher
        launcher = choose_launcher(requested, needs, gather_facts(needs, requested))
        self.check_model()
        refuse_taken_port(self.engine_cfg)
        self.launcher = launcher

    def compose_service(self) -> ComposeService:
        return ComposeService(self.service, self.engine_cfg.compose_project, self.compose_env())

    def start(self) -> None:
        self.preflight()
        self.port = self.engine_cfg.port or host.free_port(self.engine_cfg.host)
        if self.launcher == "native":
            env = {**os.environ, **self.native_env()}
            self.process = ManagedProcess(self.native_command(), self.log_path, env=env)
            self.process.start()
        else:
            self.compose = self.compose_service()
            self.compose.up(self.engine_cfg.pull_timeout_s)

    def _died(self) -> str | None:
        if self.process is not None and not self.process.alive():
            return f"the server exited with code {self.process.exit_code()}"
        if self.compose is not None:
            now = time.monotonic()
            if now - self._last_state_check < STATE_CHECK_INTERVAL_S:
                return None
            self._last_state_check = now
            state = self.compose.inspect("{{.State.Status}} {{.State.ExitCode}}")
            if state is None or state.split()[0] in ("exited", "dead"):
                return f"the {self.service} container stopped ({state or 'no container'})"
        return None

    def engine_log_tail(self, lines: int = 30) -> str:
        if self.compose is not None:
            return self.compose.logs(tail=lines).strip() or "(empty engine log)"
        return log_tail(self.log_path, lines)

    def wait_ready(self) -> None:
        try:
            # start() picks another free port for a native server that lost its own
            retry_if_port_lost(self._wait_healthy, self._port_taken_meanwhile, self.start)
        except EngineError as exc:
            raise EngineError(
                f"{exc} (engine.startup_timeout_s={self.engine_cfg.startup_timeout_s:.0f}); "
                f"last lines of the engine log:\n{self.engine_log_tail()}"
            ) from None
        self.after_ready()

    def _wait_healthy(self) -> None:
        poll_until(
            lambda: http_get(f"{self.root_url}{self.health_path}", timeout_s=2)[0] == 200,
            self.engine_cfg.startup_timeout_s,
            f"{self.engine_cfg.name} at {self.root_url} ({self.launcher})",
            interval_s=0.5,
            still_possible=self._died,
        )

    def _port_taken_meanwhile(self) -> bool:
        """A native server lost the free port picked for it to another program."""
        return (
            not self.engine_cfg.port and self.process is not None and self.process.lost_its_port()
        )

    def launch_info(self) -> dict[str, Any]:
        """How it was started: launcher, and the image digest or the binary that ran."""
        info: dict[str, Any] = {"launcher": self.launcher}
        if self.compose is not None:
            image = self.compose.image
            info.update(image=image, image_digest=image_digest(image), service=self.service)
        elif self.process is not None:
            info.update(binary=self.process.args[0])
        return info

    def get_json(self, path: str, timeout_s: float = 5.0) -> Any:
        """GET a JSON document from the server, or None when it does not answer with one."""
        try:
            status, body = http_get(f"{self.root_url}{path}", timeout_s=timeout_s)
            return json.loads(body) if status == 200 else None
        except (OSError, ValueError):
            return None

    def pids(self) -> list[int]:
        if self.process is not None and self.process.pid:
            return [self.process.pid]
        if self.compose is not None and not self._pids:
            pid = self.compose.inspect("{{.State.Pid}}")
            self._pids = [int(pid)] if pid and pid.isdigit() and pid != "0" else []
        return self._pids

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.alive()
        if self.compose is not None:
            return (self.compose.inspect("{{.State.Status}}") or "") == "running"
        return False

    def save_log(self) -> None:
        if self.compose is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_path.write_text(self.compose.logs())

    def stop(self) -> None:
        grace_s = self.engine_cfg.stop_grace_s
        if self.process is not None:
            self.process.stop(grace_s)
        if self.compose is not None:
            self.save_log()
            self.compose.stop(grace_s)
