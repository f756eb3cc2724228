"""A file written by appending whole lines only: a line the disk takes in part is cut off
again, so a full disk leaves every file of a run ending in a whole line."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

SPACE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class StoreFull(OSError):
    """The results disk refused a write (full, or over quota): the run stops there."""


class AppendFile:
    """Lines gathered by `write` go to disk together at `flush`. With `quiet`, a full disk
    is logged once and the file takes nothing more; without, StoreFull is raised."""

    def __init__(self, path: Path, quiet: bool = False) -> None:
        self.path, self.quiet = path, quiet
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._pending: list[str] = []
        self.full: OSError | None = None
        self.closed = False

    def write(self, text: str) -> int:
        if self.full is None:
            self._pending.append(text)
        return len(text)

    def flush(self) -> None:
        if not self._pending or self.full is not None or self.closed:
            return
        data = "".join(self._pending).encode()
        self._pending.clear()
        size = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            while data:
                data = data[os.write(self._fd, data) :]
        except OSError as exc:
            os.ftruncate(self._fd, size)  # needs no space: the file ends in a whole line again
            if exc.errno not in SPACE_ERRORS:
                raise
            self.full = exc
            if not self.quiet:
                raise StoreFull(exc.errno, f"{exc.strerror}: {self.path}") from exc
            log.warning("%s: %s; nothing more is written to it", self.path.name, exc.strerror)

    def close(self) -> None:
        if self.closed:
            return
        try:
            self.flush()
        finally:
            self.closed = True
            os.close(self._fd)
