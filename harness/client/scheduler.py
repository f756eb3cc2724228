"""Closed-loop load: N workers, each sends its next request when its last one finishes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp

from harness.client.openai_api import Endpoint, RequestSpec, mark_cancelled, send_streaming
from harness.records import RequestRecord


@dataclass
class LevelPlan:
    concurrency: int
    num_requests: int
    max_duration_s: float | None
    request_timeout_s: float
    connect_timeout_s: float
    keep_alive: bool = True
    ramp_up_s: float = 0.0  # workers start spread evenly over this time (0: all at once)


@dataclass
class LevelOutcome:
    records: list[RequestRecord]
    started_mono_s: float
    ended_mono_s: float
    stopped_by_deadline: bool


def new_session(keep_alive: bool) -> aiohttp.ClientSession:
    """One session per worker, holding at most one connection.

    Without keep-alive every request opens a new connection (about 1 ms more TTFT on
    loopback): llama.cpp's server drops a kept-alive connection after a streamed response
    while the client still trusts it ("Server disconnected" on the next request).
    """
    connector = aiohttp.TCPConnector(limit=1, force_close=not keep_alive)
    return aiohttp.ClientSession(connector=connector)


async def run_closed_loop(
    endpoint: Endpoint,
    specs: Sequence[RequestSpec],
    plan: LevelPlan,
    on_record: Callable[[RequestRecord], None],
    first_request_id: int = 0,
) -> LevelOutcome:
    """Run one level; every finished record goes to `on_record` as soon as it completes."""
    timeout = aiohttp.ClientTimeout(
        total=plan.request_timeout_s, sock_connect=plan.connect_timeout_s
    )
    next_index = 0
    records: list[RequestRecord] = []
    started = time.perf_counter()
    deadline = started + plan.max_duration_s if plan.max_duration_s else None
    stopped_by_deadline = False

    async def worker(worker_id: int) -> None:
        nonlocal next_index, stopped_by_deadline
        if plan.ramp_up_s > 0:
            await asyncio.sleep(plan.ramp_up_s * worker_id / plan.concurrency)
        async with new_session(plan.keep_alive) as session:
            while next_index < plan.num_requests:
                if deadline is not None and time.perf_counter() >= deadline:
                    stopped_by_deadline = True
                    return
                index = next_index
                next_index += 1
                record = RequestRecord(
                    request_id=first_request_id + index,
                    concurrency=plan.concurrency,
                    worker=worker_id,
                )
                try:
                    await send_streaming(
                        session, endpoint, specs[index % len(specs)], record, timeout
                    )
                except asyncio.CancelledError:
                    mark_cancelled(record)
                    records.append(record)
                    on_record(record)
                    raise
                records.append(record)
                on_record(record)

    # The duration bound stops new requests; those in flight finish (bounded by the timeout).
    tasks = [asyncio.create_task(worker(i)) for i in range(plan.concurrency)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return LevelOutcome(records, started, time.perf_counter(), stopped_by_deadline)


async def warm_up(
    endpoint: Endpoint,
    specs: Sequence[RequestSpec],
    count: int,
    timeout_s: float,
    keep_alive: bool = False,
) -> list[RequestRecord]:
    """Send `count` unmeasured requests one after another; return them for error checks."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    results = []
    async with new_session(keep_alive) as session:
        for index in range(count):
            record = RequestRecord(request_id=-1 - index, concurrency=0, worker=0)
            results.append(
                await send_streaming(session, endpoint, specs[index % len(specs)], record, timeout)
            )
    return results
