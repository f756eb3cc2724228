"""What ends a run before its last level: the engine died, the server went away, a signal."""

from __future__ import annotations

from typing import Any

from harness.engines import Engine, EngineError


class EngineDied(EngineError):
    """The engine is gone between levels: the run ends as `engine_died`."""


class ServerGone(EngineError):
    """A server the harness did not start refuses every connection: `server_gone`."""


def stop_signal(exc: KeyboardInterrupt) -> str:
    """Which signal stopped the run: SIGTERM where it says so, else SIGINT (Ctrl-C)."""
    return "SIGTERM" if "SIGTERM" in str(exc) else "SIGINT"


def check_level_end(summary: dict[str, Any], engine: Engine, level: str) -> None:
    """A level its engine died in, or whose server went away, ends the run."""
    status = summary["levels"][-1].get("status") if summary["levels"] else None
    if status == "engine_died" or not engine.alive():
        raise EngineDied(f"the engine stopped during {level}; see {engine.log_path}")
    if status == "server_gone":
        raise ServerGone(
            f"the server at {engine.base_url} refused every connection in a row during "
            f"{level}: it is gone"
        )
