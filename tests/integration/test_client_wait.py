"""The client's own time against a real server: kept apart from TTFT, and shown.

Each test runs a level against the reference server, whose timing is exactly known.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from harness.client import scheduler
from harness.client.openai_api import Endpoint, RequestSpec
from harness.client.scheduler import LevelPlan
from harness.metrics import steady_window, summarize_level


def level_of(url: str, plan: LevelPlan, tokens: int) -> tuple[dict, list]:
    endpoint = Endpoint(base_url=url, model="reference")
    outcome = asyncio.run(
        scheduler.run_level(endpoint, [RequestSpec("x", tokens)], plan, lambda r: None)
    )
    summary = summarize_level(outcome.records, plan.concurrency, mode=plan.mode)
    return summary, outcome.records


def test_a_capped_open_loop_shows_the_wait_for_a_slot_and_is_flagged(
    start_reference_server: Callable[..., str],
) -> None:
    # 100 requests/s of 100 ms requests through one slot: each waits for the one before
    url = start_reference_server(ttft_ms=50, itl_ms=10)
    plan = LevelPlan(1, 12, None, 30, 5, mode="rate", rate_per_s=100, arrival="constant")
    level, records = level_of(url, plan, 6)
    assert level["requests_ok"] == 12
    waits = sorted(r.client_wait_ms for r in records)
    # request k is due at k x 10 ms and leaves when request k-1 ends (~100 ms each)
    assert waits[-1] > 700
    assert level["client_wait_ms"]["max"] == pytest.approx(waits[-1])
    assert "client_wait" in level["flags"]
    # TTFT is the engine's: from the wire, not from the schedule
    assert level["ttft_ms"]["p50"] == pytest.approx(50, abs=3)
    assert level["ttft_from_due_ms"]["max"] > 700


def test_an_uncapped_open_loop_is_on_time(start_reference_server: Callable[..., str]) -> None:
    url = start_reference_server(ttft_ms=20, itl_ms=5)
    plan = LevelPlan(0, 10, None, 30, 5, mode="rate", rate_per_s=20, arrival="constant")
    level, _ = level_of(url, plan, 4)
    assert level["requests_ok"] == 10
    assert level["client_wait_ms"]["p50"] < 5
    assert level["ttft_from_due_ms"]["p50"] == pytest.approx(
        level["ttft_ms"]["p50"] + level["client_wait_ms"]["p50"], abs=2
    )


def test_three_tokens_per_event_give_tokens_per_chunk_3_and_flag_itl(
    start_reference_server: Callable[..., str],
) -> None:
    url = start_reference_server(ttft_ms=10, itl_ms=6, tokens_per_event=3)
    plan = LevelPlan(2, 4, None, 30, 5)
    level, records = level_of(url, plan, 12)
    assert level["requests_ok"] == 4
    assert [r.output_tokens for r in records] == [12] * 4
    assert all(len(r.chunk_times_ms) == 4 for r in records)
    assert level["tokens_per_chunk"] == pytest.approx(3.0)
    assert "multi_token_chunks" in level["flags"]
    # ITL is per chunk (6 ms), TPOT per token: 3 more events after the first, 11 tokens
    assert level["itl_ms"]["p50"] == pytest.approx(6.0, abs=1.5)
    assert level["tpot_ms"]["p50"] == pytest.approx(3 * 6.0 / 11, abs=0.5)


def test_the_steady_rate_of_a_ramped_level_matches_the_rate_without_ramp(
    start_reference_server: Callable[..., str],
) -> None:
    url = start_reference_server(ttft_ms=20, itl_ms=10)
    rates = {}
    for ramp_up_s in (0.0, 0.6):
        plan = LevelPlan(4, 24, None, 30, 5, ramp_up_s=ramp_up_s)
        level, records = level_of(url, plan, 12)
        assert level["requests_ok"] == 24
        assert steady_window(records, "concurrency") is not None
        rates[ramp_up_s] = level
    steady, ramped = rates[0.0], rates[0.6]
    assert ramped["steady_output_tokens_per_s"] == pytest.approx(
        steady["steady_output_tokens_per_s"], rel=0.05
    )
    # the whole-level rate of the ramped level is diluted by the ramp
    assert ramped["aggregate_output_tokens_per_s"] < 0.9 * ramped["steady_output_tokens_per_s"]
