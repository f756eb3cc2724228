"""Faults against real processes: nothing finished is lost, every outcome explains itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.support.runs import REPO, only_run_dir, read_summary

BENCH = [sys.executable, "-m", "harness.bench"]


def bench(*overrides: str, timeout_s: float = 300, env: dict | None = None):
    return subprocess.run(
        [*BENCH, *overrides],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
    )


def start_bench(*overrides: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*BENCH, *overrides], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_records(results: Path, count: int, process: subprocess.Popen, timeout_s=240):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        files = list(results.rglob("requests.jsonl"))
        if files and len(files[0].read_text().splitlines()) >= count:
            return files[0].parent
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} records after {timeout_s} s")


def valid_records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]


def engine_processes(parent_pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(parent_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def embedded(results: Path, *more: str) -> list[str]:
    return [
        f"results={results}",
        "load.concurrency=[1,2]",
        "load.requests_per_level=6",
        "workload.max_tokens=48",
        *more,
    ]


@pytest.mark.engine
def test_engine_killed_mid_level_keeps_records_and_says_the_engine_died(tmp_path: Path) -> None:
    process = start_bench(*embedded(tmp_path))
    run_dir = wait_for_records(tmp_path, 2, process)
    engines = [
        p for p in engine_processes(process.pid) if "xllamacpp_server" in " ".join(p.cmdline())
    ]
    assert engines, "the engine runs in a child process"
    engines[0].send_signal(signal.SIGKILL)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    summary = read_summary(run_dir)
    assert summary["status"] == "failed"
    assert "the engine stopped" in summary["error"]
    assert any(level["status"] == "engine_died" for level in summary["levels"])
    records = valid_records(run_dir)
    assert sum(r["status"] == "ok" for r in records) >= 2
    assert (run_dir / "engine.log").stat().st_size > 0
    said = [line for line in stderr.splitlines() if line.startswith("the engine died")]
    assert len(said) == 1 and "resume=true" in said[0] and "Traceback" not in stderr


@pytest.mark.engine
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_the_engine_and_leaves_valid_files(tmp_path: Path, sig) -> None:
    process = start_bench(*embedded(tmp_path))
    run_dir = wait_for_records(tmp_path, 1, process)
    children = engine_processes(process.pid)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig]
    assert "Traceback" not in stderr
    summary = read_summary(run_dir)
    assert summary["status"] == "interrupted"
    assert summary["levels"] and summary["levels"][-1]["status"] == "interrupted"
    assert len(valid_records(run_dir)) >= 1
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"left running: {alive}"
    assert "| llamacpp-embedded" in (run_dir / "table.md").read_text()


@pytest.mark.engine
def test_an_engine_that_never_gets_ready_times_out_with_its_log(tmp_path: Path) -> None:
    started = time.monotonic()
    result = bench(*embedded(tmp_path, "engine.startup_timeout_s=0.2"))
    assert time.monotonic() - started < 60
    assert result.returncode == 1
    assert "not ready after" in result.stderr
    summary = read_summary(only_run_dir(tmp_path))
    assert summary["status"] == "failed" and "last lines of" in summary["error"]


def openai_overrides(results: Path, url: str, *more: str) -> list[str]:
    return [
        f"results={results}",
        "engine=openai",
        f"engine.url={url}",
        "model=served",
        "model.served_name=reference",
        "engine.startup_timeout_s=1",
        *more,
    ]


def test_a_sweep_goes_on_after_a_failed_job(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(ttft_ms=1, itl_ms=1)
    result = bench(
        "--multirun",
        *openai_overrides(
            tmp_path,
            f"http://127.0.0.1:9/v1,{url}",
            "load.concurrency=[1]",
            "load.requests_per_level=2",
        ),
    )
    statuses = sorted(read_summary(p.parent)["status"] for p in tmp_path.rglob("summary.json"))
    assert statuses == ["complete", "failed"], result.stderr[-2000:]


def test_a_sweep_stops_after_a_failed_job_when_told_to(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(ttft_ms=1, itl_ms=1)
    result = bench(
        "--multirun",
        *openai_overrides(
            tmp_path, f"http://127.0.0.1:9/v1,{url}", "on_failure=stop", "load.concurrency=[1]"
        ),
    )
    assert result.returncode != 0
    assert "on_failure=stop" in result.stderr
    statuses = [read_summary(p.parent)["status"] for p in tmp_path.rglob("summary.json")]
    assert statuses == ["failed"]


def test_http_errors_are_counted_by_type_and_the_level_marked_failed(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(fault="http_500")
    result = bench(
        *openai_overrides(
            tmp_path,
            url,
            "load.warmup_requests=0",
            "load.concurrency=[2]",
            "load.requests_per_level=4",
            "load.min_requests_per_worker=2",
        )
    )
    summary = read_summary(only_run_dir(tmp_path))
    level = summary["levels"][0]
    assert (level["status"], level["errors_by_type"], level["requests_ok"]) == (
        "failed",
        {"http_5xx": 4},
        0,
    )
    assert "failed" in result.stdout  # the table shows it; no silent zero


def test_an_unwritable_store_is_refused_before_anything_starts(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    started = time.monotonic()
    result = bench(f"results={blocker}/store")
    assert result.returncode == 2
    assert "is not writable" in result.stderr
    assert time.monotonic() - started < 30


def test_too_little_free_space_is_refused(tmp_path: Path) -> None:
    result = bench(f"results={tmp_path}", "min_free_disk_mib=1000000000")
    assert result.returncode == 2
    assert "MiB free under" in result.stderr
    assert not list(tmp_path.rglob("summary.json"))


def test_resume_skips_finished_levels_and_runs_the_rest(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(ttft_ms=10, itl_ms=40)
    overrides = openai_overrides(
        tmp_path,
        url,
        "load.concurrency=[1,2,4]",
        "load.requests_per_level=2",
        "load.min_requests_per_worker=2",
        "workload.max_tokens=20",
    )
    process = start_bench(*overrides)
    run_dir = wait_for_records(tmp_path, 7, process)  # 2 + 4 finished, level 3 under way
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    assert read_summary(run_dir)["status"] == "interrupted"

    result = bench(*overrides, "resume=true")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resuming {run_dir}" in result.stdout
    summary = read_summary(run_dir)
    assert summary["status"] == "complete" and len(summary["resumed_at"]) == 1
    assert [(lv["concurrency"], lv["requests_ok"]) for lv in summary["levels"]] == [
        (1, 2),
        (2, 4),
        (4, 8),
    ]
    records = valid_records(run_dir)
    assert sorted(r["request_id"] for r in records) == list(range(14))
    discarded = (run_dir / "requests.discarded.jsonl").read_text().splitlines()
    assert discarded and all(json.loads(x)["level"] == 2 for x in discarded)
    assert len(list(tmp_path.rglob("summary.json"))) == 1


def test_a_planted_api_key_reaches_the_server_but_no_file(
    start_reference_server: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-planted-7f3a9c1e5b"
    monkeypatch.setenv("BENCH_TEST_KEY", secret)
    url = start_reference_server(api_key_env="BENCH_TEST_KEY", ttft_ms=1, itl_ms=1)
    env = {**os.environ}
    result = bench(
        *openai_overrides(
            tmp_path,
            url,
            "engine.api_key_env=BENCH_TEST_KEY",
            "load.concurrency=[1]",
            "load.requests_per_level=2",
        ),
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]  # the server demanded the key
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path
    assert secret not in result.stdout + result.stderr


def test_without_the_key_the_server_refuses_and_the_run_says_why(
    start_reference_server: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BENCH_TEST_KEY", "sk-other")
    url = start_reference_server(api_key_env="BENCH_TEST_KEY")
    monkeypatch.delenv("BENCH_TEST_KEY")
    result = bench(*openai_overrides(tmp_path, url))
    assert result.returncode == 1
    assert "refused the request (HTTP 401)" in result.stderr
    assert "engine.api_key_env" in result.stderr


def test_no_shell_strings_are_built_anywhere() -> None:
    for path in (REPO / "harness").rglob("*.py"):
        text = path.read_text()
        for banned in ("shell=True", "os.system(", "os.popen("):
            assert banned not in text, f"{path}: {banned}"


def test_an_unexpected_error_marks_the_run_failed_not_running(tmp_path: Path) -> None:
    from harness.telemetry.nvml import Nvml

    if Nvml().available:
        pytest.skip("needs a machine without NVML")
    result = bench(*openai_overrides(tmp_path, "http://127.0.0.1:9/v1", "telemetry.gpu=on"))
    assert result.returncode == 1
    summary = read_summary(only_run_dir(tmp_path))
    assert summary["status"] == "failed"
    assert summary["error"].startswith("RuntimeError: telemetry.gpu=on but")
