"""The one line a run that did not complete leaves on the console: what stopped it, where
its records are, and the command that goes on from them."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from harness.store import REQUESTS_FILE, SUMMARY_FILE

EXIT_SIGINT, EXIT_SIGTERM, EXIT_FAILED = 130, 143, 1

CAUSES = {
    "SIGINT": "stopped by Ctrl-C (SIGINT)",
    "SIGTERM": "stopped by SIGTERM",
    "engine_died": "the engine died",
    "server_gone": "the server went away",
    "disk_full": "the results disk is full",
    "client_limit": "the client cannot carry the level",
}


def resume_command(overrides: list[str]) -> str:
    """The job's own overrides with resume=true: it goes on in the same run directory."""
    kept = [o for o in overrides if not o.startswith("resume=")]
    return shlex.join(["python", "-m", "harness.bench", *kept, "resume=true"])


def records_kept(run_dir: Path) -> int:
    path = run_dir / REQUESTS_FILE
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def stop_line(summary: dict[str, Any], run_dir: Path, overrides: list[str]) -> str:
    """One line: the cause, the records kept and where, the summary's state, the resume."""
    reason = summary.get("stopped_by") or summary.get("failure") or summary.get("status")
    cause = CAUSES.get(str(reason), f"run {summary.get('status')}")
    detail = _split_error(summary)[0]
    if detail and reason not in ("SIGINT", "SIGTERM"):
        cause += f" ({detail})"
    written = not summary.get("summary_not_written")
    state = (
        f"{SUMMARY_FILE} marked {summary.get('status')}"
        if written
        else f"no {SUMMARY_FILE} could be written (resume makes it from the records)"
    )
    return (
        f"{cause}: {records_kept(run_dir)} records kept in {run_dir / REQUESTS_FILE}, "
        f"{state}; to go on: {resume_command(overrides)}"
    )


LOG_TAIL = "last lines of "  # where an engine error's own log begins


def _split_error(summary: dict[str, Any]) -> tuple[str, str]:
    """An error's first line (for the stop line) and the engine log it carries (for above
    it): the engine's own words are often the answer."""
    error = str(summary.get("error") or "")
    at = error.find(LOG_TAIL)
    head, tail = (error[:at], error[at:]) if at >= 0 else (error, "")
    lines = head.splitlines()
    head = lines[0].rstrip("; ") if lines else ""
    return head, "\n".join([*lines[1:], *tail.splitlines()])


def stop_detail(summary: dict[str, Any]) -> str:
    """What the error says past its first line: the engine's last log lines, where any."""
    return _split_error(summary)[1]


def exit_status(summary: dict[str, Any]) -> int:
    return {"SIGINT": EXIT_SIGINT, "SIGTERM": EXIT_SIGTERM}.get(
        str(summary.get("stopped_by")), EXIT_FAILED
    )
