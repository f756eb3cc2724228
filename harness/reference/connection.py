"""A minimal HTTP/1.1 server connection for the reference server: enough for
OpenAI-style clients, and cheap, so that the instrument is not the bottleneck it is
meant to measure."""

from __future__ import annotations

from typing import Any

import orjson

from harness.metrics import describe
from harness.reference.behaviour import Behaviour
from harness.reference.stream import OllamaStream, Stream, json_response, text_response
from harness.reference.transport import SocketTransport


def tokenized(raw: bytes) -> dict[str, Any]:
    """llama.cpp's POST /tokenize, with a word as a token, as the server's usage counts."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = {}
    text = body.get("content") if isinstance(body, dict) else None
    return {"tokens": list(range(len(str(text or "").split())))}


def fault_answer(behaviour: Behaviour) -> bytes:
    """A 429 that says when to come back, or a whole completion where a stream was asked."""
    if behaviour.fault == "retry_after":
        body = {"error": {"message": "rate limited"}}
        return json_response(429, body, "Retry-After: 2\r\n")
    message = {"role": "assistant", "content": "t0 t1 t2"}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    usage = {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
    body = {"object": "chat.completion", "model": behaviour.model, "choices": [choice]}
    return json_response(200, {**body, "usage": usage})


class Connection:
    """A minimal HTTP/1.1 server connection: enough for OpenAI-style clients, and cheap,
    so that the instrument is not the bottleneck it is meant to measure."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.buffer = b""
        self.transport: SocketTransport | None = None
        self.stream: Stream | None = None

    def connection_made(self, transport: SocketTransport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.stream:
            self.stream.cancel()
            self.behaviour.queue.release(self.stream)
        self.transport = None

    def arrived_mono_s(self) -> float | None:
        """The kernel's receive stamp of the last bytes read (None where there is none)."""
        return self.transport.arrived_mono_s if self.transport is not None else None

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def stream_done(self) -> None:
        if self.stream:
            self.behaviour.queue.release(self.stream)
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
        if self.behaviour.fault == "silent":
            return  # read, never answered
        key = self.behaviour.api_key
        if key and headers.get("authorization") != f"Bearer {key}":
            self.write(json_response(401, {"error": {"message": "missing or wrong API key"}}))
            return self._next_request()
        self._route(method, path, body)

    def _route(self, method: str, path: str, body: bytes) -> None:
        path, _, query = path.partition("?")
        b = self.behaviour
        if method == "GET" and path == "/health":
            self.write(json_response(200, {"status": "ok"}))
        elif method == "GET" and path == "/v1/models":
            data = [{"id": b.model, "object": "model"}]
            self.write(json_response(200, {"object": "list", "data": data}))
        elif method == "GET" and path == "/stats":
            lateness = describe(list(b.lateness_ms))
            if "reset" in query:
                b.lateness_ms.clear()
            prompts, slots = b.prompts.stats(), b.queue.stats()
            body = {"lateness_ms": lateness, "prompts": prompts, "slots": slots}
            self.write(json_response(200, body))
        elif method == "GET" and path == "/metrics":
            self.write(text_response(b.queue.prometheus()))
        elif method == "POST" and path == "/tokenize":
            self.write(json_response(200, tokenized(body)))
        elif method == "POST" and path in ("/v1/chat/completions", "/v1/completions"):
            self._start_stream(body, chat=path.endswith("chat/completions"))
            return
        elif method == "POST" and path in ("/api/chat", "/api/generate"):
            self._start_stream(body, chat=path == "/api/chat", stream_class=OllamaStream)
            return
        else:
            self.write(json_response(404, {"error": {"message": f"no route {method} {path}"}}))
        self._next_request()

    def _start_stream(self, raw: bytes, chat: bool, stream_class: type[Stream] = Stream) -> None:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.write(json_response(400, {"error": {"message": "body is not JSON"}}))
            return self._next_request()
        if self.behaviour.fault in ("http_500", "http_429"):
            status = int(self.behaviour.fault[-3:])
            self.write(json_response(status, {"error": {"message": f"injected {status}"}}))
            return self._next_request()
        if self.behaviour.fault in ("retry_after", "not_streamed"):
            self.write(fault_answer(self.behaviour))
            return self._next_request()
        self.stream = stream_class(self, body, chat)
        self.behaviour.queue.admit(self.stream)
