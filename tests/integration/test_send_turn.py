"""A wave of requests leaves one connection at a time, against a real server.

Requests of one event loop take turns to open their connections (on a kept-alive one,
to go on the wire), so a wave's set-ups do not run back to back while other streams'
chunks wait. The turn is given back when the request fails, and by a request cancelled
while it waited.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from harness.calibrate_truth import errors_vs_sent
from harness.client import openai_api
from harness.client.openai_api import Endpoint, RequestSpec, send_streaming, wire_tracing
from harness.client.scheduler import LevelPlan, run_level
from harness.records import RequestRecord

WAVE = 16


def connect_spans(turn: asyncio.Semaphore | None, url: str) -> list[RequestRecord]:
    """A wave of WAVE requests due at once, each on a new connection; each record gets the
    instants its connection set-up began and ended (`spans`)."""
    endpoint = Endpoint(base_url=url, model="reference")
    request, target = endpoint.prepare(RequestSpec("x", 4)), endpoint.target()
    timeout = aiohttp.ClientTimeout(total=30)

    async def on_start(session: Any, context: Any, params: Any) -> None:
        context.trace_request_ctx.record.spans = [time.perf_counter()]

    async def on_end(session: Any, context: Any, params: Any) -> None:
        context.trace_request_ctx.record.spans.append(time.perf_counter())

    spans = aiohttp.TraceConfig()
    spans.on_connection_create_start.append(on_start)
    spans.on_connection_create_end.append(on_end)

    async def one(session: aiohttp.ClientSession, index: int) -> RequestRecord:
        record = RequestRecord(request_id=index, concurrency=WAVE, worker=index)
        record.due_mono_s = due
        return await send_streaming(session, target, request, record, timeout, None, turn)

    async def wave() -> list[RequestRecord]:
        nonlocal due
        sessions = [
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True),
                trace_configs=[wire_tracing(), spans],
            )
            for _ in range(WAVE)
        ]
        try:
            due = time.perf_counter()
            return await asyncio.gather(*(one(s, i) for i, s in enumerate(sessions)))
        finally:
            await asyncio.gather(*(s.close() for s in sessions))

    due = 0.0
    return asyncio.run(wave())


def test_a_wave_of_new_connections_opens_them_one_at_a_time_in_order(
    start_reference_server: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # on a loaded machine a loopback connect can outlast the turn's cap: lifted here
    monkeypatch.setattr(openai_api, "TURN_HOLD_MAX_S", 10.0)
    url = start_reference_server(ttft_ms=20, itl_ms=5)
    records = connect_spans(asyncio.Semaphore(1), url)
    assert [r.status for r in records] == ["ok"] * WAVE
    spans = [r.spans for r in records]  # type: ignore[attr-defined]
    # in the order they were due, each set-up after the one before it ended
    for before, after in zip(spans, spans[1:], strict=False):
        assert after[0] >= before[1]
    # the wait for the turn is the client's, before the wire; TTFT runs from the wire
    waits = [r.client_wait_ms for r in records]
    assert waits == sorted(waits)
    assert all(r.ttft_ms is not None and 19 < r.ttft_ms < 30 for r in records)


def test_without_a_turn_the_set_ups_of_a_wave_overlap(
    start_reference_server: Callable[..., str],
) -> None:
    # what the turn prevents: every set-up begins before the first has ended
    url = start_reference_server(ttft_ms=20, itl_ms=5)
    spans = [r.spans for r in connect_spans(None, url)]  # type: ignore[attr-defined]
    assert max(s[0] for s in spans) < min(s[1] for s in spans)


def test_connects_that_hang_do_not_wait_for_each_other() -> None:
    # a server whose accept queue is full: connects hang until their timeout (0.5 s); the
    # turn is held at most TURN_HOLD_MAX_S, so six time out together, not one after another
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname())  # fills the queue
    endpoint = Endpoint(base_url=f"http://127.0.0.1:{listener.getsockname()[1]}/v1", model="m")
    request, target = endpoint.prepare(RequestSpec("x", 4)), endpoint.target()
    timeout = aiohttp.ClientTimeout(total=10, sock_connect=0.5)

    async def main() -> list[RequestRecord]:
        turn = asyncio.Semaphore(1)
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=True),
            trace_configs=[wire_tracing()],
        ) as session:
            records = [RequestRecord(request_id=i, concurrency=6, worker=i) for i in range(6)]
            return await asyncio.gather(
                *(send_streaming(session, target, request, r, timeout, None, turn) for r in records)
            )

    try:
        records = asyncio.run(main())
    finally:
        filler.close()
        listener.close()
    assert {r.error_type for r in records} <= {"timeout", "connect"}
    # one after another they would take 6 x 0.5 s
    assert max(r.end_mono_s for r in records) - min(r.due_mono_s for r in records) < 2.0


def test_the_turn_comes_back_when_requests_fail_or_are_cancelled() -> None:
    endpoint = Endpoint(base_url="http://127.0.0.1:9/v1", model="reference")
    request, target = endpoint.prepare(RequestSpec("x", 4)), endpoint.target()
    timeout = aiohttp.ClientTimeout(total=10)

    async def main() -> tuple[list[RequestRecord], bool]:
        turn = asyncio.Semaphore(1)
        async with aiohttp.ClientSession(trace_configs=[wire_tracing()]) as session:

            def send(index: int) -> asyncio.Task[RequestRecord]:
                record = RequestRecord(request_id=index, concurrency=4, worker=index)
                return asyncio.create_task(
                    send_streaming(session, target, request, record, timeout, None, turn)
                )

            await turn.acquire()  # held, so that the next ones wait for it
            waiting = [send(i) for i in range(4)]
            await asyncio.sleep(0.01)
            waiting[1].cancel()  # cancelled while it waited: it must not give back a turn
            turn.release()
            done = await asyncio.gather(*waiting, return_exceptions=True)
            records = [r for r in done if isinstance(r, RequestRecord)]
            # every failed request gave its turn back, and no one gave back two
            return records, not turn.locked() and turn._value == 1  # noqa: SLF001

    records, free = asyncio.run(asyncio.wait_for(main(), 20))
    assert [r.error_type for r in records] == ["connect"] * 3
    assert free


def test_a_wave_reads_true_against_the_servers_own_stamps(
    start_reference_server: Callable[..., str],
) -> None:
    # the calibration's truth: the server's stamps of when it parsed each request and
    # wrote each event, one per content chunk the client read
    url = start_reference_server(ttft_ms=20, itl_ms=5)
    endpoint = Endpoint(base_url=url, model="reference")
    plan = LevelPlan(8, 16, None, 30, 5, keep_alive=False)
    outcome = asyncio.run(run_level(endpoint, [RequestSpec("x", 8)], plan, lambda r: None))
    records = outcome.records
    assert [r.status for r in records] == ["ok"] * 16
    for record in records:
        written = record.server_timings["content_mono_s"]
        assert len(written) == len(record.chunk_times_ms) == 8
        assert written == sorted(written)
        assert record.server_timings["first_content_mono_s"] == written[0]
    errors = errors_vs_sent(records)
    # a client error is never negative by more than clock noise, and small on an idle loop
    assert -0.2 < errors["ttft_err_p50_ms"] < 3
    assert -1 < errors["itl_err_p50_ms"] < 1
    # fewer than 100 TTFT samples: no p99
    assert errors["ttft_err_p99_ms"] is None
