"""How busy the client itself was: event-loop lag and CPU use, sampled during a level.

A client that runs out of CPU or whose event loop falls behind reads chunks late and
inflates the latencies it reports. Every level records these figures and raises a flag
when they suggest the numbers were distorted.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from harness.metrics import describe
from harness.metrics.request import percentile

LAG_PERIOD_S = 0.02
# Thresholds for the flags: above these the client's own delays reach the size of the
# errors `make calibrate` measures as acceptable (see README, "How far to trust the client").
LAG_P99_FLAG_MS = 5.0
CPU_FLAG_FRACTION = 0.85
LATE_SEND_P99_FLAG_MS = 10.0


@dataclass
class ClientLoad:
    """What one client process measured about itself during one level."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    lag_ms: list[float] = field(default_factory=list)
    late_send_ms: list[float] = field(default_factory=list)


class LoopMonitor:
    """Samples event-loop lag every LAG_PERIOD_S and process CPU time from start to stop."""

    def __init__(self) -> None:
        self.load = ClientLoad()
        self._task: asyncio.Task[None] | None = None
        self._wall0 = 0.0
        self._cpu0 = 0.0

    def start(self) -> None:
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()
        self._task = asyncio.get_running_loop().create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            expected = time.perf_counter() + LAG_PERIOD_S
            await asyncio.sleep(LAG_PERIOD_S)
            self.load.lag_ms.append(max(0.0, (time.perf_counter() - expected) * 1000.0))

    async def stop(self) -> ClientLoad:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.load.wall_s = time.perf_counter() - self._wall0
        self.load.cpu_s = time.process_time() - self._cpu0
        return self.load


def summarize_client(loads: list[ClientLoad]) -> dict[str, Any]:
    """One level's client figures over all its processes, with the distortion flags."""
    lag = [v for load in loads for v in load.lag_ms]
    late = [v for load in loads for v in load.late_send_ms]
    fractions = [load.cpu_s / load.wall_s for load in loads if load.wall_s > 0]
    summary: dict[str, Any] = {
        "processes": len(loads),
        "cpu_s": sum(load.cpu_s for load in loads),
        "cpu_fraction_max": max(fractions) if fractions else None,
        "loop_lag_ms": describe(lag),
        "late_send_ms": describe(late),
    }
    # flags read the p99 whatever the sample size (a reported p99 needs 100 samples)
    flags = []
    if summary["cpu_fraction_max"] is not None and summary["cpu_fraction_max"] > CPU_FLAG_FRACTION:
        flags.append("client_cpu_saturated")
    if lag and (percentile(lag, 99) or 0.0) > LAG_P99_FLAG_MS:
        flags.append("client_loop_lag")
    if late and (percentile(late, 99) or 0.0) > LATE_SEND_P99_FLAG_MS:
        flags.append("client_late_sends")
    summary["flags"] = flags
    return summary
