"""A reference OpenAI-compatible server that streams with exactly known timing.

Not an engine: a calibration instrument. Every response streams a role-only chunk at
once, then one content chunk per token on an absolute schedule (first token at TTFT,
then one every ITL, so delays never drift), a finish chunk with an empty delta, a
usage-only chunk and `[DONE]`. Fault modes make it misbehave in one defined way each,
for the fault tests. Run it with `python -m harness.reference_server --port 8000`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

from harness.metrics import describe

FAULTS = (
    "none",  # a well-formed stream
    "http_500",  # HTTP 500 with a JSON error body
    "http_429",  # HTTP 429 (rate limited)
    "cut_stream",  # the connection is closed after `fault_after_tokens` tokens
    "malformed",  # a non-JSON data line after `fault_after_tokens` tokens
    "no_done",  # all tokens, no finish_reason, no [DONE], then the stream ends
    "no_usage",  # no usage chunk (the client must fall back to counting chunks, and say so)
    "error_event",  # an {"error": ...} event mid-stream
    "stall",  # stops sending after `fault_after_tokens` tokens (for read timeouts)
)


@dataclass
class Behaviour:
    """How the server answers. `output_tokens` is used when a request sets no max_tokens."""

    ttft_ms: float = 50.0
    itl_ms: float = 10.0
    output_tokens: int = 16
    fault: str = "none"
    fault_after_tokens: int = 3
    model: str = "reference"
    api_key: str | None = None  # when set, requests must carry "Authorization: Bearer <key>"
    # How late each content chunk left the server versus its schedule (ms): the server's
    # own share of any timing error, served at GET /stats.
    lateness_ms: deque[float] = field(default_factory=lambda: deque(maxlen=1_000_000))

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise ValueError(f"fault={self.fault!r} is not one of {', '.join(FAULTS)}")
        if self.ttft_ms < 0 or self.itl_ms < 0:
            raise ValueError(
                f"ttft_ms={self.ttft_ms!r}, itl_ms={self.itl_ms!r} are not valid; each must be >= 0"
            )


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


def _framed(payload: bytes) -> bytes:
    """One piece of a chunked HTTP body."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _json_response(status: int, body: Any) -> bytes:
    data = orjson.dumps(body)
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        "Connection: keep-alive\r\n\r\n"
    )
    return head.encode() + data


class _Stream:
    """One streamed response, written by timer callbacks on an absolute schedule."""

    def __init__(self, connection: _Connection, body: dict[str, Any], chat: bool) -> None:
        self.connection, self.chat = connection, chat
        self.behaviour = behaviour = connection.behaviour
        self.started = time.perf_counter()
        self.tokens = int(body.get("max_tokens") or behaviour.output_tokens)
        prompt = body.get("messages") or body.get("prompt") or ""
        self.prompt_tokens = len(orjson.dumps(prompt).split())
        self.created = int(time.time())
        self.loop = asyncio.get_running_loop()
        self.clock_offset = self.loop.time() - self.started
        self.handle: asyncio.TimerHandle | None = None

    def begin(self) -> None:
        first = _STREAM_HEAD
        if self.chat:
            role = {
                "index": 0,
                "delta": {"role": "assistant", "content": ""},
                "finish_reason": None,
            }
            first += _framed(_chunk(self.behaviour.model, self.created, [role]))
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
                out += _framed(b"data: {not json\n\n")
            if b.fault == "error_event":
                out += _framed(b'data: {"error": {"message": "injected failure"}}\n\n')
        choice = {"index": 0, **_delta(self.chat, f"t{index} "), "finish_reason": None}
        out += _framed(_chunk(b.model, self.created, [choice]))
        if index + 1 < self.tokens:
            self.connection.write(out)
            self._schedule(index + 1)
            return
        self.connection.write(out + self._ending())
        self.connection.stream_done()

    def _ending(self) -> bytes:
        b = self.behaviour
        if b.fault == "no_done":
            return b"0\r\n\r\n"
        finish = {"index": 0, **_delta(self.chat, ""), "finish_reason": "length"}
        out = _framed(_chunk(b.model, self.created, [finish]))
        if b.fault != "no_usage":
            usage = {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.tokens,
                "total_tokens": self.prompt_tokens + self.tokens,
            }
            out += _framed(_chunk(b.model, self.created, [], usage=usage))
        return out + _framed(b"data: [DONE]\n\n") + b"0\r\n\r\n"

    def cancel(self) -> None:
        if self.handle:
            self.handle.cancel()


