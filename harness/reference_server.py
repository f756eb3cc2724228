"""A reference OpenAI-compatible server that streams with exactly known timing.

Not an engine: a calibration instrument. Every response streams a role-only chunk at
once, then content events on an absolute schedule (first token at TTFT, then one event
every ITL, so delays never drift; `tokens_per_event` tokens each), a finish chunk with an
empty delta, a usage-only chunk and `[DONE]`. It keeps every prompt it was sent, reports
the words a prefix cache would have reused as `cached_tokens`, and serves at `GET /stats`
its timers' lateness and how many prompts repeated; POST /tokenize counts a
prompt's words as llama.cpp's endpoint counts tokens. With `slots` S it serves at most S
streams at once and the rest wait their turn (a server whose latency grows with load);
GET /metrics exports the streams running and waiting. Fault modes make it misbehave in one
defined way each, for the fault tests. Run it with
`python -m harness.reference_server --port 8000`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from harness.reference.behaviour import FAULTS, Behaviour
from harness.reference.connection import Connection
from harness.reference.transport import serve_sockets

__all__ = ["FAULTS", "Behaviour", "running", "running_process", "serve"]


async def serve(behaviour: Behaviour, host: str, port: int) -> None:
    """Serve until cancelled; print the base URL on one line once listening."""

    def listening(bound_port: int) -> None:
        print(f"listening on http://{host}:{bound_port}/v1", flush=True)

    await serve_sockets(lambda: Connection(behaviour), host, port, listening)


@contextmanager
def running_process(**options: object) -> Iterator[tuple[str, int]]:
    """Start the reference server in its own process with these options; yield its /v1
    URL and its pid."""
    args = [sys.executable, "-m", "harness.reference_server", "--port", "0"]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline() if process.stdout else ""
        if not line.startswith("listening on "):
            stderr = process.stderr.read() if process.stderr else ""
            raise RuntimeError(f"reference server did not start: {line!r} {stderr[-2000:]}")
        yield line.split()[-1], process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running(**options: object) -> Iterator[str]:
    """Start the reference server in its own process with these options; yield its /v1 URL."""
    with running_process(**options) as (url, _):
        yield url


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--itl-ms", type=float, default=10.0)
    parser.add_argument("--output-tokens", type=int, default=16)
    parser.add_argument("--tokens-per-event", type=int, default=1)
    parser.add_argument("--fault", choices=FAULTS, default="none")
    parser.add_argument("--fault-after-tokens", type=int, default=3)
    parser.add_argument("--model", default="reference")
    parser.add_argument("--api-key-env", help="require the key held in this variable")
    parser.add_argument(
        "--slots", type=int, default=0, help="serve at most this many streams at once (0: all)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    behaviour = Behaviour(
        ttft_ms=args.ttft_ms,
        itl_ms=args.itl_ms,
        output_tokens=args.output_tokens,
        tokens_per_event=args.tokens_per_event,
        fault=args.fault,
        fault_after_tokens=args.fault_after_tokens,
        model=args.model,
        api_key=os.environ.get(args.api_key_env) if args.api_key_env else None,
        slots=args.slots,
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
