"""When each request of an open-loop level is sent: seeded, reproducible schedules."""

from __future__ import annotations

import random

from harness.constants import ARRIVALS


def arrival_offsets_s(count: int, rate_per_s: float, arrival: str, seed: int) -> list[float]:
    """Send times (seconds after the level starts) of `count` requests at `rate_per_s`.

    Poisson: exponential gaps with mean 1/rate (a memoryless stream of independent users).
    Constant: one request every 1/rate seconds. The first request goes at 0 either way.
    """
    if arrival not in ARRIVALS:
        raise ValueError(f"arrival={arrival!r} is not one of {', '.join(ARRIVALS)}")
    if rate_per_s <= 0:
        raise ValueError(f"rate_per_s={rate_per_s!r} must be > 0")
    if arrival == "constant":
        return [index / rate_per_s for index in range(count)]
    rng = random.Random(seed)
    offsets, now = [], 0.0
    for _ in range(count):
        offsets.append(now)
        now += rng.expovariate(rate_per_s)
    return offsets
