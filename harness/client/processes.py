"""Spread one level over several client processes, each with its own event loop.

One Python process parsing server-sent events saturates a core at some thousands of
chunks per second and then reports its own delays as the server's. Several processes
share one schedule (a shared request counter for closed loops, one seeded arrival
schedule split by index for open loops, one common start time) and send every finished
record back to the parent, which stores it as it arrives. Monotonic clocks are
system-wide on Linux, so times from every process are comparable.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from harness.client.openai_api import Endpoint, RequestSpec
from harness.client.scheduler import LevelOutcome, LevelPlan, Share, run_level
from harness.records import RequestRecord

# Streams one process serves before another helps (see `make calibrate`).
STREAMS_PER_PROCESS = 128
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


def auto_processes(plan: LevelPlan, cpu_count: int | None = None) -> int:
    """Client processes for a level: one, unless its streams would saturate one core."""
    cores = cpu_count or os.cpu_count() or 1
    streams = plan.concurrency
    if plan.mode == "rate" and not plan.concurrency:
        streams = int(plan.rate_per_s or 1)
    return max(1, min(cores, math.ceil(streams / STREAMS_PER_PROCESS)))


def _run_uvloop_or_asyncio(coroutine: Any) -> Any:
    try:
        import uvloop  # optional: a faster event loop where installed

        return uvloop.run(coroutine)
    except ImportError:
        return asyncio.run(coroutine)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_until_signal(coroutine: Any) -> Any:
    """Run `coroutine` in a fresh event loop; SIGINT or SIGTERM cancel it, and once it has
    cleaned up, KeyboardInterrupt is raised here.

    A Python signal handler that raises inside the event loop can land in a transport
    callback, where uvloop reports the exception to its handler and carries on: the
    stop would be lost. A loop signal handler cancels the task instead, which every
    loop delivers.
    """
    result, received = _run_uvloop_or_asyncio(_cancelled_by_signals(coroutine))
    if received is not None:
        raise KeyboardInterrupt(f"stopped by {signal.Signals(received).name}")
    return result


async def _cancelled_by_signals(coroutine: Any) -> tuple[Any, int | None]:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    received: list[int] = []

    def on_signal(sig: int) -> None:
        if not received:
            received.append(sig)
            task.cancel()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            handler = signal.getsignal(sig)
            if handler in (signal.SIG_IGN, None):
                continue  # ignored on purpose (client children), or not ours to replace
            previous[sig] = handler
            loop.add_signal_handler(sig, on_signal, sig)
    try:
        result = await coroutine
    except asyncio.CancelledError:
        if not received:
            raise
        result = None
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)  # the loop leaves SIG_DFL behind; put ours back
    return result, (received[0] if received else None)


def _child(
    index: int,
    count: int,
    endpoint: Endpoint,
    specs: Sequence[RequestSpec],
    plan: LevelPlan,
    first_request_id: int,
    results: Any,
    counter: Any,
    start: Any,
    t0: Any,
    stop: Any,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop

    def claim() -> int:
        with counter.get_lock():
            value = counter.value
            counter.value = value + 1
            return value

    async def main() -> LevelOutcome:
        share = Share(index=index, count=count, t0_mono_s=t0.value, claim=claim)
        task = asyncio.create_task(
            run_level(
                endpoint, specs, plan, lambda r: results.put(("record", r)), first_request_id, share
            )
        )
        while not task.done():
            if stop.is_set():
                task.cancel()
            await asyncio.wait([task], timeout=0.05)
        return task.result()

    results.put(("ready", index))
    start.wait()
    try:
        outcome = _run_uvloop_or_asyncio(main())
        results.put(
            (
                "done",
                index,
                outcome.client[0],
                outcome.started_mono_s,
                outcome.ended_mono_s,
                outcome.stopped_by_deadline,
                outcome.server_gone,
            )
        )
    except asyncio.CancelledError:
        results.put(("done", index, None, t0.value, time.perf_counter(), False, False))
    except Exception as exc:  # reported to the parent, which fails the level with it
        results.put(("error", index, f"{type(exc).__name__}: {exc}"))


def run_level_in_processes(
    endpoint: Endpoint,
    specs: Sequence[RequestSpec],
    plan: LevelPlan,
    on_record: Callable[[RequestRecord], None],
    first_request_id: int,
    processes: int,
) -> LevelOutcome:
    """Run a level in `processes` processes (1: in this one); records reach `on_record`
    in the order they finish."""
    if processes <= 1:
        return run_until_signal(run_level(endpoint, specs, plan, on_record, first_request_id))
    ctx = mp.get_context("spawn")
    results, counter, start, stop = ctx.Queue(), ctx.Value("q", 0), ctx.Event(), ctx.Event()
    t0 = ctx.Value("d", 0.0)
    children = [
        ctx.Process(
            target=_child,
            args=(
                i,
                processes,
                endpoint,
                specs,
                plan,
                first_request_id,
                results,
                counter,
                start,
                t0,
                stop,
            ),
            daemon=True,
        )
        for i in range(processes)
    ]
    for child in children:
        child.start()
    records: list[RequestRecord] = []
    collector = _Collector(results, records, on_record)
    try:
        collector.wait_for("ready", processes, START_TIMEOUT_S, children)
        t0.value = time.perf_counter() + 0.02
        start.set()
        collector.wait_for("done", processes, None, children)
    except BaseException:
        stop.set()
        start.set()
        collector.wait_for("done", processes, STOP_TIMEOUT_S, children, quiet=True)
        raise
    finally:
        for child in children:
            child.join(timeout=2)
            if child.is_alive():
                child.kill()
    ended = max((d[4] for d in collector.done), default=time.perf_counter())
    return LevelOutcome(
        records,
        t0.value,
        ended,
        any(d[5] for d in collector.done),
        [d[2] for d in collector.done if d[2] is not None],
        any(d[6] for d in collector.done),
    )


class _Collector:
    """Drains the children's messages: records to the caller, the rest kept."""

    def __init__(
        self, results: Any, records: list[RequestRecord], on_record: Callable[[RequestRecord], None]
    ) -> None:
        self.results, self.records, self.on_record = results, records, on_record
        self.ready: list[tuple] = []
        self.done: list[tuple] = []

    def wait_for(
        self,
        kind: str,
        count: int,
        timeout_s: float | None,
        children: list[Any] | None = None,
        quiet: bool = False,
    ) -> None:
        deadline = time.monotonic() + timeout_s if timeout_s else None
        bucket = self.ready if kind == "ready" else self.done
        while len(bucket) < count:
            if deadline and time.monotonic() > deadline:
                if quiet:
                    return
                raise RuntimeError(f"client processes did not report {kind!r} in {timeout_s} s")
            try:
                message = self.results.get(timeout=0.1)
            except queue.Empty:
                if children and not any(c.is_alive() for c in children):
                    self._drain()
                    if len(bucket) < count and not quiet:
                        raise RuntimeError("client processes exited without finishing") from None
                    return
                continue
            self._handle(message, quiet)

    def _drain(self) -> None:
        while True:
            try:
                self._handle(self.results.get_nowait(), quiet=True)
            except queue.Empty:
                return

    def _handle(self, message: tuple, quiet: bool) -> None:
        kind = message[0]
        if kind == "record":
            self.records.append(message[1])
            self.on_record(message[1])
        elif kind == "ready":
            self.ready.append(message)
        elif kind == "done":
            self.done.append(message)
        elif kind == "error" and not quiet:
            raise RuntimeError(f"client process {message[1]} failed: {message[2]}")
