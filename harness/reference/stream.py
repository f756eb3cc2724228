"""One streamed response of the reference server, written by timer callbacks on an
absolute schedule (first token at TTFT, then one event every ITL, so delays never drift)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from harness.reference.connection import Connection


def _chunk(model: str, created: int, choices: list[dict[str, Any]], **extra: Any) -> bytes:
    body = {
        "id": "cmpl-reference",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
        **extra,
    }
    return b"data: " + orjson.dumps(body) + b"\n\n"


def _words(prompt: Any) -> list[str]:
    """A prompt's words: a completion prompt's, or the content of every chat message."""
    if isinstance(prompt, list):
        prompt = " ".join(str(m.get("content", "")) for m in prompt if isinstance(m, dict))
    return str(prompt).split()


def _delta(chat: bool, text: str) -> dict[str, Any]:
    return {"delta": {"content": text}} if chat else {"text": text}


_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
)
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


def framed(payload: bytes) -> bytes:
    """One piece of a chunked HTTP body."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def json_response(status: int, body: Any, extra_headers: str = "") -> bytes:
    data = orjson.dumps(body)
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        f"{extra_headers}Connection: keep-alive\r\n\r\n"
    )
    return head.encode() + data


def text_response(text: str) -> bytes:
    """A 200 with a plain-text body (Prometheus' text format at GET /metrics)."""
    data = text.encode()
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
        f"Content-Length: {len(data)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + data


