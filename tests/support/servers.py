"""Real local servers for the tests: the reference server in its own process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

START_TIMEOUT_S = 30


@contextmanager
def reference_server(**options: object) -> Iterator[str]:
    """Start `python -m harness.reference_server` with the given options; yield its /v1 URL."""
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
