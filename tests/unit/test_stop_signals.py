"""SIGINT and SIGTERM stop a running level, whichever event loop runs it."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest

from harness.client.processes import run_until_signal


def _raise_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


@pytest.fixture
def bench_handlers() -> Iterator[None]:
    """The handlers `harness.bench` installs: SIGTERM becomes KeyboardInterrupt."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


async def _busy_stream(cleaned_up: list[str], delivered: list[int]) -> str:
    """A server that streams without pause and a client reading it, so that the signal
    arrives while transport callbacks run (where a raising handler would be swallowed)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                writer.write(b"x" * 4096)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, os.kill, os.getpid(), signal.SIGTERM)
    try:
        while True:
            delivered.append(len(await reader.read(65536)))
    finally:
        writer.close()
        server.close()
        cleaned_up.append("closed")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_cancels_the_level_and_raises_keyboard_interrupt(bench_handlers, sig) -> None:
    cleaned_up: list[str] = []

    async def level() -> str:
        asyncio.get_running_loop().call_later(0.1, os.kill, os.getpid(), sig)
        try:
            await asyncio.sleep(30)
        finally:
            cleaned_up.append("closed")
        return "finished"

    with pytest.raises(KeyboardInterrupt, match=signal.Signals(sig).name):
        run_until_signal(level())
    assert cleaned_up == ["closed"]
    assert signal.getsignal(signal.SIGTERM) is _raise_interrupt
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_while_data_streams_in_is_never_lost(bench_handlers) -> None:
    for _ in range(5):
        cleaned_up: list[str] = []
        delivered: list[int] = []
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            run_until_signal(_busy_stream(cleaned_up, delivered))
        assert cleaned_up == ["closed"]
        assert sum(delivered) > 0


def test_without_a_signal_the_result_comes_back(bench_handlers) -> None:
    async def level() -> int:
        # While the loop runs, no Python handler raises mid-callback: aiohttp's
        # data_received turns any exception there into a failed request, so a stop
        # raised there would be lost and the run would go on.
        assert signal.getsignal(signal.SIGTERM) is not _raise_interrupt
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        await asyncio.sleep(0.01)
        return 42

    assert run_until_signal(level()) == 42
    assert signal.getsignal(signal.SIGTERM) is _raise_interrupt


def test_an_ignored_signal_stays_ignored(bench_handlers) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in the client child processes

    async def level() -> str:
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(0.2)
        return "finished"

    assert run_until_signal(level()) == "finished"
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
