"""Streaming request functions for OpenAI-compatible servers (chat and completions).

Both return the same RequestRecord. Errors never raise: they are recorded with a type,
the HTTP status where there is one, and a short text.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from yarl import URL

from harness.client.sse import SSEParser
from harness.records import RequestRecord

ERROR_TEXT_LIMIT = 500


@dataclass
class RequestSpec:
    """What one request asks for."""

    prompt: str
    max_tokens: int


@dataclass(frozen=True)
class PreparedRequest:
    """A request's bytes, built once before a level so the event loop only sends them."""

    body: bytes
    max_tokens: int


@dataclass
class Endpoint:
    """Where and how to send requests."""

    base_url: str  # ends in /v1
    model: str
    api: str = "chat"  # chat | completions
    ignore_eos: bool = True
    temperature: float = 0.0
    api_key: str | None = None

    @property
    def url(self) -> str:
        path = "chat/completions" if self.api == "chat" else "completions"
        return f"{self.base_url.rstrip('/')}/{path}"

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def payload(self, spec: RequestSpec) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": spec.max_tokens,
            "temperature": self.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.api == "chat":
            body["messages"] = [{"role": "user", "content": spec.prompt}]
        else:
            body["prompt"] = spec.prompt
        if self.ignore_eos:
            body["ignore_eos"] = True
        return body

    def prepare(self, spec: RequestSpec) -> PreparedRequest:
        return PreparedRequest(orjson.dumps(self.payload(spec)), spec.max_tokens)

    def target(self) -> tuple[URL, dict[str, str]]:
        """The parsed URL and the headers, shared by every request of a level."""
        return URL(self.url), self.headers()


def content_of(choice: dict[str, Any]) -> str:
    """Generated text carried by one streamed choice (chat delta or completion text)."""
    delta = choice.get("delta")
    if isinstance(delta, dict):
        content = delta.get("content")
        if "reasoning_content" not in delta and "reasoning" not in delta:
            return content if isinstance(content, str) else ""  # the common delta, fast
        parts = [content, delta.get("reasoning_content"), delta.get("reasoning")]
        return "".join(p for p in parts if isinstance(p, str))
    text = choice.get("text")
    return text if isinstance(text, str) else ""


class _StreamState:
    """Folds parsed SSE events into a record."""

    def __init__(self, record: RequestRecord) -> None:
        self.record = record
        self.done = False
        self.content_chunks = 0

    def on_event(self, data: str, arrival_ms: float) -> None:
        if data.strip() == "[DONE]":
            self.done = True
            return
        try:
            # orjson: the client parses every chunk of every stream on one event loop
            message = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise MalformedStream(f"event is not JSON ({exc}): {data[:120]!r}") from exc
        if not isinstance(message, dict):
            raise MalformedStream(f"event is not a JSON object: {data[:120]!r}")
        if "error" in message:
            raise StreamError(json.dumps(message["error"])[:ERROR_TEXT_LIMIT])
        for choice in message.get("choices") or ():
            text = content_of(choice)
            if text:
                record = self.record
                self.content_chunks += 1
                record.output_chars += len(text)
                record.chunk_times_ms.append(arrival_ms)
                if record.ttft_ms is None:
                    record.ttft_ms = arrival_ms
            if choice.get("finish_reason"):
                self.record.finish_reason = choice["finish_reason"]
        usage = message.get("usage")
        if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
            self._take_usage(usage)
        if isinstance(message.get("timings"), dict):
            self.record.server_timings = message["timings"]

    def _take_usage(self, usage: dict[str, Any]) -> None:
        record = self.record
        record.output_tokens = int(usage["completion_tokens"])
        record.output_tokens_source = "usage"
        if usage.get("prompt_tokens") is not None:
            record.prompt_tokens = int(usage["prompt_tokens"])
            record.prompt_tokens_source = "usage"
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
            record.cached_prompt_tokens = details["cached_tokens"]

    def on_trailing_event(self, data: str, arrival_ms: float) -> None:
        """An event the stream ended inside (no closing blank line): a cut, if unparsable."""
        try:
            self.on_event(data, arrival_ms)
        except MalformedStream as exc:
            raise IncompleteStream(f"stream ended inside an event: {data[:120]!r}") from exc

    def finish(self) -> None:
        if self.record.output_tokens_source != "usage" and self.content_chunks:
            # The server sent no usage: fall back to chunks, and say so in the record.
            self.record.output_tokens = self.content_chunks
            self.record.output_tokens_source = "chunk_count"
        if not self.done and self.record.finish_reason is None:
            raise IncompleteStream("stream ended without [DONE] or a finish_reason")


