"""Streaming request functions for OpenAI-compatible servers (chat and completions) and
Ollama's native API.

Every request returns the same RequestRecord. Errors never raise: they are recorded with
a type, the HTTP status where there is one, and a short text. Times run from the instant
the request's bytes went on the wire.
"""

from __future__ import annotations

import asyncio
import errno
import time
from typing import Any

import aiohttp
from yarl import URL

from harness.client.endpoint import (
    APIS,
    OLLAMA_APIS,
    Endpoint,
    PreparedRequest,
    RequestSpec,
)
from harness.client.errors import (
    ERROR_TEXT_LIMIT,
    IncompleteStream,
    MalformedStream,
    StreamError,
)
from harness.client.ollama_stream import NDJSONReader
from harness.client.openai_stream import SSEReader, StreamState, content_of
from harness.records import RequestRecord

__all__ = [
    "APIS",
    "Endpoint",
    "IncompleteStream",
    "MalformedStream",
    "PreparedRequest",
    "RequestSpec",
    "StreamError",
    "StreamState",
    "content_of",
    "mark_cancelled",
    "send_streaming",
    "wire_tracing",
]


def _fail(record: RequestRecord, error_type: str, text: str) -> None:
    record.status = "error"
    record.error_type = error_type
    record.error_text = text[:ERROR_TEXT_LIMIT]


# The longest a request holds its loop's send turn: a connection that takes longer (a
# remote server's round trip, a server whose accept queue is full) lets the next request
# start, so that a wave is never serialised behind network waits or connect timeouts.
TURN_HOLD_MAX_S = 0.001


class Sending:
    """One request on its way to the wire: its record, and the turn it holds in its event
    loop's send queue until its connection is open (or, on a kept-alive connection, its
    bytes are on the wire; or it failed), and at most TURN_HOLD_MAX_S."""

    __slots__ = ("held", "queue", "record", "timer")

    def __init__(self, record: RequestRecord, queue: asyncio.Semaphore | None) -> None:
        self.record, self.queue, self.held = record, queue, False
        self.timer: asyncio.TimerHandle | None = None

    async def take_turn(self) -> None:
        if self.queue is not None:
            await self.queue.acquire()
            self.held = True
            self.timer = asyncio.get_running_loop().call_later(TURN_HOLD_MAX_S, self.give_back)

    def give_back(self) -> None:
        if self.held:
            self.held = False
            assert self.queue is not None and self.timer is not None
            self.timer.cancel()
            self.queue.release()


def _record_of(context: Any) -> RequestRecord | None:
    sending = context.trace_request_ctx
    return sending.record if isinstance(sending, Sending) else None


async def on_request_chunk_sent(
    session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestChunkSentParams
) -> None:
    """aiohttp calls this just before it hands a body chunk to the socket: the request is
    on the wire. The last chunk's instant is kept."""
    record = _record_of(context)
    if record is not None:
        record.start_mono_s = time.perf_counter()
        record.start_wall_s = time.time()
        record.on_wire = True
        context.trace_request_ctx.give_back()


async def on_connection_create_start(
    session: aiohttp.ClientSession, context: Any, params: Any
) -> None:
    record = _record_of(context)
    if record is not None:
        record.connect_ms = -time.perf_counter()  # completed at the end of the connect


async def on_connection_create_end(
    session: aiohttp.ClientSession, context: Any, params: Any
) -> None:
    """A new connection was opened for the request: how long that took, in ms."""
    record = _record_of(context)
    if record is not None and record.connect_ms is not None:
        record.connect_ms = (time.perf_counter() + record.connect_ms) * 1000.0
        context.trace_request_ctx.give_back()


def wire_tracing() -> aiohttp.TraceConfig:
    """The trace config a session needs so that its requests are timed from the wire, and
    the opening of a new connection is measured apart."""
    trace = aiohttp.TraceConfig()
    trace.on_request_chunk_sent.append(on_request_chunk_sent)
    trace.on_connection_create_start.append(on_connection_create_start)
    trace.on_connection_create_end.append(on_connection_create_end)
    trace.freeze()
    return trace


