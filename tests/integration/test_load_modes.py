"""Load modes against the real reference server: bursts, rates with a duration bound,
and levels spread over several client processes."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from harness.client.openai_api import Endpoint, RequestSpec
from harness.client.processes import run_level_in_processes
from harness.client.scheduler import LevelPlan
from harness.records import RequestRecord


def run(url: str, plan: LevelPlan, processes: int = 1, tokens: int = 4):
    seen: list[RequestRecord] = []
    outcome = run_level_in_processes(
        Endpoint(base_url=url, model="reference"),
        [RequestSpec("x", tokens)],
        plan,
        seen.append,
        100,
        processes,
    )
    return outcome, seen


def test_a_burst_fires_each_wave_at_once(start_reference_server: Callable[..., str]) -> None:
    url = start_reference_server(ttft_ms=100, itl_ms=5)
    outcome, seen = run(url, LevelPlan(8, 16, None, 10, 5, mode="burst"))
    assert len(seen) == 16 and all(r.ok for r in seen)
    starts = sorted(r.start_mono_s for r in seen)
    first_wave, second_wave = starts[:8], starts[8:]
    # a wave leaves together; the next one only after the first finished (>= 100 ms TTFT)
    assert first_wave[-1] - first_wave[0] < 0.05
    assert second_wave[0] - first_wave[0] > 0.1


def test_rate_mode_sends_on_schedule_and_stops_at_the_duration_bound(
    start_reference_server: Callable[..., str],
) -> None:
    url = start_reference_server(ttft_ms=5, itl_ms=1)
    plan = LevelPlan(0, 1000, 1.0, 10, 5, mode="rate", rate_per_s=40, arrival="constant")
    started = time.perf_counter()
    outcome, seen = run(url, plan)
    assert time.perf_counter() - started < 3
    assert outcome.stopped_by_deadline
    # 40/s for one second: 40 sends (the 41st would be at exactly 1 s)
    assert 38 <= len(seen) <= 41
    starts = sorted(r.start_mono_s for r in seen)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert sum(gaps) / len(gaps) == pytest.approx(0.025, abs=0.003)
    assert outcome.client[0].late_send_ms, "send lateness is measured"


def test_rate_mode_caps_requests_in_flight(start_reference_server: Callable[..., str]) -> None:
    url = start_reference_server(ttft_ms=200, itl_ms=1)
    plan = LevelPlan(2, 6, None, 10, 5, mode="rate", rate_per_s=1000, arrival="constant")
    _, seen = run(url, plan)
    spans = [(r.start_mono_s, r.end_mono_s) for r in seen]
    most_in_flight = max(sum(s <= t < e for s, e in spans) for t, _ in spans)
    assert most_in_flight <= 2


@pytest.mark.parametrize("mode", ["concurrency", "rate", "burst"])
def test_several_processes_lose_no_record(
    start_reference_server: Callable[..., str], mode: str
) -> None:
    url = start_reference_server(ttft_ms=5, itl_ms=2)
    plan = LevelPlan(16, 120, None, 20, 5, mode=mode, rate_per_s=200 if mode == "rate" else None)
    outcome, seen = run(url, plan, processes=2, tokens=6)
    assert sorted(r.request_id for r in seen) == list(range(100, 220))
    assert all(r.ok and r.output_tokens == 6 for r in seen)
    assert len(outcome.records) == 120
    assert len(outcome.client) == 2
    assert len({r.worker for r in seen}) > 1
    # records of both processes share one clock: all fall inside the level's span
    assert all(
        outcome.started_mono_s - 0.05 <= r.start_mono_s <= outcome.ended_mono_s for r in seen
    )
