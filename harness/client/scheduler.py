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
import itertools
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from harness.client.arrivals import iter_arrival_offsets
from harness.client.level import LevelPlan, LevelState, Share, new_session, sleep_until
from harness.client.monitor import ClientLoad, LoopMonitor
from harness.client.openai_api import Endpoint, RequestSpec, send_streaming
from harness.constants import LOAD_MODES
from harness.records import RequestRecord

__all__ = ["LevelOutcome", "LevelPlan", "Share", "new_session", "run_level", "warm_up"]


@dataclass(repr=False)
class LevelOutcome:
    records: list[RequestRecord]
    started_mono_s: float
    ended_mono_s: float
    stopped_by_deadline: bool
    client: list[ClientLoad] = field(default_factory=list)
    server_gone: bool = False  # refused connections in a row stopped the level

    def __repr__(self) -> str:
        # short: asyncio's runner formats the finished task, result included, when it
        # restores its SIGINT handler; a full repr of every record took ~0.3 s a level
        return f"LevelOutcome({len(self.records)} records)"


async def _closed_loop(level: LevelState) -> None:
    plan, share = level.plan, level.share
    units = level.unit_count
    counter = iter(range(units))
    claim = share.claim or (lambda: next(counter, units))

    async def worker(worker_id: int) -> None:
        # every worker's first request is due at the level's start (or its ramp-up slot)
        due = level.started + plan.ramp_up_s * worker_id / plan.concurrency
        await sleep_until(due)
        async with new_session(plan.keep_alive) as session:
            while not level.past_deadline():
                unit = claim()
                if unit >= units:
                    return
                # the next request (or session) is due the moment the last one ended
                due = await level.send_unit(session, unit, worker_id, due)

    workers = range(share.index, plan.concurrency, share.count)
    await _gather_all([worker(w) for w in workers])


async def _open_loop(level: LevelState, monitor: LoopMonitor) -> None:
    plan, share = level.plan, level.share
    offsets: Iterable[float] | None = plan.offsets_s
    if offsets is None:
        assert plan.rate_per_s is not None
        offsets = iter_arrival_offsets(plan.rate_per_s, plan.arrival, plan.seed)
    cap = math.ceil(plan.concurrency / share.count) if plan.concurrency > 0 else 0
    gate = asyncio.Semaphore(cap) if cap else None
    tasks: set[asyncio.Task[None]] = set()

    # open loop has no workers; `worker` is the client process. A request (or session) is
    # due at its scheduled instant: the wait for a free slot under the cap is the client's.
    async def capped(session: aiohttp.ClientSession, unit: int, due: float) -> None:
        if gate is None:
            await level.send_unit(session, unit, share.index, due)
            return
        async with gate:
            await level.send_unit(session, unit, share.index, due)

    async with new_session(plan.keep_alive, limit=cap) as session:
        try:
            # every process reads the whole schedule and sends its own share of it
            arrivals = itertools.islice(enumerate(offsets), level.unit_count)
            for unit, offset in itertools.islice(arrivals, share.index, None, share.count):
                scheduled = level.started + offset
                await sleep_until(scheduled)
                if level.past_deadline():
                    break
                monitor.load.late_send_ms.append((time.perf_counter() - scheduled) * 1000.0)
                task = asyncio.create_task(capped(session, unit, scheduled))
                tasks.add(task)
                task.add_done_callback(tasks.discard)  # a finished request holds no memory
            await asyncio.gather(*tasks)
        finally:
            await _cancel_all(list(tasks))


async def _bursts(level: LevelState) -> None:
    plan, share = level.plan, level.share
    mine = range(share.index, level.unit_count, share.count)
    wave = max(1, math.ceil(plan.concurrency / share.count))
    async with new_session(plan.keep_alive, limit=wave) as session:
        for start in range(0, len(mine), wave):
            if level.past_deadline():
                return
            batch = mine[start : start + wave]
            due = time.perf_counter()
            await _gather_all(
                [
                    level.send_unit(session, u, share.index + n * share.count, due)
                    for n, u in enumerate(batch)
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
    level = LevelState(endpoint, specs, plan, on_record, first_request_id, share or Share())
    if level.share.t0_mono_s:
        await sleep_until(level.share.t0_mono_s)
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
        level.records,
        level.started,
        time.perf_counter(),
        level.stopped_by_deadline,
        [client],
        level.server_gone,
    )


async def warm_up(
    endpoint: Endpoint,
    specs: Sequence[RequestSpec],
    count: int,
    timeout_s: float,
    keep_alive: bool = False,
    idle_timeout_s: float | None = None,
    on_failure: Callable[[RequestRecord], None] | None = None,
) -> list[RequestRecord]:
    """Send `count` unmeasured requests one after another; return them for error checks.
    A failed one goes to `on_failure` at once, before the next is sent."""
    timeout = aiohttp.ClientTimeout(total=timeout_s, sock_read=idle_timeout_s)
    target = endpoint.target()
    results = []
    async with new_session(keep_alive) as session:
        for index in range(count):
            record = RequestRecord(request_id=-1 - index, concurrency=0, worker=0)
            request = endpoint.prepare(specs[index % len(specs)])
            results.append(await send_streaming(session, target, request, record, timeout))
            if not record.ok and on_failure is not None:
                on_failure(record)
    return results
