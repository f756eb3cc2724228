"""At most S streams of the reference server served at once; the rest wait their turn.

A server whose latency grows with load, for the capacity search: a request that finds
every slot busy waits (in arrival order) until one frees, and its first token comes one
TTFT after it got a slot, so its TTFT from the client is its wait plus the TTFT.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol


class Served(Protocol):
    def begin(self) -> None: ...


class Slots:
    """`size` slots (0: no limit). `admit` serves a stream now or queues it; `release`
    frees its slot (or takes it out of the queue) and serves the next one waiting."""

    def __init__(self, size: int = 0) -> None:
        self.size = size
        self.serving: set[Served] = set()
        self.waiting: deque[Served] = deque()
        self.served = 0
        self.queued = 0
        self.max_waiting = 0

    def admit(self, stream: Served) -> None:
        if self.size and len(self.serving) >= self.size:
            self.waiting.append(stream)
            self.queued += 1
            self.max_waiting = max(self.max_waiting, len(self.waiting))
            return
        self._serve(stream)

    def release(self, stream: Served) -> None:
        """The stream ended or its connection went away; idempotent."""
        if stream in self.serving:
            self.serving.discard(stream)
            self.served += 1
        elif stream in self.waiting:
            self.waiting.remove(stream)
        while self.waiting and len(self.serving) < self.size:
            self._serve(self.waiting.popleft())

    def _serve(self, stream: Served) -> None:
        self.serving.add(stream)
        stream.begin()

    def stats(self) -> dict[str, int]:
        return {
            "size": self.size,
            "running": len(self.serving),
            "waiting": len(self.waiting),
            "served": self.served,
            "queued": self.queued,
            "max_waiting": self.max_waiting,
        }

    def prometheus(self) -> str:
        """GET /metrics: streams served now and waiting, as an engine exports them."""
        lines = [
            "# TYPE reference:requests_running gauge",
            f"reference:requests_running {len(self.serving)}",
            "# TYPE reference:requests_waiting gauge",
            f"reference:requests_waiting {len(self.waiting)}",
            "# TYPE reference:requests_served_total counter",
            f"reference:requests_served_total {self.served}",
        ]
        if self.size:
            lines += [f"reference:slots_total {self.size}"]
        return "\n".join(lines) + "\n"
