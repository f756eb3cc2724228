"""Ollama's native API (/api/chat, /api/generate): one JSON object a line, num_predict,
and the engine's own timings beside ours, against the reference server in that form."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.client import scheduler
from harness.client.openai_api import Endpoint, RequestSpec
from harness.client.scheduler import LevelPlan
from harness.metrics import summarize_level
from tests.support.runs import make_bench, only_run_dir, read_summary


@pytest.mark.parametrize("api", ["ollama_chat", "ollama_generate"])
def test_native_streams_are_timed_and_counted_like_openai_ones(
    start_reference_server: Callable[..., str], api: str
) -> None:
    url = start_reference_server(ttft_ms=30, itl_ms=5)
    endpoint = Endpoint(base_url=url, model="reference", api=api)
    plan = LevelPlan(2, 4, None, 30, 5)
    outcome = asyncio.run(
        scheduler.run_level(endpoint, [RequestSpec("hello there", 10)], plan, lambda r: None)
    )
    level = summarize_level(outcome.records, 2, fixed_lengths=True)
    assert level["requests_ok"] == 4, level["errors_by_type"]
    assert level["output_tokens_total"] == 40 and level["output_tokens_source"] == {"usage": 4}
    assert level["ttft_ms"]["p50"] == pytest.approx(30, abs=4)
    assert level["itl_ms"]["p50"] == pytest.approx(5, abs=2)
    assert level["finish_reasons"] == {"length": 4}
    assert not {"short_outputs", "multi_token_chunks"} & set(level["flags"])
    # the engine's own account: 9 gaps of 5 ms after the first token
    reported = level["engine_reported"]
    assert reported["eval_duration_ms"]["mean"] == pytest.approx(45, abs=5)
    assert reported["prompt_eval_duration_ms"]["mean"] == pytest.approx(30, abs=4)
    assert reported["eval_tokens_per_s"]["mean"] > 0


def test_a_native_stream_cut_before_its_final_object_is_incomplete(
    start_reference_server: Callable[..., str],
) -> None:
    url = start_reference_server(ttft_ms=1, itl_ms=1, fault="no_done")
    endpoint = Endpoint(base_url=url, model="reference", api="ollama_chat")
    outcome = asyncio.run(
        scheduler.run_level(
            endpoint, [RequestSpec("x", 4)], LevelPlan(1, 1, None, 10, 5), lambda r: None
        )
    )
    assert outcome.records[0].error_type == "incomplete_stream"


def test_bench_against_an_ollama_server_uses_its_native_api(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(ttft_ms=2, itl_ms=1)
    result = make_bench(
        tmp_path,
        ENGINE="openai",
        URL=url,
        MODEL="reference",
        CONCURRENCY="1,2",
        REQUESTS="4",
        MAX_TOKENS="6",
        ARGS="engine.ollama_native_api=true",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for level in read_summary(only_run_dir(tmp_path))["levels"]:
        sent = {1: 4, 2: 8}[level["concurrency"]]  # at least 4 requests per worker
        assert level["requests_ok"] == sent and level["output_tokens_mean"] == 6.0
        assert "eval_tokens_per_s" in level["engine_reported"]
