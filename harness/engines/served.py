"""What the engine servers share: start natively or under Compose, wait, watch, stop.

A subclass says how its server is called (native argument list, compose environment),
which HTTP path answers when it is ready, and how to read its version and metrics.
"""

from __future__ import annotations

import os
import time
from abc import abstractmethod
from typing import Any

from harness.engines import host
from harness.engines.base import refuse_taken_port
from harness.engines.compose import (
    ComposeService,
    image_digest,
    image_variables,
    load_compose,
    service_needs_gpu,
)
from harness.engines.launch import Needs, choose_launcher, gather_facts
from harness.engines.owned import OwnedServer

STATE_CHECK_INTERVAL_S = 2.0
HOST_NETWORK_SUFFIX = "-host"


class ServedEngine(OwnedServer):
    """An engine server owned by the harness: native process or compose service."""

    default_binary: str
    default_service: str
    container_port: int
    native_needs_gpu: bool = False
    health_interval_s = 0.5

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.launcher: str | None = None
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
    def service_env(self) -> dict[str, str]:
        """The variables docker/compose.yaml reads for this engine's knobs."""

    # -- shared ---------------------------------------------------------------------------
    @property
    def binary(self) -> str:
        return self.engine_cfg.binary or self.default_binary

    @property
    def service(self) -> str:
        """The compose service: the engine's own, or its twin on the host's network."""
        service = self.engine_cfg.service or self.default_service
        return service + HOST_NETWORK_SUFFIX if self.host_network else service

    @property
    def host_network(self) -> bool:
        return self.engine_cfg.network == "host"

    def compose_env(self) -> dict[str, str]:
        """Every variable docker/compose.yaml reads for this run."""
        return {**self.service_env(), **self.listen_env(), **self.image_env()}

    def listen_env(self) -> dict[str, str]:
        """Where the server listens in its container: on every interface of the container,
        behind the published port; on the host's network, at engine.host and the run's port."""
        if self.host_network:
            host, port = self.engine_cfg.host, self.port
        else:
            host, port = "0.0.0.0", self.container_port
        return {"ENGINE_LISTEN_HOST": host, "ENGINE_LISTEN_PORT": str(port)}

    def image_env(self) -> dict[str, str]:
        """engine.image for the service; an image given with its own digest also clears a
        digest pinned in the shell (*_DIGEST)."""
        image = self.engine_cfg.image
        definition = load_compose()["services"].get(self.service)
        if not image or definition is None:  # an unknown service is refused by ComposeService
            return {}
        image_var, digest_var = image_variables(definition)
        return {image_var: image, **({digest_var: ""} if "@" in image else {})}

    def describe(self) -> str:
        return f"{super().describe()} ({self.launcher})"

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
        # a restart after the port was lost picks another free one here
        self.port = self.engine_cfg.port or host.free_port(self.engine_cfg.host)
        if self.launcher == "native":
            self.start_process(self.native_command(), {**os.environ, **self.native_env()})
        else:
            self.gpu_memory.take_baseline()
            self.compose = self.compose_service()
            self.compose.up(self.engine_cfg.pull_timeout_s)

    def died(self) -> str | None:
        if self.compose is None:
            return super().died()
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
        return super().engine_log_tail(lines)

    def startup_log(self) -> str:
        if self.compose is not None:
            return self.compose.logs()
        return super().startup_log()

    def network(self) -> str:
        if self.compose is None:
            return "host"
        # any other mode (the project's network, "llm-bench_default") is behind a published port
        mode = self.compose.inspect("{{.HostConfig.NetworkMode}}")
        if mode is None:
            return self.engine_cfg.network
        return "host" if mode == "host" else "bridge"

    def launch_info(self) -> dict[str, Any]:
        """How it was started: launcher, and the image digest or the binary that ran."""
        info: dict[str, Any] = {"launcher": self.launcher}
        if self.compose is not None:
            image = self.compose.image
            digest = image_digest(image, running=self.compose.inspect("{{.Image}}"))
            info.update(image=image, image_digest=digest, service=self.service)
        elif self.process is not None:
            info.update(binary=self.process.args[0])
        return info

    def pids(self) -> list[int]:
        if self.compose is None:
            return super().pids()
        if not self._pids:
            pid = self.compose.inspect("{{.State.Pid}}")
            self._pids = [int(pid)] if pid and pid.isdigit() and pid != "0" else []
        return self._pids

    def alive(self) -> bool:
        if self.compose is None:
            return super().alive()
        return (self.compose.inspect("{{.State.Status}}") or "") == "running"

    def save_log(self) -> None:
        if self.compose is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_path.write_text(self.compose.logs())

    def stop(self) -> None:
        try:
            if self.compose is not None:
                self.save_log()
                self.compose.stop(self.engine_cfg.stop_grace_s)
        finally:
            super().stop()