class MalformedStream(Exception):
    error_type = "malformed_stream"


class StreamError(Exception):
    error_type = "stream_error"


class IncompleteStream(Exception):
    error_type = "incomplete_stream"


def _fail(record: RequestRecord, error_type: str, text: str) -> None:
    record.status = "error"
    record.error_type = error_type
    record.error_text = text[:ERROR_TEXT_LIMIT]


async def on_request_chunk_sent(
    session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestChunkSentParams
) -> None:
    """aiohttp calls this just before it hands a body chunk to the socket: the request is
    on the wire. The last chunk's instant is kept."""
    record = context.trace_request_ctx
    if isinstance(record, RequestRecord):
        record.start_mono_s = time.perf_counter()
        record.start_wall_s = time.time()
        record.on_wire = True


def wire_tracing() -> aiohttp.TraceConfig:
    """The trace config a session needs so that its requests are timed from the wire."""
    trace = aiohttp.TraceConfig()
    trace.on_request_chunk_sent.append(on_request_chunk_sent)
    trace.freeze()
    return trace


async def send_streaming(
    session: aiohttp.ClientSession,
    target: tuple[URL, dict[str, str]],
    request: PreparedRequest,
    record: RequestRecord,
    timeout: aiohttp.ClientTimeout,
) -> RequestRecord:
    """Send one prepared streaming request and fill `record` with what arrived and when.

    `record.due_mono_s` is when the request was due (now, if unset). Times run from the
    instant its bytes went on the wire, which a session made with `wire_tracing()`
    records; until then the record starts at its due time.
    """
    url, headers = target
    record.max_tokens = request.max_tokens
    if not record.due_mono_s:
        record.due_mono_s = time.perf_counter()
    record.start_mono_s, record.start_wall_s = record.due_mono_s, time.time()
    state = _StreamState(record)
    try:
        async with session.post(
            url, data=request.body, headers=headers, timeout=timeout, trace_request_ctx=record
        ) as response:
            record.http_status = response.status
            if not record.on_wire:
                # a session without wire_tracing(), or an answer before the body left:
                # timed from the due instant, the conservative side
                record.on_wire = True
            start = record.start_mono_s
            if response.status != 200:
                text = await response.text(errors="replace")
                _fail(record, f"http_{response.status // 100}xx", text)
                return record
            parser = SSEParser()
            async for raw in response.content.iter_any():
                arrival_ms = (time.perf_counter() - start) * 1000.0
                if record.ttfb_ms is None:
                    record.ttfb_ms = arrival_ms
                for event in parser.feed(raw):
                    state.on_event(event.data, arrival_ms)
            end_ms = (time.perf_counter() - start) * 1000.0
            for event in parser.flush():
                state.on_trailing_event(event.data, end_ms)
            state.finish()
    except (MalformedStream, StreamError, IncompleteStream) as exc:
        _fail(record, exc.error_type, str(exc))
    except TimeoutError:
        _fail(record, "timeout", f"no complete response within {timeout.total} s")
    except aiohttp.ClientConnectorError as exc:
        _fail(record, "connect", str(exc))
    except aiohttp.ServerDisconnectedError as exc:
        _fail(record, "disconnected", str(exc) or "server disconnected")
    except aiohttp.ClientPayloadError as exc:
        _fail(record, "disconnected", f"response cut off: {exc}")
    except aiohttp.ClientError as exc:
        _fail(record, "client_error", f"{type(exc).__name__}: {exc}")
    finally:
        record.end_mono_s = time.perf_counter()
        record.end_wall_s = time.time()
    return record


def mark_cancelled(record: RequestRecord) -> RequestRecord:
    """Mark a record whose request was cut short by cancellation (Ctrl-C, duration bound)."""
    _fail(record, "cancelled", "request cancelled before it finished")
    record.end_mono_s = time.perf_counter()
    record.end_wall_s = time.time()
    return record
