"""The reference server's own socket transport: it reads with recvmsg, so that every read
carries the kernel's receive time of its bytes.

That stamp is the truth a calibration needs: the instant a request reached the server, apart
from the time the server then took to get to it (its event loop busy, or its process waiting
for a core), which is the server's, not the client's. The kernel stamps on the realtime
clock; it is turned into the monotonic one the client shares by the two clocks' offset, read
at each read. Where the kernel does not stamp (SO_TIMESTAMPNS is Linux's), reads carry none.
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

# Python's socket module does not name it; 35 is Linux's generic value (asm-generic), used
# by these architectures (alpha, mips, parisc and sparc number it otherwise)
_GENERIC_ABI = ("x86_64", "i386", "i686", "aarch64", "arm64", "armv7l", "riscv64", "ppc64le")
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", None) or (
    35 if sys.platform == "linux" and platform.machine() in _GENERIC_ABI else None
)
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
_TIMESPEC = struct.Struct("qq")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0
READ_SIZE = 256 * 1024


def stamp_reads(sock: socket.socket) -> bool:
    """Ask the kernel to stamp each received segment; False where it cannot."""
    if SO_TIMESTAMPNS is None:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def kernel_arrival(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The kernel's receive stamp of a read, on the monotonic clock (perf_counter's)."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = _TIMESPEC.unpack(data[:16])
            offset_ns = time.time_ns() - time.perf_counter_ns()
            return (seconds * 1_000_000_000 + nanoseconds - offset_ns) / 1e9
    return None


class SocketTransport:
    """A non-blocking TCP socket driven by its event loop's reader and writer callbacks:
    `write` sends what the socket takes and keeps the rest until it is writable;
    `arrived_mono_s` is the kernel's receive stamp of the last read (None without one)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: Any) -> None:
        self.loop, self.sock, self.protocol = loop, sock, protocol
        self.fd = sock.fileno()
        self.stamped = stamp_reads(sock)
        self.pending = bytearray()
        self.closing = False
        self.arrived_mono_s: float | None = None
        protocol.connection_made(self)
        loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            if self.stamped:
                data, ancillary, _, _ = self.sock.recvmsg(READ_SIZE, _ANCILLARY)
                self.arrived_mono_s = kernel_arrival(ancillary)
            else:
                data = self.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        if not data:
            self._lost(None)
            return
        self.protocol.data_received(data)

    def write(self, data: bytes) -> None:
        if self.closing:
            return
        if not self.pending:
            try:
                sent = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._lost(exc)
                return
            if sent == len(data):
                return
            data = data[sent:]
            self.loop.add_writer(self.fd, self._writable)
        self.pending += data

    def _writable(self) -> None:
        try:
            sent = self.sock.send(self.pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        del self.pending[:sent]
        if not self.pending:
            self.loop.remove_writer(self.fd)

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self._lost(None)

    def _lost(self, exc: Exception | None) -> None:
        if self.closing:
            return
        self.closing = True
        self.loop.remove_reader(self.fd)
        self.loop.remove_writer(self.fd)
        with contextlib.suppress(OSError):
            self.sock.close()
        self.protocol.connection_lost(exc)


async def serve_sockets(
    make_protocol: Callable[[], Any], host: str, port: int, on_listening: Callable[[int], None]
) -> None:
    """Accept connections on host:port, each driven by a SocketTransport and a protocol from
    `make_protocol`, until cancelled; `on_listening` gets the bound port."""
    loop = asyncio.get_running_loop()
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    listener = socket.create_server((host, port), family=family, backlog=4096)
    listener.setblocking(False)
    # set on the listener too, so that a request sent right after the connect, before the
    # server accepted it, is stamped: accepted sockets inherit it
    stamp_reads(listener)

    def accept() -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # e.g. out of descriptors: the client sees its connect fail
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            SocketTransport(loop, sock, make_protocol())  # held by the loop's reader

    loop.add_reader(listener.fileno(), accept)
    on_listening(listener.getsockname()[1])
    try:
        await asyncio.Event().wait()
    finally:
        loop.remove_reader(listener.fileno())
        listener.close()
