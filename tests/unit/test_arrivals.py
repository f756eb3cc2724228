"""Open-loop schedules: seeded Poisson arrivals with the right statistics, constant gaps."""

from __future__ import annotations

import statistics

import pytest

from harness.client.arrivals import arrival_offsets_s
from harness.client.monitor import ClientLoad, summarize_client
from harness.client.processes import auto_processes
from harness.client.scheduler import LevelPlan


def gaps(offsets: list[float]) -> list[float]:
    return [b - a for a, b in zip(offsets, offsets[1:], strict=False)]


def test_poisson_gaps_have_mean_and_variance_of_an_exponential() -> None:
    rate = 20.0
    inter = gaps(arrival_offsets_s(20_001, rate, "poisson", seed=7))
    # exponential with rate r: mean 1/r, variance 1/r^2; 20k samples give about 1% error
    assert statistics.fmean(inter) == pytest.approx(1 / rate, rel=0.03)
    assert statistics.pvariance(inter) == pytest.approx(1 / rate**2, rel=0.06)


def test_poisson_counts_per_second_have_variance_equal_to_mean() -> None:
    rate = 10.0
    offsets = arrival_offsets_s(50_000, rate, "poisson", seed=3)
    seconds = int(offsets[-1])
    counts = [0] * seconds
    for t in offsets:
        if int(t) < seconds:
            counts[int(t)] += 1
    assert statistics.fmean(counts) == pytest.approx(rate, rel=0.03)
    assert statistics.pvariance(counts) == pytest.approx(rate, rel=0.1)


def test_the_same_seed_gives_the_same_schedule() -> None:
    assert arrival_offsets_s(50, 5, "poisson", 1) == arrival_offsets_s(50, 5, "poisson", 1)
    assert arrival_offsets_s(50, 5, "poisson", 1) != arrival_offsets_s(50, 5, "poisson", 2)


def test_constant_arrivals_are_evenly_spaced_from_zero() -> None:
    assert arrival_offsets_s(4, 2.0, "constant", 0) == [0.0, 0.5, 1.0, 1.5]


def test_bad_schedules_are_refused() -> None:
    with pytest.raises(ValueError, match="arrival='gamma'"):
        arrival_offsets_s(3, 1.0, "gamma", 0)
    with pytest.raises(ValueError, match="rate_per_s=0"):
        arrival_offsets_s(3, 0, "poisson", 0)


def test_one_client_process_until_streams_would_saturate_a_core() -> None:
    plan = LevelPlan(32, 64, None, 10, 10)
    assert auto_processes(plan, cpu_count=8) == 1
    plan.concurrency = 1024
    assert auto_processes(plan, cpu_count=8) == 8
    assert auto_processes(plan, cpu_count=2) == 2


def test_client_flags_name_what_went_wrong() -> None:
    calm = ClientLoad(wall_s=10, cpu_s=2, lag_ms=[0.1] * 100, late_send_ms=[0.2] * 10)
    assert summarize_client([calm])["flags"] == []
    busy = ClientLoad(wall_s=10, cpu_s=9.5, lag_ms=[0.1] * 90 + [40.0] * 10, late_send_ms=[50.0])
    summary = summarize_client([calm, busy])
    assert summary["flags"] == ["client_cpu_saturated", "client_loop_lag", "client_late_sends"]
    assert summary["processes"] == 2
    assert summary["cpu_fraction_max"] == pytest.approx(0.95)
