"""Owns one child process and every process it starts: started with an argument list,
stopped gracefully then by force, until none of them is left."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil

from harness.engines.host import lost_the_port

log = logging.getLogger(__name__)

# Every process the child starts inherits this variable, so that one that left the process
# group (setsid) and lost its parent is still found as the engine's.
OWNER_ENV = "LLM_BENCH_ENGINE_OWNER"
KILL_WAIT_S = 10.0
POLL_S = 0.05


class ManagedProcess:
    """A child in its own process group, its output appended to a log file."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_offset = 0  # where this start's output begins in the appended log
        self.owner_mark = uuid.uuid4().hex
        # The family seen while the child ran (`remember_family`): found again after the
        # child exited even where a process lost both its parent and its mark (vLLM's engine
        # core and workers rename themselves with setproctitle, which overwrites the
        # environment /proc shows).
        self.known: list[psutil.Process] = []

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**(os.environ if self.env is None else self.env), OWNER_ENV: self.owner_mark}
        with self.log_path.open("ab") as log_file:
            self.log_offset = log_file.tell()
            self.proc = subprocess.Popen(
                self.args,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
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

    def family(self) -> list[psutil.Process]:
        """The child and every process it started that still runs (see `find_family`)."""
        alive = self.proc is not None and self.alive()  # a reaped child's pid may be reused
        leader = self.proc.pid if alive and self.proc else None
        return find_family(leader, self.owner_mark, self.known)

    def remember_family(self) -> None:
        """Keep the processes the child has started by now (called once it is ready)."""
        self.known = self.family()

    def stop(self, grace_s: float) -> int | None:
        """SIGTERM the whole family, wait up to `grace_s` until none is left, then SIGKILL
        what remains and wait again. Returns the child's exit code."""
        if self.proc is None:
            return None
        proc = self.proc

        def group() -> int | None:  # an unreaped child still holds its pid: the group is ours
            return proc.pid if proc.poll() is None else None

        stop_family(self.family, grace_s, group, reap=proc.poll)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=KILL_WAIT_S)
        return proc.returncode


def find_family(
    leader_pid: int | None, owner_mark: str | None, known: Iterable[psutil.Process] = ()
) -> list[psutil.Process]:
    """A leader and its descendants, with those that left its group or lost their parent but
    carry its owner mark (OWNER_ENV) or were seen in the family before (`known`: psutil
    tells a reused pid from the process it was), as far as they still run."""
    found: dict[int, psutil.Process] = {process.pid: process for process in known}
    if leader_pid is not None:
        with contextlib.suppress(psutil.Error):
            leader = psutil.Process(leader_pid)
            found[leader.pid] = leader
            found.update((child.pid, child) for child in leader.children(recursive=True))
    if owner_mark:
        for process in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if process.environ().get(OWNER_ENV) == owner_mark:
                    found[process.pid] = process
    return [process for process in found.values() if _running(process)]


def stop_family(
    family: Callable[[], list[psutil.Process]],
    grace_s: float,
    group: Callable[[], int | None],
    reap: Callable[[], object] = lambda: None,
) -> list[psutil.Process]:
    """SIGTERM every process `family()` names (and the process group `group()` names while
    it is still the leader's), wait up to `grace_s` until none runs, then SIGKILL what is
    left, with any started meanwhile, and wait again. Returns those that survived even that."""
    members = family()
    if not members:
        return []
    _signal(members, signal.SIGTERM, group)
    left = _wait_gone(members, grace_s, reap)
    if not left:
        return []
    log.info(
        "%d engine process(es) still running %.1f s after SIGTERM (pids %s); sending SIGKILL",
        len(left),
        grace_s,
        _pids(left),
    )
    everyone = family()
    _signal(everyone, signal.SIGKILL, group)
    left = _wait_gone(everyone, KILL_WAIT_S, reap)
    if left:
        log.warning("engine processes %s survived SIGKILL", _pids(left))
    return left


def _signal(
    family: list[psutil.Process], sig: signal.Signals, group: Callable[[], int | None]
) -> None:
    if (group_id := group()) is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group_id, sig)
    for process in family:
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)  # psutil checks that the pid was not reused


def _wait_gone(
    family: list[psutil.Process], timeout_s: float, reap: Callable[[], object]
) -> list[psutil.Process]:
    """Wait until none of `family` runs (reaping our child); those still running."""
    deadline = time.monotonic() + timeout_s
    while True:
        reap()
        left = [process for process in family if _running(process)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(POLL_S)


def _running(process: psutil.Process) -> bool:
    """Running and not a zombie (a zombie holds no memory; its parent or init reaps it)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _pids(processes: list[psutil.Process]) -> str:
    return ", ".join(str(process.pid) for process in processes)
