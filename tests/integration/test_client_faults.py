"""A real server misbehaving in one way each: every fault is recorded by type, never raised."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from harness.client.openai_api import Endpoint, RequestSpec
from harness.client.scheduler import LevelPlan, run_level
from harness.metrics import summarize_level
from harness.records import RequestRecord


def run_requests(url: str, count: int = 4, timeout_s: float = 10) -> list[RequestRecord]:
    endpoint = Endpoint(base_url=url, model="reference")
    plan = LevelPlan(2, count, None, request_timeout_s=timeout_s, connect_timeout_s=2)
    seen: list[RequestRecord] = []
    asyncio.run(run_level(endpoint, [RequestSpec("x", 8)], plan, seen.append))
    return seen


@pytest.mark.parametrize(
    ("fault", "error_type", "text"),
    [
        ("http_500", "http_5xx", "injected 500"),
        ("http_429", "http_4xx", "injected 429"),
        ("cut_stream", "disconnected", ""),
        ("malformed", "malformed_stream", "not JSON"),
        ("no_done", "incomplete_stream", "without [DONE]"),
        ("error_event", "stream_error", "injected failure"),
    ],
)
def test_each_fault_is_recorded_with_its_type_and_text(
    start_reference_server: Callable[..., str], fault: str, error_type: str, text: str
) -> None:
    url = start_reference_server(fault=fault, ttft_ms=1, itl_ms=1)
    records = run_requests(url)
    assert len(records) == 4
    assert {r.error_type for r in records} == {error_type}
    assert all(text in (r.error_text or "") for r in records)
    level = summarize_level(records, 2)
    assert level["requests_failed"] == 4
    assert level["errors_by_type"] == {error_type: 4}
    assert level["aggregate_output_tokens_per_s"] == 0.0


def test_http_errors_keep_the_status(start_reference_server: Callable[..., str]) -> None:
    url = start_reference_server(fault="http_500")
    assert {r.http_status for r in run_requests(url)} == {500}


def test_a_stalled_stream_times_out_with_what_arrived_kept(
    start_reference_server: Callable[..., str],
) -> None:
    url = start_reference_server(fault="stall", ttft_ms=1, itl_ms=1, fault_after_tokens=2)
    records = run_requests(url, count=2, timeout_s=1.0)
    assert {r.error_type for r in records} == {"timeout"}
    assert all(len(r.chunk_times_ms) == 2 for r in records)


def test_missing_usage_falls_back_to_chunk_counts_labelled_so(
    start_reference_server: Callable[..., str],
) -> None:
    url = start_reference_server(fault="no_usage", ttft_ms=1, itl_ms=1)
    records = run_requests(url)
    assert {(r.status, r.output_tokens, r.output_tokens_source) for r in records} == {
        ("ok", 8, "chunk_count")
    }


def test_connection_refused_is_a_connect_error() -> None:
    records = run_requests("http://127.0.0.1:9/v1", count=2)
    assert {r.error_type for r in records} == {"connect"}
