"""Which levels a job runs: its ladder (each level `repeats` times, the ladder once over
and then again), or a capacity search whose next probe depends on the last. Every
request of the job gets its own spec, from one pool built before the first level."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from harness.capacity.schedule import CapacitySchedule, pool_size
from harness.client.endpoint import RequestSpec
from harness.client.specs import UNBOUNDED
from harness.config import BenchConfig
from harness.levels import LevelSpec
from harness.workload import whole_units


class Schedule(Protocol):
    """Levels to run, in order; `on_level` is told each level's summary as it ends."""

    total: int | None  # requests of all levels, where known in advance

    def __iter__(self) -> Iterator[LevelSpec]: ...

    def on_level(self, level: dict[str, Any]) -> None: ...

    def result(self) -> dict[str, Any] | None: ...


def ladder_counts(bench: BenchConfig) -> list[tuple[int, float | None, int]]:
    """(concurrency, rate, requests) of each level of one pass over the ladder; a level
    bounded by its time only gets UNBOUNDED requests, made as they are sent."""
    load = bench.load
    return [
        (concurrency, rate, whole_units(bench.workload, load.requests_for_level(concurrency)))
        if load.requests_for_level(concurrency) is not None
        else (concurrency, rate, UNBOUNDED)
        for concurrency, rate in load.levels()
    ]


def count_changes(bench: BenchConfig) -> list[str]:
    """What the console is told where a level sends another count than was asked for."""
    asked, load, lines = bench.load.requests_per_level, bench.load, []
    for concurrency, rate, count in ladder_counts(bench):
        name = f"rate={rate:g}/s" if rate is not None else f"concurrency={concurrency}"
        if asked is None:
            lines.append(
                f"{name}: no request count (load.requests_per_level=null): the level runs "
                f"for load.max_duration_s={load.max_duration_s:g} s"
            )
        elif count != asked:
            why = (
                f"whole sessions of {bench.workload.turns} turns"
                if count == whole_units(bench.workload, asked)
                else f"{load.min_requests_per_worker} per worker (load.min_requests_per_worker)"
            )
            lines.append(f"{name}: {asked} requests became {count}: {why}")
    return lines


class Ladder:
    """The configured levels, `bench.repeats` passes over them."""

    def __init__(self, bench: BenchConfig, pool: Sequence[RequestSpec]) -> None:
        self.levels: list[LevelSpec] = []
        first_id = 0
        for repeat in range(bench.repeats):
            for concurrency, rate, count in ladder_counts(bench):
                mine = pool[first_id : first_id + count]
                index = len(self.levels)
                self.levels.append(
                    LevelSpec(index, concurrency, rate, count, first_id, mine, repeat)
                )
                first_id += count
        self.total: int | None = first_id if first_id < UNBOUNDED else None

    def __iter__(self) -> Iterator[LevelSpec]:
        return iter(self.levels)

    def on_level(self, level: dict[str, Any]) -> None:
        return None

    def result(self) -> dict[str, Any] | None:
        return None


def job_schedule(
    bench: BenchConfig, build: Callable[[int], list[RequestSpec]]
) -> tuple[list[RequestSpec], Schedule]:
    """The warm-up's specs and the job's schedule; `build(n)` makes the job's n specs (no
    prompt twice), the warm-up's first."""
    load = bench.load
    warmups = whole_units(bench.workload, load.warmup_requests) if load.warmup_requests else 0
    if bench.capacity.enabled:
        specs = build(warmups + pool_size(bench))
        schedule: Schedule = CapacitySchedule(bench, specs[warmups:])
    else:
        size = bench.repeats * sum(count for _, _, count in ladder_counts(bench))
        specs = build(warmups + size)
        schedule = Ladder(bench, specs[warmups:])
    return specs[:warmups], schedule
