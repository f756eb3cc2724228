"""Real local servers for the tests: the reference server in its own process."""

from __future__ import annotations

from harness.reference_server import running as reference_server

__all__ = ["reference_server"]
