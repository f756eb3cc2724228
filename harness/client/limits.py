"""The client's own limits: open files. A level the client cannot carry is refused before
it starts, so that the client's shortage is never recorded as the server's errors."""

from __future__ import annotations

import contextlib
import math
import resource

# Descriptors a client process holds beside its connections (its loop, its pipes, logs).
FILES_BESIDE_CONNECTIONS = 64


class ClientLimitError(RuntimeError):
    """The client cannot open the connections a level needs."""


def raise_open_files_limit() -> tuple[int, int]:
    """Raise the soft limit on open files to the hard one; return (soft, hard) after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        # refused: kept as it is, and the check before each level says what is short
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def check_open_files(connections: int, processes: int) -> None:
    """Refuse a level whose connections per client process exceed the open-files limit."""
    if connections <= 0:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = math.ceil(connections / max(1, processes)) + FILES_BESIDE_CONNECTIONS
    if soft != resource.RLIM_INFINITY and needed > soft:
        raise ClientLimitError(
            f"{connections} connections in {processes} client process(es) need about "
            f"{needed} open files each; this shell allows {soft} (hard limit {hard}): "
            f"raise it, e.g. `ulimit -n {max(needed * 2, 4096)}`, and run again"
        )
