"""The load group's schema (conf/load/*.yaml): the levels of a job and their bounds."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.config.checks import ConfigError, require_choice, require_positive
from harness.constants import ARRIVALS, LOAD_MODES


@dataclass
class LoadConfig:
    """How hard to push, level by level, and the bounds of each level.

    mode=concurrency: closed loop, one level per `concurrency` entry (N workers).
    mode=rate: open loop, one level per `rate` entry (requests/s, `arrival` schedule),
    at most `max_concurrency` in flight (0: no cap).
    mode=burst: one level per `concurrency` entry, fired in waves of N at once.
    mode=trace: open loop at a trace's own send times (workload.kind=trace), one level per
    `speedup` entry (2: twice as fast), at most `max_concurrency` in flight (0: no cap).
    A level ends after `requests_per_level` requests or `max_duration_s`, whichever first;
    `requests_per_level` null: a level bounded by its time only.
    """

    mode: str = "concurrency"
    concurrency: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    rate: list[float] = field(default_factory=list)
    speedup: list[float] = field(default_factory=lambda: [1.0])
    arrival: str = "poisson"
    max_concurrency: int = 0
    requests_per_level: int | None = 16
    # Each closed-loop level sends at least this many requests per worker, so high levels
    # are not measured on a single wave.
    min_requests_per_worker: int = 4
    max_duration_s: float | None = None
    warmup_requests: int = 2
    request_timeout_s: float = 300.0
    connect_timeout_s: float = 10.0
    # A request that receives no byte for this long fails as `idle` (a stalled stream),
    # long before request_timeout_s (null: only the whole-request bound).
    idle_timeout_s: float | None = 60.0
    # Workers start spread evenly over this many seconds, so that requests of identical
    # length do not move in lock-step waves (0: all workers start at once).
    ramp_up_s: float = 0.0
    # Client processes per level; 0: one, or more when the streams would saturate a core.
    client_processes: int = 0
    # Targets for goodput (share of requests meeting both); null: goodput not computed.
    goodput_ttft_ms: float | None = None
    goodput_tpot_ms: float | None = None

    def validate(self) -> None:
        require_choice("load.mode", self.mode, LOAD_MODES)
        require_choice("load.arrival", self.arrival, ARRIVALS)
        if self.mode == "rate":
            if not self.rate:
                raise ConfigError(
                    "load.rate is empty; mode=rate needs request rates, e.g. load.rate=[1,2,4]"
                )
            for rate in self.rate:
                if rate <= 0:
                    raise ConfigError(f"load.rate contains {rate!r}; every rate must be > 0")
        elif self.mode == "trace":
            if not self.speedup or any(factor <= 0 for factor in self.speedup):
                raise ConfigError(
                    f"load.speedup={self.speedup!r} is not valid; give factors > 0, e.g. [1,2]"
                )
        else:
            if not self.concurrency:
                raise ConfigError("load.concurrency is empty; give at least one level, e.g. [1,4]")
            for level in self.concurrency:
                if not isinstance(level, int) or level < 1:
                    raise ConfigError(
                        f"load.concurrency contains {level!r}; every level must be an integer >= 1"
                    )
        require_positive("load.max_concurrency", self.max_concurrency, allow_zero=True)
        require_positive("load.requests_per_level", self.requests_per_level)
        if self.requests_per_level is None and self.max_duration_s is None:
            raise ConfigError(
                "load.requests_per_level=null needs load.max_duration_s (a level bounded by "
                "its time); give a count, e.g. load.requests_per_level=16, or a duration"
            )
        require_positive("load.min_requests_per_worker", self.min_requests_per_worker, True)
        require_positive("load.max_duration_s", self.max_duration_s)
        require_positive("load.warmup_requests", self.warmup_requests, allow_zero=True)
        require_positive("load.request_timeout_s", self.request_timeout_s)
        require_positive("load.connect_timeout_s", self.connect_timeout_s)
        require_positive("load.idle_timeout_s", self.idle_timeout_s)
        require_positive("load.ramp_up_s", self.ramp_up_s, allow_zero=True)
        require_positive("load.client_processes", self.client_processes, allow_zero=True)
        require_positive("load.goodput_ttft_ms", self.goodput_ttft_ms)
        require_positive("load.goodput_tpot_ms", self.goodput_tpot_ms)

    def levels(self) -> list[tuple[int, float | None]]:
        """(concurrency, rate) of every level, in order; for a trace, (cap, speed-up)."""
        if self.mode == "rate":
            return [(self.max_concurrency, float(rate)) for rate in self.rate]
        if self.mode == "trace":
            return [(self.max_concurrency, float(factor)) for factor in self.speedup]
        return [(level, None) for level in self.concurrency]

    def requests_for_level(self, concurrency: int) -> int | None:
        """Requests sent at one level: the configured count, raised to cover every worker
        (None: as many as its time allows)."""
        if self.mode in ("rate", "trace") or self.requests_per_level is None:
            return self.requests_per_level
        return max(self.requests_per_level, concurrency * self.min_requests_per_worker)
