"""When requests are sent: closed-loop concurrency, open-loop rate, and bursts.

- concurrency: N workers, each sends its next request when its last one finishes.
- rate: requests arrive on a seeded Poisson or constant schedule, whatever is in flight
  (optionally capped at `concurrency` in flight).
- burst: waves of N requests fired at once; the next wave when the last one finished.

One process runs a level here; `harness.client.processes` spreads a level over several
processes, each running its `Share` of it.
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from harness.client.arrivals import arrival_offsets_s
from harness.client.monitor import ClientLoad, LoopMonitor
from harness.client.openai_api import (
    Endpoint,
    RequestSpec,
    mark_cancelled,
    send_streaming,
    wire_tracing,
)
from harness.constants import LOAD_MODES
from harness.records import RequestRecord


@dataclass
class LevelPlan:
    """One level. `concurrency`: workers (concurrency), wave size (burst), or the cap on
    requests in flight (rate; 0: no cap)."""

    concurrency: int
    num_requests: int
    max_duration_s: float | None
    request_timeout_s: float
    connect_timeout_s: float
    keep_alive: bool = True
    ramp_up_s: float = 0.0  # workers start spread evenly over this time (0: all at once)
    mode: str = "concurrency"
    rate_per_s: float | None = None
    arrival: str = "poisson"
    seed: int = 0
    level_index: int = 0


@dataclass
class Share:
    """The part of a level one process runs: request indices i with i % count == index."""

    index: int = 0
    count: int = 1
    t0_mono_s: float | None = None  # common start of the level across processes
    claim: Callable[[], int] | None = None  # next request index of a closed loop (shared)


@dataclass
class LevelOutcome:
    records: list[RequestRecord]
    started_mono_s: float
    ended_mono_s: float
    stopped_by_deadline: bool
    client: list[ClientLoad] = field(default_factory=list)


def new_session(keep_alive: bool, limit: int = 1) -> aiohttp.ClientSession:
    """A session whose connections are reused only with keep-alive.

    Without keep-alive every request opens a new connection (about 1 ms more TTFT on
    loopback): llama.cpp's server drops a kept-alive connection after a streamed response
    while the client still trusts it ("Server disconnected" on the next request).
    """
    connector = aiohttp.TCPConnector(limit=limit, force_close=not keep_alive)
    return aiohttp.ClientSession(connector=connector, trace_configs=[wire_tracing()])


class _Level:
    """State shared by the request tasks of one level in one process."""

    def __init__(
        self,
        endpoint: Endpoint,
        specs: Sequence[RequestSpec],
        plan: LevelPlan,
        on_record: Callable[[RequestRecord], None],
        first_request_id: int,
        share: Share,
    ) -> None:
        self.plan = plan
        self.on_record, self.first_request_id, self.share = on_record, first_request_id, share
        # built before the level starts: a wave of requests only hands bytes to sockets
        self.requests = [endpoint.prepare(spec) for spec in specs]
        self.target = endpoint.target()
        self.records: list[RequestRecord] = []
        self.timeout = aiohttp.ClientTimeout(
            total=plan.request_timeout_s, sock_connect=plan.connect_timeout_s
        )
        self.started = share.t0_mono_s or time.perf_counter()
        self.deadline = self.started + plan.max_duration_s if plan.max_duration_s else None
        self.stopped_by_deadline = False

    def past_deadline(self) -> bool:
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            self.stopped_by_deadline = True
            return True
        return False

    async def send(
        self, session: aiohttp.ClientSession, index: int, worker: int, due_mono_s: float
    ) -> RequestRecord:
        record = RequestRecord(
            request_id=self.first_request_id + index,
            concurrency=self.plan.concurrency,
            worker=worker,
            level=self.plan.level_index,
            due_mono_s=due_mono_s,
        )
        try:
            request = self.requests[index % len(self.requests)]
            await send_streaming(session, self.target, request, record, self.timeout)
        except asyncio.CancelledError:
            mark_cancelled(record)
            raise
        finally:
            self.records.append(record)
            self.on_record(record)
        return record


async def _sleep_until(deadline_mono_s: float) -> None:
    delay = deadline_mono_s - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


async def _closed_loop(level: _Level) -> None:
    plan, share = level.plan, level.share
    counter = iter(range(plan.num_requests))
    claim = share.claim or (lambda: next(counter, plan.num_requests))

    async def worker(worker_id: int) -> None:
        # every worker's first request is due at the level's start (or its ramp-up slot)
        due = level.started + plan.ramp_up_s * worker_id / plan.concurrency
        await _sleep_until(due)
        async with new_session(plan.keep_alive) as session:
            while not level.past_deadline():
                index = claim()
                if index >= plan.num_requests:
                    return
                # the next request is due the moment the last one ended
                due = (await level.send(session, index, worker_id, due)).end_mono_s

    workers = range(share.index, plan.concurrency, share.count)
    await _gather_all([worker(w) for w in workers])


async def _open_loop(level: _Level, monitor: LoopMonitor) -> None:
    plan, share = level.plan, level.share
    assert plan.rate_per_s is not None
    offsets = arrival_offsets_s(plan.num_requests, plan.rate_per_s, plan.arrival, plan.seed)
    cap = math.ceil(plan.concurrency / share.count) if plan.concurrency > 0 else 0
    gate = asyncio.Semaphore(cap) if cap else None
    tasks: list[asyncio.Task[None]] = []

    # open loop has no workers; `worker` is the client process. A request is due at its
    # scheduled instant: the wait for a free slot under the cap is the client's wait.
    async def capped(session: aiohttp.ClientSession, index: int, due: float) -> None:
        if gate is None:
            await level.send(session, index, share.index, due)
            return
        async with gate:
            await level.send(session, index, share.index, due)

    async with new_session(plan.keep_alive, limit=cap) as session:
        try:
            for index in range(share.index, plan.num_requests, share.count):
                scheduled = level.started + offsets[index]
                await _sleep_until(scheduled)
                if level.past_deadline():
                    break
                monitor.load.late_send_ms.append((time.perf_counter() - scheduled) * 1000.0)
                tasks.append(asyncio.create_task(capped(session, index, scheduled)))
            await asyncio.gather(*tasks)
        finally:
            await _cancel_all(tasks)


async def _bursts(level: _Level) -> None:
    plan, share = level.plan, level.share
    mine = list(range(share.index, plan.num_requests, share.count))
    wave = max(1, math.ceil(plan.concurrency / share.count))
    async with new_session(plan.keep_alive, limit=wave) as session:
        for start in range(0, len(mine), wave):
            if level.past_deadline():
                return
            batch = mine[start : start + wave]
            due = time.perf_counter()
            await _gather_all(
                [
                    level.send(session, i, share.index + n * share.count, due)
                    for n, i in enumerate(batch)
                ]
            )


async def _gather_all(coroutines: list[Any]) -> None:
    tasks = [asyncio.create_task(c) for c in coroutines]
    try:
        await asyncio.gather(*tasks)
    finally:
        await _cancel_all(tasks)


async def _cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def run_level(
    endpoint: Endpoint,
    specs: Sequence[RequestSpec],
    plan: LevelPlan,
    on_record: Callable[[RequestRecord], None],
    first_request_id: int = 0,
    share: Share | None = None,
) -> LevelOutcome:
    """Run (this process's share of) one level; every finished record goes to `on_record`
    as soon as it completes. The duration bound stops new requests; those in flight finish
    (bounded by the request timeout)."""
    if plan.mode not in LOAD_MODES:
        raise ValueError(f"mode={plan.mode!r} is not one of {', '.join(LOAD_MODES)}")
    level = _Level(endpoint, specs, plan, on_record, first_request_id, share or Share())
    if level.share.t0_mono_s:
        await _sleep_until(level.share.t0_mono_s)
    monitor = LoopMonitor()
    monitor.start()
    # A full garbage collection over a level's many small objects stalls the event loop for
    # tens of ms (seen as loop lag and late chunks); records are freed by reference counting.
    gc_was_enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        if plan.mode == "concurrency":
            await _closed_loop(level)
        elif plan.mode == "rate":
            await _open_loop(level, monitor)
        else:
            await _bursts(level)
    finally:
        if gc_was_enabled:
            gc.enable()
        gc.unfreeze()
        client = await monitor.stop()
    return LevelOutcome(
        level.records, level.started, time.perf_counter(), level.stopped_by_deadline, [client]
    )


async def warm_up(
    endpoint: Endpoint,
    specs: Sequence[RequestSpec],
    count: int,
    timeout_s: float,
    keep_alive: bool = False,
) -> list[RequestRecord]:
    """Send `count` unmeasured requests one after another; return them for error checks."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    target = endpoint.target()
    results = []
    async with new_session(keep_alive) as session:
        for index in range(count):
            record = RequestRecord(request_id=-1 - index, concurrency=0, worker=0)
            request = endpoint.prepare(specs[index % len(specs)])
            results.append(await send_streaming(session, target, request, record, timeout))
    return results
