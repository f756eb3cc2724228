"""Stop means gone: an engine's children that ignore SIGTERM, or that left its process group,
do not outlive `stop()`.

The stand-in engine is a small script started by the harness's own process code. It forks
a child that ignores SIGTERM (as vLLM's engine core or an Ollama runner may keep running
after their parent), and the child forks a grandchild that calls setsid to leave the
group and ignores SIGTERM too.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness.engines.process import ManagedProcess

STAND_IN = """
import os, signal, sys, time
from pathlib import Path

record, leader_exits = Path(sys.argv[1]), sys.argv[2] == "leader-exits"


def ignore_sigterm_and_wait(name):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    (record / name).write_text(str(os.getpid()))
    while True:
        time.sleep(60)


if os.fork() == 0:
    if os.fork() == 0:
        os.setsid()  # leaves the engine's process group
        ignore_sigterm_and_wait("grandchild")
    ignore_sigterm_and_wait("child")
(record / "leader").write_text(str(os.getpid()))
print("stand-in engine running", flush=True)
if not leader_exits:
    while True:
        time.sleep(60)
"""
GRACE_S = 1.0
ROLES = ("leader", "child", "grandchild")


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def record(tmp_path: Path) -> Iterator[Path]:
    """Where the stand-in writes its pids; whatever a failing test left is killed."""
    folder = tmp_path / "pids"
    folder.mkdir()
    yield folder
    for path in folder.iterdir():
        if running(int(path.read_text())):
            psutil.Process(int(path.read_text())).kill()


def start_stand_in(tmp_path: Path, record: Path, mode: str) -> tuple[ManagedProcess, list[int]]:
    script = tmp_path / "stand_in_engine.py"
    script.write_text(STAND_IN)
    process = ManagedProcess([sys.executable, str(script), str(record), mode], tmp_path / "log")
    process.start()
    deadline = time.monotonic() + 30
    while not all((record / role).exists() for role in ROLES):
        assert time.monotonic() < deadline, "the stand-in did not start its family"
        time.sleep(0.02)
    return process, [int((record / role).read_text()) for role in ROLES]


def test_stop_leaves_no_process_of_the_engine_within_the_grace_and_a_second(
    tmp_path: Path, record: Path
) -> None:
    process, (leader, child, grandchild) = start_stand_in(tmp_path, record, "leader-stays")
    assert {leader, child, grandchild} == {p.pid for p in process.family()}
    assert os.getpgid(child) == leader and os.getpgid(grandchild) == grandchild  # left it
    started = time.monotonic()
    process.stop(GRACE_S)
    elapsed_s = time.monotonic() - started
    assert [pid for pid in (leader, child, grandchild) if running(pid)] == []
    assert process.family() == []
    assert elapsed_s < GRACE_S + 1, f"stop took {elapsed_s:.2f} s"


def test_children_of_an_engine_that_already_exited_are_stopped_too(
    tmp_path: Path, record: Path
) -> None:
    process, (leader, child, grandchild) = start_stand_in(tmp_path, record, "leader-exits")
    deadline = time.monotonic() + 10
    while process.alive():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert running(child) and running(grandchild)  # orphans, no longer its descendants
    started = time.monotonic()
    process.stop(GRACE_S)
    assert [pid for pid in (child, grandchild) if running(pid)] == []
    assert time.monotonic() - started < GRACE_S + 1


def test_an_engine_that_obeys_sigterm_stops_without_waiting_for_the_grace(
    tmp_path: Path,
) -> None:
    process = ManagedProcess([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "l")
    process.start()
    started = time.monotonic()
    assert process.stop(grace_s=10) == -15
    assert time.monotonic() - started < 2


def test_make_down_stops_the_recorded_engine_and_every_process_it_started(
    tmp_path: Path, record: Path
) -> None:
    """`make down` runs in another process than the one that started the engine: from the
    state `make up` wrote (pid, its start time, the owner mark) it finds the children too,
    the one that left the group included, as vLLM's engine core and workers would be."""
    from harness.serve import stop_native

    process, (leader, child, grandchild) = start_stand_in(tmp_path, record, "leader-stays")
    state = {
        "pid": leader,
        "pid_create_time": psutil.Process(leader).create_time(),
        "owner_mark": process.owner_mark,
    }
    started = time.monotonic()
    assert stop_native(state, GRACE_S) == []
    assert [pid for pid in (leader, child, grandchild) if running(pid)] == []
    assert time.monotonic() - started < GRACE_S + 1.5


UNMARKED = """
import os, signal, subprocess, sys, time
from pathlib import Path

record = Path(sys.argv[1])
worker = subprocess.Popen(
    [sys.executable, "-c",
     "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"],
    env={}, start_new_session=True,  # no owner mark, another session: only seen as a child
)
(record / "worker").write_text(str(worker.pid))
while not (record.parent / "exit").exists():
    time.sleep(0.02)
"""


def test_a_process_that_lost_its_parent_and_its_mark_is_still_stopped(
    tmp_path: Path, record: Path
) -> None:
    """vLLM's engine core and workers rename themselves (setproctitle overwrites the
    environment /proc shows, owner mark included): once their API server has exited they
    are neither its descendants nor marked. The family seen when the engine was ready is."""
    script = tmp_path / "unmarked.py"
    script.write_text(UNMARKED)
    process = ManagedProcess([sys.executable, str(script), str(record)], tmp_path / "log")
    process.start()
    deadline = time.monotonic() + 30
    while not (record / "worker").exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    worker = int((record / "worker").read_text())
    process.remember_family()  # as OwnedServer.wait_ready does
    (record.parent / "exit").write_text("")
    while process.alive():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert running(worker)
    assert "LLM_BENCH_ENGINE_OWNER" not in psutil.Process(worker).environ()
    process.stop(GRACE_S)
    assert not running(worker)
