"""`make bench ENGINE=openai` against hostile servers (the reference server, one fault per
flag): each misbehaviour is said on the console in its own words, and no impossible
figure becomes a result."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from tests.support.runs import make_bench, only_run_dir, read_summary


def said(result) -> str:
    """Console output: log lines go to stdout, the closing line to stderr."""
    return result.stdout + result.stderr


def bench(url: str, results: Path, args: str = "", **variables: str):
    return make_bench(
        results,
        timeout_s=120,
        ENGINE="openai",
        URL=url,
        MODEL="reference",
        CONCURRENCY="2",
        REQUESTS="8",
        ARGS=f"print_table=false {args}",
        **variables,
    )


def test_impossible_usage_counts_give_way_to_the_chunks_received(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(ttft_ms=0, itl_ms=0, output_tokens=16, fault="bad_usage")
    result = bench(url, tmp_path, MAX_TOKENS="16")
    assert result.returncode == 0, result.stderr[-3000:]
    level = read_summary(only_run_dir(tmp_path))["levels"][0]
    assert "usage_rejected" in level["flags"]
    assert level["output_tokens_source"] == {"chunk_count_usage_rejected": 8}
    assert level["output_tokens_total"] == 8 * 16  # the chunks, not 8 x 10^12
    assert "usage_rejected" in said(result)
    record = json.loads((only_run_dir(tmp_path) / "requests.jsonl").read_text().splitlines()[0])
    assert record["prompt_tokens"] is None  # -5 is never used
    assert "completion_tokens=1000000000000 against 16 content chunks" in record["usage_rejected"]


def test_bytes_that_are_not_utf8_are_flagged_not_silently_replaced(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(ttft_ms=0, itl_ms=0, output_tokens=8, fault="bad_utf8")
    result = bench(url, tmp_path, MAX_TOKENS="8")
    assert result.returncode == 0, result.stderr[-3000:]
    level = read_summary(only_run_dir(tmp_path))["levels"][0]
    assert "invalid_utf8" in level["flags"]
    assert level["invalid_utf8_requests"] == 8
    record = json.loads((only_run_dir(tmp_path) / "requests.jsonl").read_text().splitlines()[0])
    assert record["invalid_utf8_events"] == 1
    assert "invalid_utf8" in said(result)


def test_a_server_without_usage_is_counted_by_chunks_and_said_so(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(ttft_ms=0, itl_ms=0, output_tokens=8, fault="no_usage")
    result = bench(url, tmp_path, MAX_TOKENS="8")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "8 responses carried no usage: their output tokens are their content chunks" in (
        said(result)
    )
    level = read_summary(only_run_dir(tmp_path))["levels"][0]
    assert level["output_tokens_source"] == {"chunk_count": 8}


def test_a_partial_level_says_its_failures_by_type_with_a_sample(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(fault="http_500")
    result = bench(url, tmp_path, "load.warmup_requests=0")
    assert "8 x HTTP 500: " in said(result) and "injected 500" in said(result)


def test_retry_after_is_reported_with_the_failure(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(fault="retry_after")
    result = bench(url, tmp_path, "load.warmup_requests=0")
    assert "x HTTP 429: [Retry-After: 2, not honoured]" in said(result)


def test_a_json_answer_to_a_stream_request_is_named_so(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(fault="not_streamed")
    result = bench(url, tmp_path, "load.warmup_requests=1")
    assert "warm-up request 1 failed: not_streamed" in said(result)
    assert "not a stream of server-sent events" in said(result)
    assert "truncated" not in said(result) and "incomplete" not in said(result)


def test_a_server_that_never_answers_is_not_called_closed(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(fault="silent")
    result = bench(url, tmp_path, "engine.startup_timeout_s=6")
    assert "accepts connections but never answered GET /v1/models" in said(result)
    assert "is it running?" not in said(result)


def test_an_unset_api_key_variable_is_named(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    os.environ["REF_KEY_FOR_TEST"] = "sekret"
    try:
        url = start_reference_server(api_key_env="REF_KEY_FOR_TEST")
    finally:
        del os.environ["REF_KEY_FOR_TEST"]
    result = bench(url, tmp_path, "engine.api_key_env=UNSET_KEY_VARIABLE_X")
    assert "engine.api_key_env=UNSET_KEY_VARIABLE_X names an environment variable" in (
        result.stderr
    )
    assert "is it running?" not in said(result)  # it runs, and said why it refused
    assert "sekret" not in result.stdout + result.stderr


def test_a_stalled_stream_fails_at_the_idle_timeout_and_warm_up_says_so_at_once(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(ttft_ms=0, itl_ms=0, fault="stall")
    result = bench(url, tmp_path, "load.idle_timeout_s=1 load.warmup_requests=2")
    said = result.stdout + result.stderr
    assert "warm-up request 1 failed: idle: no byte from the server for 1.0 s" in said
    assert "every warm-up request failed" in said