class Stream:
    """One streamed response, written by timer callbacks on an absolute schedule."""

    def __init__(self, connection: Connection, body: dict[str, Any], chat: bool) -> None:
        self.connection, self.chat = connection, chat
        self.behaviour = behaviour = connection.behaviour
        # arrived: the kernel's receive stamp of the request's last bytes (None where the
        # kernel gives none); received: when it was parsed; started: when it got a slot
        # (the same without a slot limit), from which its schedule runs
        self.received = self.started = time.perf_counter()
        self.arrived = connection.arrived_mono_s()
        self.tokens = int(self.max_tokens_of(body) or behaviour.output_tokens)
        self.finish_reason = "length"
        if behaviour.fault == "stop_early":  # an engine that ignores ignore_eos
            self.tokens, self.finish_reason = max(1, self.tokens // 2), "stop"
        self.events = -(-self.tokens // behaviour.tokens_per_event)
        prompt = body.get("messages") or body.get("prompt") or ""
        self.prompt_tokens = len(orjson.dumps(prompt).split())
        self.cached_tokens = min(self.prompt_tokens, behaviour.prompts.add(_words(prompt)))
        self.created = int(time.time())
        self.loop = asyncio.get_running_loop()
        self.clock_offset = self.loop.time() - self.started
        self.handle: asyncio.TimerHandle | None = None
        self.written: list[float] = []  # when each content event went to the socket

    @staticmethod
    def max_tokens_of(body: dict[str, Any]) -> int | None:
        return body.get("max_tokens")

    def begin(self) -> None:
        self.started = time.perf_counter()
        first = _STREAM_HEAD
        if self.chat:
            role = {
                "index": 0,
                "delta": {"role": "assistant", "content": ""},
                "finish_reason": None,
            }
            first += framed(_chunk(self.behaviour.model, self.created, [role]))
        self.connection.write(first)
        self._schedule(0)

    def _schedule(self, index: int) -> None:
        b = self.behaviour
        scheduled = self.started + (b.ttft_ms + index * b.itl_ms) / 1000.0
        self.handle = self.loop.call_at(scheduled + self.clock_offset, self._emit, index, scheduled)

    def _emit(self, index: int, scheduled: float) -> None:
        b = self.behaviour
        b.lateness_ms.append((time.perf_counter() - scheduled) * 1000.0)
        out = b""
        if index == b.fault_after_tokens and b.fault != "none":
            if b.fault == "cut_stream":
                self.connection.abort()
                return
            if b.fault == "stall":
                return  # nothing more is ever sent
            if b.fault == "malformed":
                out += framed(b"data: {not json\n\n")
            if b.fault == "error_event":
                out += framed(b'data: {"error": {"message": "injected failure"}}\n\n')
            if b.fault == "bad_utf8":  # a byte no UTF-8 text has, inside a content string
                out += framed(
                    b'data: {"choices": [{"index": 0, "delta": {"content": "\xff "}}]}\n\n'
                )
        first = index * b.tokens_per_event
        text = "".join(f"t{n} " for n in range(first, min(first + b.tokens_per_event, self.tokens)))
        out += self.content_event(text)
        if index + 1 < self.events:
            self.written.append(time.perf_counter())
            self.connection.write(out)
            self._schedule(index + 1)
            return
        self.written.append(time.perf_counter())
        self.connection.write(out + self._ending())
        self.connection.stream_done()

    @property
    def first_written(self) -> float | None:
        return self.written[0] if self.written else None

    def content_event(self, text: str) -> bytes:
        choice = {"index": 0, **_delta(self.chat, text), "finish_reason": None}
        return framed(_chunk(self.behaviour.model, self.created, [choice]))

    def _ending(self) -> bytes:
        b = self.behaviour
        if b.fault == "no_done":
            return b"0\r\n\r\n"
        finish = {"index": 0, **_delta(self.chat, ""), "finish_reason": self.finish_reason}
        out = framed(_chunk(b.model, self.created, [finish]))
        if b.fault != "no_usage":
            bad = b.fault == "bad_usage"  # a server whose counts are impossible
            usage = {
                "prompt_tokens": -5 if bad else self.prompt_tokens,
                "completion_tokens": 10**12 if bad else self.tokens,
                "total_tokens": self.prompt_tokens + self.tokens,
                "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            }
            # when it parsed the request and wrote the first content, on the monotonic
            # clock the client shares: the server's own part of any timing error
            timings = {
                "arrived_mono_s": self.arrived,
                "received_mono_s": self.received,
                "served_mono_s": self.started,
                "first_content_mono_s": self.first_written,
                "content_mono_s": self.written,
            }
            out += framed(_chunk(b.model, self.created, [], usage=usage, timings=timings))
        return out + framed(b"data: [DONE]\n\n") + b"0\r\n\r\n"

    def cancel(self) -> None:
        if self.handle:
            self.handle.cancel()


_NDJSON_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
    b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
)


class OllamaStream(Stream):
    """The same schedule in Ollama's native form: a JSON object a line, /api/chat or
    /api/generate, the output capped by options.num_predict, the engine's own counts and
    durations (nanoseconds) in the final object."""

    @staticmethod
    def max_tokens_of(body: dict[str, Any]) -> int | None:
        return (body.get("options") or {}).get("num_predict")

    def begin(self) -> None:
        self.started = time.perf_counter()
        self.connection.write(_NDJSON_HEAD)
        self._schedule(0)

    def _line(self, **fields: Any) -> bytes:
        return framed(orjson.dumps({"model": self.behaviour.model, **fields}) + b"\n")

    def content_event(self, text: str) -> bytes:
        if self.chat:
            return self._line(message={"role": "assistant", "content": text}, done=False)
        return self._line(response=text, done=False)

    def _ending(self) -> bytes:
        b = self.behaviour
        if b.fault == "no_done":
            return b"0\r\n\r\n"
        now = time.perf_counter()
        first = self.first_written or now
        final = {
            "done": True,
            "done_reason": self.finish_reason,
            "prompt_eval_count": self.prompt_tokens,
            "prompt_eval_duration": int((first - self.started) * 1e9),
            "eval_count": self.tokens,
            "eval_duration": int((now - first) * 1e9),
            "total_duration": int((now - self.started) * 1e9),
        }
        if self.chat:
            final["message"] = {"role": "assistant", "content": ""}
        return self._line(**final) + b"0\r\n\r\n"
