"""The capacity search: bracketing and bisection, one probe against the SLO, the SLO as
written, and the line a capacity run ends with."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.capacity import capacity_line
from harness.capacity.schedule import CapacitySchedule, pool_size, probe_count
from harness.capacity.search import Search
from harness.capacity.slo import binding_target, check_target, judge
from harness.client.endpoint import RequestSpec
from harness.config import ConfigError, parse_slo
from tests.unit.test_config import compose_bench


def searched(search: Search, holds: Callable[[float], bool]) -> list[float]:
    probes = []
    while (load := search.next_load()) is not None:
        probes.append(load)
        search.record(load, holds(load))
    return probes


@pytest.mark.parametrize(
    ("limit", "probes"),
    [
        (4, [1, 2, 4, 8, 6, 5]),
        (2, [1, 2, 4, 3]),
        (8, [1, 2, 4, 8, 16, 12, 10, 9]),
        (6, [1, 2, 4, 8, 6, 7]),
    ],
)
def test_users_are_bracketed_by_doubling_then_bisected_to_one(
    limit: int, probes: list[int]
) -> None:
    search = Search(1, 256)
    assert searched(search, lambda users: users <= limit) == probes
    assert (search.passed, search.failed, search.status) == (limit, limit + 1, "found")


def test_a_load_that_holds_up_to_the_maximum_stops_there() -> None:
    search = Search(1, 16)
    assert searched(search, lambda users: True) == [1, 2, 4, 8, 16]
    assert (search.passed, search.failed, search.status) == (16, None, "at_max")


def test_one_user_that_misses_ends_the_search_below_its_start() -> None:
    search = Search(1, 256)
    assert searched(search, lambda users: False) == [1]
    assert search.status == "below_start"


def test_a_rate_that_misses_at_its_start_is_halved_then_bisected_to_5_percent() -> None:
    search = Search(4.0, 256.0, integer=False)
    probes = searched(search, lambda rate: rate <= 1.3)
    assert probes[:3] == [4.0, 2.0, 1.0]
    assert search.passed is not None and search.failed is not None
    assert search.passed <= 1.3 < search.failed
    assert search.failed - search.passed <= 0.05 * search.passed


def test_slo_text_is_parsed_and_bad_targets_are_named() -> None:
    assert parse_slo("ttft_p99_ms=500, tpot_p99_ms=50,error_rate=0.01") == {
        "ttft_p99_ms": 500.0,
        "tpot_p99_ms": 50.0,
        "error_rate": 0.01,
    }
    with pytest.raises(ConfigError, match="ttft_p99_ms, tpot_p99_ms, e2e_p99_ms, error_rate"):
        parse_slo("ttft_p98_ms=500")
    with pytest.raises(ConfigError, match="needs a limit"):
        parse_slo("ttft_p99_ms")
    with pytest.raises(ConfigError, match="fraction"):
        parse_slo("error_rate=5")


def test_a_search_needs_a_closed_loop_or_a_rate_and_one_pass() -> None:
    with pytest.raises(ConfigError, match="load.mode='burst'"):
        compose_bench("load=burst", "capacity.slo='ttft_p99_ms=500'")
    with pytest.raises(ConfigError, match="repeats"):
        compose_bench("capacity.slo='ttft_p99_ms=500'", "repeats=2")


def level(n: int, p99: float | None, maximum: float, **extra: object) -> dict:
    stats = {"p50": maximum / 2, "p99": p99, "max": maximum, "n": n}
    return {"status": "ok", "ttft_ms": stats, "error_rate": 0.0, "requests_sent": n, **extra}


def test_a_p99_target_is_judged_on_the_p99_from_100_samples() -> None:
    check = check_target(level(100, 412.0, 600.0), "ttft_p99_ms", 500)
    assert (check["value"], check["judged_on"], check["held"]) == (412.0, "p99", True)


def test_below_100_samples_a_p99_target_is_judged_on_the_maximum_and_says_so() -> None:
    check = check_target(level(40, None, 600.0), "ttft_p99_ms", 500)
    assert (check["value"], check["judged_on"], check["held"]) == (600.0, "max (n=40 < 100)", False)


def test_an_open_loop_probe_is_judged_from_when_requests_were_due() -> None:
    due = {"p99": 700.0, "max": 800.0, "n": 100}
    check = check_target(
        level(100, 412.0, 600.0, mode="rate", ttft_from_due_ms=due), "ttft_p99_ms", 500
    )
    assert (check["metric"], check["value"], check["held"]) == ("ttft_from_due_ms", 700.0, False)


def test_an_interrupted_probe_is_no_verdict_and_a_failed_one_misses() -> None:
    assert judge(level(100, 1.0, 2.0, status="interrupted"), {"ttft_p99_ms": 500}) is None
    failed = judge(level(100, 1.0, 2.0, status="failed"), {"ttft_p99_ms": 500})
    assert failed is not None and failed["held"] is False


def test_the_binding_target_is_the_one_furthest_over_its_limit() -> None:
    probe = level(100, 600.0, 700.0, error_rate=0.5)
    verdict = judge(probe, {"ttft_p99_ms": 500, "error_rate": 0.01})
    assert verdict is not None and binding_target(verdict) == "error_rate"


def summary_level(index: int, users: int, p99: float) -> dict:
    return {**level(100, p99, p99 + 1), "level_index": index, "concurrency": users}


def test_the_schedule_probes_levels_and_its_result_names_capacity_and_binding() -> None:
    bench = compose_bench("capacity.slo='ttft_p99_ms=100'", "load.min_requests_per_worker=4")
    pool = [RequestSpec(f"p{i}", 4) for i in range(pool_size(bench))]
    schedule = CapacitySchedule(bench, pool)
    seen = []
    for spec in schedule:
        seen.append((spec.concurrency, spec.count, spec.first_id))
        schedule.on_level(
            summary_level(spec.index, spec.concurrency, 50 if spec.concurrency <= 4 else 150)
        )
    assert [users for users, _, _ in seen] == [1, 2, 4, 8, 6, 5]
    assert all(count == probe_count(bench, users) == 100 for users, count, _ in seen)
    assert [first for _, _, first in seen] == [0, 100, 200, 300, 400, 500]
    result = schedule.result()
    assert (result["capacity"], result["first_missed"], result["binding"]) == (4, 5, "ttft_p99_ms")
    assert [p["held"] for p in result["probes"]] == [True, True, True, False, False, False]
    assert capacity_line({"capacity": result}) == (
        "capacity: 4 concurrent users (ttft_p99_ms 50 <= 100; binding: ttft_p99_ms)"
    )


def test_the_line_says_when_nothing_held_or_nothing_missed() -> None:
    bench = compose_bench("capacity.slo='ttft_p99_ms=100'", "capacity.max_load=2")
    for p99, line in (
        (150, "capacity: none: 1 concurrent user already misses (ttft_p99_ms 150 > 100; "
              "binding: ttft_p99_ms)"),
        (50, "capacity: at least 2 concurrent users (ttft_p99_ms 50 <= 100; binding: none "
             "up to capacity.max_load=2)"),
    ):  # fmt: skip
        pool = [RequestSpec(f"p{i}", 4) for i in range(pool_size(bench))]
        schedule = CapacitySchedule(bench, pool)
        for spec in schedule:
            schedule.on_level(summary_level(spec.index, spec.concurrency, p99))
        assert capacity_line({"capacity": schedule.result()}) == line
