"""The levels of a capacity search: each probe an ordinary level of the job, chosen from
the verdicts of the probes before it, and the search's result for summary.json."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from harness.capacity.search import MAX_HALVINGS, Search
from harness.capacity.slo import binding_target, judge
from harness.client.endpoint import RequestSpec
from harness.config import BenchConfig
from harness.levels import LevelSpec
from harness.workload import whole_units

UNITS = {"concurrency": "concurrent users", "rate": "requests/s"}


def probe_count(bench: BenchConfig, load: float) -> int:
    """Requests of one probe: enough for a p99, and enough per worker for a steady window
    (whole multi-turn sessions)."""
    count = bench.capacity.requests_per_probe
    if bench.load.mode != "rate":
        count = max(count, int(load) * bench.load.min_requests_per_worker)
    return whole_units(bench.workload, count)


def pool_size(bench: BenchConfig) -> int:
    """An upper bound on the requests a whole search sends: every doubling up to max_load,
    then as many halvings and bisections as the search can take, each at max_load."""
    capacity, loads = bench.capacity, [bench.capacity.start]
    while loads[-1] < capacity.max_load:
        loads.append(min(2 * loads[-1], capacity.max_load))
    rate = bench.load.mode == "rate"
    more = MAX_HALVINGS + 12 if rate else int(capacity.max_load).bit_length()
    largest = probe_count(bench, capacity.max_load)
    return sum(probe_count(bench, load) for load in loads) + more * largest


class CapacitySchedule:
    """Yields probe levels until the search ends; `on_level` hands each probe's summary
    back (a resumed job hands back the stored ones)."""

    def __init__(self, bench: BenchConfig, pool: Sequence[RequestSpec]) -> None:
        self.bench, self.pool = bench, pool
        capacity, integer = bench.capacity, bench.load.mode == "concurrency"
        self.targets = capacity.targets()
        self.search = Search(capacity.start, capacity.max_load, capacity.resolution, integer)
        self.probes: list[dict[str, Any]] = []
        self.pending: dict[int, float] = {}  # level index -> load, until its verdict
        self.total: int | None = None  # the search decides how many

    def __iter__(self) -> Iterator[LevelSpec]:
        index, first_id = 0, 0
        while (load := self.search.next_load()) is not None:
            count = probe_count(self.bench, load)
            if first_id + count > len(self.pool):
                break
            mine = self.pool[first_id : first_id + count]
            if self.bench.load.mode == "rate":  # an open loop at `load`, under the cap
                users, rate = self.bench.load.max_concurrency, load
            else:
                users, rate = int(load), None
            self.pending[index] = load
            yield LevelSpec(index, users, rate, count, first_id, mine)
            if index in self.pending:  # no verdict came back (interrupted): stop
                break
            index, first_id = index + 1, first_id + count

    def on_level(self, level: dict[str, Any]) -> None:
        load = self.pending.pop(level.get("level_index", -1), None)
        verdict = judge(level, self.targets) if load is not None else None
        if load is None or verdict is None:
            return
        shown = int(load) if self.search.integer else load
        probe = {"level_index": level["level_index"], "load": shown, **verdict}
        probe["binding"] = binding_target(verdict)
        self.probes.append(probe)
        self.search.record(load, verdict["held"])

    def result(self) -> dict[str, Any]:
        """summary.json's `capacity`: the SLO, the capacity, the binding target, the probes."""
        search = self.search
        at = next((p for p in self.probes if p["load"] == search.passed), None)
        missed = next((p for p in self.probes if p["load"] == search.failed), None)
        capacity = search.passed
        if capacity is None and search.integer and search.status == "below_start":
            capacity = 0.0
        shown = int if search.integer else float
        return {
            "slo": self.targets,
            "load": self.bench.load.mode,
            "unit": UNITS[self.bench.load.mode],
            "start": shown(search.start),
            "max_load": shown(search.max_load),
            "resolution": search.width(),
            "requests_per_probe": self.bench.capacity.requests_per_probe,
            "status": search.status,
            "capacity": None if capacity is None else shown(capacity),
            "first_missed": None if search.failed is None else shown(search.failed),
            "binding": missed["binding"] if missed else None,
            "at_capacity": at["targets"] if at else None,
            "probes": self.probes,
        }