async def send_streaming(
    session: aiohttp.ClientSession,
    target: tuple[URL, dict[str, str]],
    request: PreparedRequest,
    record: RequestRecord,
    timeout: aiohttp.ClientTimeout,
    reply: list[str] | None = None,
    send_turn: asyncio.Semaphore | None = None,
) -> RequestRecord:
    """Send one prepared streaming request and fill `record` with what arrived and when;
    given `reply`, the generated text is appended to it too (multi-turn sessions).

    `record.due_mono_s` is when the request was due (now, if unset). Times run from the
    instant its bytes went on the wire, which a session made with `wire_tracing()`
    records; until then the record starts at its due time.

    Given `send_turn` (one per event loop), requests open their connections one at a
    time, in the order they came, each giving the turn back once its connection is open
    (a kept-alive one: once its bytes are on the wire), or after TURN_HOLD_MAX_S. A wave
    of requests due at once then leaves one by one, with the loop reading other streams
    between them; started all at once, a wave's connection set-ups run back to back in one
    pass of the loop while the chunks of every other stream wait (at 128 streams, tens of
    ms). The wait for the
    turn is the client's own (`client_wait_ms`), never part of TTFT.
    """
    url, headers = target
    record.max_tokens = request.max_tokens
    if not record.due_mono_s:
        record.due_mono_s = time.perf_counter()
    record.start_mono_s, record.start_wall_s = record.due_mono_s, time.time()
    sending = Sending(record, send_turn)
    try:
        await sending.take_turn()
        async with session.post(
            url, data=request.body, headers=headers, timeout=timeout, trace_request_ctx=sending
        ) as response:
            sending.give_back()
            record.http_status = response.status
            if not record.on_wire:
                # a session without wire_tracing(), or an answer before the body left:
                # timed from the due instant, the conservative side
                record.on_wire = True
            start = record.start_mono_s
            if response.status != 200:
                text = await response.text(errors="replace")
                if retry := response.headers.get("Retry-After"):
                    # reported, not honoured: the level keeps the load it was asked for
                    text = f"[Retry-After: {retry}, not honoured] {text}"
                _fail(record, f"http_{response.status // 100}xx", text)
                return record
            if request.api not in OLLAMA_APIS and response.content_type == "application/json":
                _fail(record, "not_streamed", NOT_STREAMED)
                return record
            reader = _reader(request.api, record, reply)
            async for raw in response.content.iter_any():
                arrival_ms = (time.perf_counter() - start) * 1000.0
                if record.ttfb_ms is None:
                    record.ttfb_ms = arrival_ms
                reader.feed(raw, arrival_ms)
            reader.close((time.perf_counter() - start) * 1000.0)
    except (MalformedStream, StreamError, IncompleteStream) as exc:
        _fail(record, exc.error_type, str(exc))
    except aiohttp.ConnectionTimeoutError:
        _fail(record, "connect", f"no connection within {timeout.sock_connect} s")
    except aiohttp.SocketTimeoutError:
        _fail(record, "idle", f"no byte from the server for {timeout.sock_read} s (stalled)")
    except TimeoutError:
        _fail(record, "timeout", f"no complete response within {timeout.total} s")
    except aiohttp.ClientConnectorError as exc:
        _fail(record, *connect_failure(exc))
    except aiohttp.ServerDisconnectedError as exc:
        _fail(record, "disconnected", str(exc) or "server disconnected")
    except aiohttp.ClientPayloadError as exc:
        _fail(record, "disconnected", f"response cut off: {exc}")
    except aiohttp.ClientError as exc:
        _fail(record, "client_error", f"{type(exc).__name__}: {exc}")
    finally:
        sending.give_back()
        record.end_mono_s = time.perf_counter()
        record.end_wall_s = time.time()
        if record.connect_ms is not None and record.connect_ms < 0:
            record.connect_ms = None  # the connect never completed
    return record


NOT_STREAMED = (
    "the server answered 200 with one JSON body (application/json), not a stream of "
    'server-sent events: it does not honour "stream": true on this endpoint'
)
# A connect that fails for want of the client's own resources is the client's error.
CLIENT_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.EADDRNOTAVAIL}
REFUSED = "connection refused"


def connect_failure(exc: aiohttp.ClientConnectorError) -> tuple[str, str]:
    """The error type and text of a failed connect: the client's own limits, a refusal
    (nothing listens), or another connect error."""
    code = exc.os_error.errno if exc.os_error else None
    if code in CLIENT_ERRNOS:
        advice = " (raise the limit: ulimit -n)" if code in (errno.EMFILE, errno.ENFILE) else ""
        return "client_error", f"the client could not open a connection: {exc.strerror}{advice}"
    if code == errno.ECONNREFUSED:
        return "connect", f"{REFUSED}: {exc}"
    return "connect", str(exc)


def refused(record: RequestRecord) -> bool:
    return record.error_type == "connect" and (record.error_text or "").startswith(REFUSED)


def _reader(api: str, record: RequestRecord, reply: list[str] | None) -> NDJSONReader | SSEReader:
    if api not in OLLAMA_APIS:
        return SSEReader(record, reply)
    return NDJSONReader(record, reply)


def mark_cancelled(record: RequestRecord) -> RequestRecord:
    """Mark a record whose request was cut short by cancellation (Ctrl-C, duration bound)."""
    _fail(record, "cancelled", "request cancelled before it finished")
    record.end_mono_s = time.perf_counter()
    record.end_wall_s = time.time()
    return record