class _Connection(asyncio.Protocol):
    """A minimal HTTP/1.1 server connection: enough for OpenAI-style clients, and cheap,
    so that the instrument is not the bottleneck it is meant to measure."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.buffer = b""
        self.transport: Any = None  # asyncio's or uvloop's TCP transport
        self.stream: _Stream | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.stream:
            self.stream.cancel()
        self.transport = None

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def stream_done(self) -> None:
        self.stream = None
        self._next_request()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.stream is None:
            self._next_request()

    def _next_request(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].decode("latin-1").split("\r\n")
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        if len(self.buffer) < end + 4 + length:
            return
        body = self.buffer[end + 4 : end + 4 + length]
        self.buffer = self.buffer[end + 4 + length :]
        method, path = (head[0].split(" ") + ["", ""])[:2]
        key = self.behaviour.api_key
        if key and headers.get("authorization") != f"Bearer {key}":
            self.write(_json_response(401, {"error": {"message": "missing or wrong API key"}}))
            return self._next_request()
        self._route(method, path, body)

    def _route(self, method: str, path: str, body: bytes) -> None:
        path, _, query = path.partition("?")
        b = self.behaviour
        if method == "GET" and path == "/health":
            self.write(_json_response(200, {"status": "ok"}))
        elif method == "GET" and path == "/v1/models":
            data = [{"id": b.model, "object": "model"}]
            self.write(_json_response(200, {"object": "list", "data": data}))
        elif method == "GET" and path == "/stats":
            lateness = describe(list(b.lateness_ms))
            if "reset" in query:
                b.lateness_ms.clear()
            self.write(_json_response(200, {"lateness_ms": lateness}))
        elif method == "POST" and path in ("/v1/chat/completions", "/v1/completions"):
            self._start_stream(body, chat=path.endswith("chat/completions"))
            return
        else:
            self.write(_json_response(404, {"error": {"message": f"no route {method} {path}"}}))
        self._next_request()

    def _start_stream(self, raw: bytes, chat: bool) -> None:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.write(_json_response(400, {"error": {"message": "body is not JSON"}}))
            return self._next_request()
        if self.behaviour.fault in ("http_500", "http_429"):
            status = int(self.behaviour.fault[-3:])
            self.write(_json_response(status, {"error": {"message": f"injected {status}"}}))
            return self._next_request()
        self.stream = _Stream(self, body, chat)
        self.stream.begin()


async def serve(behaviour: Behaviour, host: str, port: int) -> None:
    """Serve until cancelled; print the base URL on one line once listening."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Connection(behaviour), host, port, backlog=4096, reuse_address=True
    )
    bound_port = server.sockets[0].getsockname()[1]
    print(f"listening on http://{host}:{bound_port}/v1", flush=True)
    async with server:
        await server.serve_forever()


@contextmanager
def running(**options: object) -> Iterator[str]:
    """Start the reference server in its own process with these options; yield its /v1 URL."""
    args = [sys.executable, "-m", "harness.reference_server", "--port", "0"]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline() if process.stdout else ""
        if not line.startswith("listening on "):
            stderr = process.stderr.read() if process.stderr else ""
            raise RuntimeError(f"reference server did not start: {line!r} {stderr[-2000:]}")
        yield line.split()[-1]
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--itl-ms", type=float, default=10.0)
    parser.add_argument("--output-tokens", type=int, default=16)
    parser.add_argument("--fault", choices=FAULTS, default="none")
    parser.add_argument("--fault-after-tokens", type=int, default=3)
    parser.add_argument("--model", default="reference")
    parser.add_argument("--api-key-env", help="require the key held in this variable")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    behaviour = Behaviour(
        ttft_ms=args.ttft_ms,
        itl_ms=args.itl_ms,
        output_tokens=args.output_tokens,
        fault=args.fault,
        fault_after_tokens=args.fault_after_tokens,
        model=args.model,
        api_key=os.environ.get(args.api_key_env) if args.api_key_env else None,
    )
    try:
        import uvloop  # optional: a faster event loop where installed

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(behaviour, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
