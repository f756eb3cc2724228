"""A level bounded by its time makes its requests as it sends them: ten million asked for,
or none, against a real server; a count that changes is said on the console."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.support.runs import REPO, make_bench, only_run_dir, read_summary


def test_ten_million_requests_bounded_by_a_second_end_after_the_second(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(ttft_ms=0, itl_ms=0)
    result = make_bench(
        tmp_path,
        timeout_s=120,
        ENGINE="openai",
        URL=url,
        MODEL="reference",
        CONCURRENCY="4",
        REQUESTS="10000000",
        ARGS="load.max_duration_s=1 print_table=false",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    level = read_summary(only_run_dir(tmp_path))["levels"][0]
    assert level["stopped_by_deadline"] is True
    assert 0 < level["requests_ok"] < 10_000_000


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
