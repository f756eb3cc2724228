"""Owns one child process: started with an argument list, stopped gracefully then by force."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from pathlib import Path

from harness.engines.host import lost_the_port

log = logging.getLogger(__name__)


class ManagedProcess:
    """A child in its own process group, its output appended to a log file."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_offset = 0  # where this start's output begins in the appended log

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self.log_offset = log_file.tell()
            self.proc = subprocess.Popen(
                self.args,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,  # own process group: Ctrl-C reaches us, not it
            )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def lost_its_port(self) -> bool:
        """It exited, saying in its log (this start's part) that its port was taken."""
        return not self.alive() and lost_the_port(self.log_path, self.log_offset)

    def exit_code(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def stop(self, grace_s: float) -> int | None:
        """SIGTERM the group, wait `grace_s`, then SIGKILL it. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                log.info("engine did not stop within %.1f s of SIGTERM; sending SIGKILL", grace_s)
                self._signal_group(signal.SIGKILL)
                self.proc.wait(timeout=30)
        return self.proc.returncode

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
