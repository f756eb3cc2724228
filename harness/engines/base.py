"""The small protocol every engine implements, and what engines share."""

from __future__ import annotations

import http.client
import logging
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.config import EngineConfig, ModelConfig
from harness.engines.host import PORT_ATTEMPTS, port_problem
from harness.engines.weights import SOURCES

log = logging.getLogger(__name__)


class EngineError(RuntimeError):
    """An engine could not be provisioned, started or reached; the message says what to do."""


class Engine(ABC):
    """preflight -> provision -> start -> wait_ready -> (levels) -> stop.

    Versions, settings and metrics on demand.
    """

    def __init__(self, engine_cfg: EngineConfig, model_cfg: ModelConfig, run_dir: Path) -> None:
        self.engine_cfg = engine_cfg
        self.model_cfg = model_cfg
        self.run_dir = run_dir
        self.log_path = run_dir / "engine.log"

    @property
    @abstractmethod
    def base_url(self) -> str:
        """The OpenAI-compatible root, ending in /v1."""

    @property
    @abstractmethod
    def served_model(self) -> str:
        """The model name requests must carry."""

    def preflight(self) -> None:
        """Fail within seconds, before any download, when the engine cannot start here."""
        return None

    @abstractmethod
    def provision(self) -> dict[str, Any]:
        """Make the model available; return what identifies it (path, sha256, tag...)."""

    @abstractmethod
    def start(self) -> None:
        """Start the server (or do nothing for a server the harness does not own)."""

    @abstractmethod
    def wait_ready(self) -> None:
        """Block until the server answers, or raise EngineError at the deadline."""

    def version(self) -> dict[str, Any]:
        return {}

    def settings(self) -> dict[str, Any]:
        """Settings that actually took effect, as the server reports them."""
        return {}

    def served_weights(self, model_info: dict[str, Any]) -> dict[str, Any]:
        """What the server serves (valid after wait_ready), read back from it where it says:
        format, quantisation and where that was read, the file's sha256, the source. A server
        that says nothing of its weights gets none of them from the config."""
        return {
            "format": None,
            "quant": None,
            "quant_from": "not read back: the server does not say",
            "source": SOURCES.get(str(model_info.get("source")), model_info.get("source")),
            "name": model_info.get("served_name") or model_info.get("name"),
        }

    def requested_settings(self) -> dict[str, Any]:
        """The knobs the harness passed to the server (arguments or environment), as passed;
        empty for a server it did not start."""
        return {}

    def scrape(self) -> dict[str, float]:
        """The engine's own metrics now (counters and gauges), or {} when it has none or
        does not answer (it died between levels); never raises."""
        return {}

    def runs_on_gpu(self) -> bool | None:
        """Whether the engine reports its model on a GPU (valid after wait_ready); None
        when it does not say."""
        return None

    def pids(self) -> list[int]:
        """Processes whose memory is the engine's (empty for a server we did not start)."""
        return []

    @property
    def on_this_machine(self) -> bool:
        """Whether the server runs here, so that this machine's GPU memory is its memory."""
        return True

    def alive(self) -> bool:
        return True

    def save_log(self) -> None:
        """Bring the engine's log into the run directory where it is not written there
        already (a container's log); called when the engine is left running."""
        return None

    @abstractmethod
    def stop(self) -> None:
        """Stop the server (graceful, then forced) unless it is not ours to stop."""


def http_get(
    url: str, timeout_s: float = 5.0, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """A small blocking GET for health checks and scrapes (never on the event loop)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", errors="replace")


# What a request to a server that died or answers garbage can raise.
HTTP_ERRORS = (OSError, ValueError, http.client.HTTPException)


def scrape_prometheus(
    url: str, timeout_s: float = 5.0, headers: dict[str, str] | None = None
) -> dict[str, float]:
    """The Prometheus metrics at `url`, or {} when the server does not answer with them
    (it died, or has no such endpoint); never raises."""
    try:
        status, body = http_get(url, timeout_s=timeout_s, headers=headers)
    except HTTP_ERRORS as exc:
        log.debug("no metrics from %s: %s", url, exc)
        return {}
    return parse_prometheus(body) if status == 200 else {}


def retry_if_port_lost(
    wait: Callable[[], None], port_lost: Callable[[], bool], restart: Callable[[], None]
) -> None:
    """`wait` for the server; when it failed because another program took the free port
    picked for it (`port_lost`), `restart` it on another one, PORT_ATTEMPTS tries in all."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        try:
            wait()
            return
        except EngineError:
            if attempt == PORT_ATTEMPTS or not port_lost():
                raise
        log.warning("the engine's port was taken before it bound it; trying another port")
        restart()


def refuse_taken_port(engine_cfg: EngineConfig) -> None:
    """A port set with engine.port that another program holds: refused before any work."""
    taken = port_problem(engine_cfg.host, engine_cfg.port)
    if taken:
        raise EngineError(f"{engine_cfg.name}: {taken}; set engine.port=0 (a free port)")


def poll_until(
    check: Callable[[], bool],
    deadline_s: float,
    what: str,
    interval_s: float = 0.25,
    still_possible: Callable[[], str | None] = lambda: None,
) -> None:
    """Call `check` until it is true; raise EngineError naming `what` at the deadline.

    `still_possible` returns a reason when waiting longer is pointless (process died).
    """
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        reason = still_possible()
        if reason:
            raise EngineError(f"{what}: {reason}")
        if time.monotonic() >= deadline:
            raise EngineError(f"{what}: not ready after {deadline_s:.0f} s")
        time.sleep(interval_s)


def parse_prometheus(text: str) -> dict[str, float]:
    """Sample lines of the Prometheus text format -> {name{labels}: value}."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.rpartition(" ")
        if not name:
            continue
        try:
            values[name.strip()] = float(rest)
        except ValueError:
            continue
    return values


def log_tail(path: Path, lines: int = 20) -> str:
    if not path.exists():
        return "(no engine log)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])
