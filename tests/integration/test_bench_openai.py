"""`make bench ENGINE=openai URL=... MODEL=...` measures a server the harness did not start."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.telemetry.nvml import Nvml
from tests.support.runs import make_bench, only_run_dir, read_summary


def test_bench_measures_a_running_openai_compatible_server(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(ttft_ms=20, itl_ms=5, model="ref-model")
    result = make_bench(
        tmp_path,
        ENGINE="openai",
        URL=url,
        MODEL="ref-model",
        CONCURRENCY="1,4",
        REQUESTS="8",
        MAX_TOKENS="12",
        ARGS="machine.label=test-box",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path)
    assert run_dir.parent.name == "test-box"
    assert run_dir.name.startswith("openai__ref-model__")
    summary = read_summary(run_dir)
    assert summary["status"] == "complete"
    assert [lv["concurrency"] for lv in summary["levels"]] == [1, 4]
    for level in summary["levels"]:
        sent = {1: 8, 4: 16}[level["concurrency"]]  # at least 4 requests per worker
        assert level["requests_ok"] == sent and level["requests_failed"] == 0
        assert level["output_tokens_total"] == sent * 12
        assert level["ttft_ms"]["p50"] == pytest.approx(20, abs=10)
        # a server on this machine: its GPU's memory where NVML answers; no process of
        # ours to measure otherwise
        expected_kind = "gpu" if Nvml().available else None
        assert level["peak_memory_kind"] == expected_kind
        assert (level["peak_memory_mib"] is None) == (expected_kind is None)
    records = [json.loads(x) for x in (run_dir / "requests.jsonl").read_text().splitlines()]
    assert len(records) == 24
    for record in records:  # wall and monotonic clocks tell the same duration
        wall_s = record["end_wall_s"] - record["start_wall_s"]
        assert wall_s == pytest.approx(record["e2e_ms"] / 1000, abs=0.05)
        assert record["prompt_tokens_source"] == "usage" and record["prompt_tokens"] > 0
    assert (run_dir / ".hydra" / "config.yaml").exists()
    assert "| openai" in (run_dir / "table.md").read_text()
    assert "| openai" in result.stdout


def test_bench_fails_fast_when_the_server_is_not_there(tmp_path: Path) -> None:
    result = make_bench(
        tmp_path,
        ENGINE="openai",
        URL="http://127.0.0.1:9/v1",
        MODEL="x",
        ARGS="engine.startup_timeout_s=2",
        timeout_s=120,
    )
    assert result.returncode != 0
    assert "is it running? check URL=" in result.stderr
    summary = read_summary(only_run_dir(tmp_path))
    assert summary["status"] == "failed"
    assert summary["levels"] == []


def test_bench_names_the_served_models_when_the_model_is_wrong(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(model="the-real-one")
    result = make_bench(tmp_path, ENGINE="openai", URL=url, MODEL="another")
    assert result.returncode != 0
    assert "it serves: the-real-one" in result.stderr
