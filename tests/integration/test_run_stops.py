"""Every way a run stops leaves one line on the console (what happened, where the records
are, the resume command), no traceback, and whole records: Ctrl-C, SIGTERM, a server that
goes away, a full results disk. Real server processes, a real tmpfs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.reference_server import running_process
from tests.support.runs import REPO

BENCH = [sys.executable, "-m", "harness.bench", "engine=openai", "model=served"]


def bench_args(url: str, results: Path, *extra: str) -> list[str]:
    return [
        *BENCH,
        "model.served_name=reference",
        "model.name=reference",
        f"engine.url={url}",
        f"results={results}",
        "print_table=false",
        "load.warmup_requests=0",
        *extra,
    ]


def wait_for_records(results: Path, count: int, process: subprocess.Popen) -> Path:
    """The run's requests.jsonl once it holds `count` lines (the bench still running)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        for path in results.rglob("requests.jsonl"):
            if len(path.read_bytes().splitlines()) >= count:
                return path
        time.sleep(0.05)  # polling a file for a condition, not timing
    raise AssertionError("no records appeared")


def assert_whole_lines(path: Path) -> int:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    lines = data.splitlines()
    for line in lines:
        json.loads(line)
    return len(lines)


@pytest.mark.parametrize(
    ("sig", "status", "said"),
    [
        (signal.SIGINT, 130, "stopped by Ctrl-C (SIGINT)"),
        (signal.SIGTERM, 143, "stopped by SIGTERM"),
    ],
)
def test_a_signal_stops_the_run_with_one_line_and_its_exit_status(
    tmp_path: Path, sig: signal.Signals, status: int, said: str
) -> None:
    with running_process(ttft_ms=20, itl_ms=20) as (url, _):
        args = bench_args(url, tmp_path, "load.concurrency=[2]", "load.requests_per_level=400")
        process = subprocess.Popen(
            args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        path = wait_for_records(tmp_path, 4, process)
        process.send_signal(sig)
        out, err = process.communicate(timeout=60)
    assert process.returncode == status, err[-3000:]
    assert "Traceback" not in out + err
    line = [x for x in err.splitlines() if x.startswith(said)]
    assert len(line) == 1 and "resume=true" in line[0] and str(path) in line[0]
    kept = assert_whole_lines(path)
    assert f"{kept} records kept" in line[0]
    summary = json.loads((path.parent / "summary.json").read_text())
    assert summary["status"] == "interrupted"


def test_a_server_that_goes_away_ends_the_run_as_server_gone(tmp_path: Path) -> None:
    with running_process(ttft_ms=5, itl_ms=5) as (url, pid):
        args = bench_args(url, tmp_path, "load.concurrency=[4]", "load.requests_per_level=100000")
        process = subprocess.Popen(
            args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        path = wait_for_records(tmp_path, 8, process)
        os.kill(pid, signal.SIGKILL)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 1, err[-3000:]
    assert "Traceback" not in out + err
    assert "the server went away" in err and "resume=true" in err
    summary = json.loads((path.parent / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["failure"] == "server_gone"
    assert summary["levels"][0]["status"] == "server_gone"
    assert assert_whole_lines(path) < 100000


def test_a_full_results_disk_stops_the_run_with_whole_records(tmp_path: Path) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) to mount a small tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {probe.stderr.decode()[-200:]}")
    with running_process(ttft_ms=0, itl_ms=0) as (url, _):
        args = bench_args(
            url,
            disk,
            "load.concurrency=[4]",
            "load.requests_per_level=100000",
            "min_free_disk_mib=0",
        )
        script = (
            f"mount -t tmpfs -o size=400k tmpfs {disk} && "
            f"{' '.join(repr(a) for a in args)}; status=$?; "
            f"cp -r {disk} {tmp_path}/copy; exit $status"
        )
        done = subprocess.run(
            ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
    out, err = done.stdout, done.stderr
    assert done.returncode == 1, err[-3000:]
    assert "Traceback" not in out + err
    assert "the results disk is full" in err and "resume=true" in err
    (records,) = (tmp_path / "copy").rglob("requests.jsonl")
    assert assert_whole_lines(records) > 0
    summary = json.loads((records.parent / "summary.json").read_text())
    # the summary says so, or the console says it could not be written
    said_unwritten = "no summary.json could be written" in err
    assert summary.get("failure") == "disk_full" or said_unwritten
