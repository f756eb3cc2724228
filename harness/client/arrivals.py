"""When each request of an open-loop level is sent: seeded, reproducible schedules."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

from harness.constants import ARRIVALS


def arrival_offsets_s(count: int, rate_per_s: float, arrival: str, seed: int) -> list[float]:
    """Send times (seconds after the level starts) of `count` requests at `rate_per_s`."""
    return list(itertools.islice(iter_arrival_offsets(rate_per_s, arrival, seed), count))


def iter_arrival_offsets(rate_per_s: float, arrival: str, seed: int) -> Iterator[float]:
    """Send times (seconds after the level starts) at `rate_per_s`, made as they are read.
    Poisson: exponential gaps with mean 1/rate (a memoryless stream of independent users).
    Constant: one request every 1/rate seconds. The first request goes at 0 either way.
    """
    if arrival not in ARRIVALS:
        raise ValueError(f"arrival={arrival!r} is not one of {', '.join(ARRIVALS)}")
    if rate_per_s <= 0:
        raise ValueError(f"rate_per_s={rate_per_s!r} must be > 0")
    return _constant(rate_per_s) if arrival == "constant" else _poisson(rate_per_s, seed)


def _constant(rate_per_s: float) -> Iterator[float]:
    for index in itertools.count():
        yield index / rate_per_s


def _poisson(rate_per_s: float, seed: int) -> Iterator[float]:
    rng, now = random.Random(seed), 0.0
    while True:
        yield now
        now += rng.expovariate(rate_per_s)
