"""A level bounded by its time makes its requests as it sends them: ten million asked for,
or none, against a real server; a count that changes is said on the console."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.runs import REPO, make_bench, only_run_dir, read_summary

# Runs make in a process of its own and prints the largest resident set of its children
# (Linux: the largest single descendant, here the harness's Python process), in KiB.
PEAK_RSS = (
    "import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
    "print('peak_rss_kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
    "sys.exit(done.returncode)"
)


def test_ten_million_requests_bounded_by_three_seconds_stay_small_and_quick(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    """The issue's bar: under 60 s and under 1 GiB of client RSS (4.5 GB and 12-19 s for a
    million before the requests were made as they are sent)."""
    url = start_reference_server(ttft_ms=0, itl_ms=0)
    command = [sys.executable, "-c", PEAK_RSS, "make", "--no-print-directory", "bench",
               f"RESULTS={tmp_path}", "ENGINE=openai", f"URL={url}", "MODEL=reference",
               "CONCURRENCY=4", "REQUESTS=10000000",
               "ARGS=load.max_duration_s=3 print_table=false"]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    peak_kib = int(result.stdout.rsplit("peak_rss_kib ", 1)[1].split()[0])
    assert elapsed < 60 and peak_kib < 1 << 20, (elapsed, peak_kib)
    level = read_summary(only_run_dir(tmp_path))["levels"][0]
    assert level["stopped_by_deadline"] is True
    assert 0 < level["requests_ok"] < 10_000_000


def test_a_soft_open_files_limit_is_raised_to_the_hard_one(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    """400 streams under a soft limit of 256 (the hard one above): the client raises its
    own soft limit at start, so the level runs and no request is charged to the server."""
    url = start_reference_server(ttft_ms=0, itl_ms=0)
    command = (
        f"ulimit -S -n 256 && make --no-print-directory bench RESULTS={tmp_path} ENGINE=openai "
        f"URL={url} MODEL=reference CONCURRENCY=400 REQUESTS=400 ARGS=print_table=false"
    )
    result = subprocess.run(
        ["bash", "-c", command], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    level = read_summary(only_run_dir(tmp_path))["levels"][0]
    assert level["requests_ok"] == level["requests_sent"] >= 400, level["errors_by_type"]


def test_a_level_bounded_by_time_needs_no_count_and_says_so(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(ttft_ms=0, itl_ms=0)
    result = make_bench(
        tmp_path,
        timeout_s=120,
        ENGINE="openai",
        URL=url,
        MODEL="reference",
        CONCURRENCY="2",
        ARGS="load.max_duration_s=1 print_table=false",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no request count (load.requests_per_level=null)" in result.stdout + result.stderr
    run_dir = only_run_dir(tmp_path)
    records = (run_dir / "requests.jsonl").read_text().splitlines()
    prompts_ids = {json.loads(line)["request_id"] for line in records}
    assert len(prompts_ids) == len(records) > 2
    assert read_summary(run_dir)["levels"][0]["stopped_by_deadline"] is True


def test_a_count_raised_to_cover_every_worker_is_said_on_the_console(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(ttft_ms=0, itl_ms=0)
    result = make_bench(
        tmp_path, ENGINE="openai", URL=url, MODEL="reference", CONCURRENCY="2", REQUESTS="3"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    said = result.stdout + result.stderr
    assert "concurrency=2: 3 requests became 8: 4 per worker" in said
    assert read_summary(only_run_dir(tmp_path))["levels"][0]["requests_ok"] == 8


def test_a_level_beyond_the_open_files_limit_is_refused_with_ulimit_advice(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(ttft_ms=0, itl_ms=0)
    command = (
        f"ulimit -n 256 && make --no-print-directory bench RESULTS={tmp_path} ENGINE=openai "
        f"URL={url} MODEL=reference CONCURRENCY=1,400 REQUESTS=400"
    )
    result = subprocess.run(
        ["bash", "-c", command], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert "bench] Error 1" in result.stderr, result.stderr[-3000:]  # the harness exited 1
    assert "the client cannot carry the level" in result.stderr
    assert "ulimit -n" in result.stderr and "Traceback" not in result.stderr
    summary = read_summary(only_run_dir(tmp_path))
    assert summary["failure"] == "client_limit"
    # the first level ran; the second was refused before it sent anything
    assert [level["concurrency"] for level in summary["levels"]] == [1]
    records = (only_run_dir(tmp_path) / "requests.jsonl").read_text().splitlines()
    assert all(json.loads(line)["error_type"] is None for line in records)
