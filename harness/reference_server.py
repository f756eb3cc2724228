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
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

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

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise ValueError(f"fault={self.fault!r} is not one of {', '.join(FAULTS)}")
        if self.ttft_ms < 0 or self.itl_ms < 0:
            raise ValueError("ttft_ms and itl_ms must be >= 0")


def _chunk(model: str, created: int, choices: list[dict[str, Any]], **extra: Any) -> bytes:
    body = {
        "id": "cmpl-reference",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
        **extra,
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


async def _sleep_until(deadline: float) -> None:
    delay = deadline - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


def _delta(chat: bool, text: str) -> dict[str, Any]:
    return {"delta": {"content": text}} if chat else {"text": text}


async def _stream(request: web.Request, behaviour: Behaviour, chat: bool) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        body = await request.json()
    except json.JSONDecodeError:
        return web.json_response({"error": {"message": "body is not JSON"}}, status=400)
    if behaviour.fault in ("http_500", "http_429"):
        status = int(behaviour.fault[-3:])
        return web.json_response({"error": {"message": f"injected {status}"}}, status=status)
    tokens = int(body.get("max_tokens") or behaviour.output_tokens)
    prompt_tokens = len(json.dumps(body.get("messages") or body.get("prompt") or "").split())
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    created = int(time.time())
    model = behaviour.model
    if chat:
        role = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        await response.write(_chunk(model, created, [role]))
    for index in range(tokens):
        await _sleep_until(started + (behaviour.ttft_ms + index * behaviour.itl_ms) / 1000.0)
        if index == behaviour.fault_after_tokens:
            if behaviour.fault == "cut_stream":
                request.transport.close()
                return response
            if behaviour.fault == "malformed":
                await response.write(b"data: {not json\n\n")
            if behaviour.fault == "error_event":
                await response.write(b'data: {"error": {"message": "injected failure"}}\n\n')
            if behaviour.fault == "stall":
                await asyncio.sleep(3600)
        choice = {"index": 0, **_delta(chat, f"t{index} "), "finish_reason": None}
        await response.write(_chunk(model, created, [choice]))
    if behaviour.fault == "no_done":
        await response.write_eof()
        return response
    finish = {"index": 0, **_delta(chat, ""), "finish_reason": "length"}
    await response.write(_chunk(model, created, [finish]))
    if behaviour.fault != "no_usage":
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": tokens,
            "total_tokens": prompt_tokens + tokens,
        }
        await response.write(_chunk(model, created, [], usage=usage))
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


def make_app(behaviour: Behaviour) -> web.Application:
    """The aiohttp application: /health, /v1/models and the two streaming endpoints."""

    async def chat(request: web.Request) -> web.StreamResponse:
        return await _stream(request, behaviour, chat=True)

    async def completions(request: web.Request) -> web.StreamResponse:
        return await _stream(request, behaviour, chat=False)

    async def models(_: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": behaviour.model, "object": "model"}]}
        )

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    return app


async def serve(behaviour: Behaviour, host: str, port: int) -> None:
    """Serve until cancelled; print the base URL on one line once listening."""
    runner = web.AppRunner(make_app(behaviour), access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096, reuse_address=True)
    await site.start()
    bound_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"listening on http://{host}:{bound_port}/v1", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


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
