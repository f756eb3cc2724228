"""The capacity group's schema (conf/capacity/*.yaml): the search for the highest load
that meets a service-level objective (SLO), and how an SLO is written."""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.config.checks import ConfigError, require_positive

# An SLO target by name: a latency percentile, `{metric}_p{50,90,99}_ms`, or the error rate.
LATENCY_TARGET = re.compile(r"^(ttft|tpot|e2e|itl)_p(50|90|99)_ms$")
ERROR_RATE = "error_rate"
TARGET_EXAMPLES = ("ttft_p99_ms", "tpot_p99_ms", "e2e_p99_ms", ERROR_RATE)
SEARCH_LOADS = ("concurrency", "rate")


def target_metric(name: str) -> tuple[str, str | None]:
    """The level metric a target reads and its statistic: ("ttft_ms", "p99");
    ("error_rate", None) for the error rate."""
    if name == ERROR_RATE:
        return ERROR_RATE, None
    match = LATENCY_TARGET.match(name)
    if not match:
        raise ConfigError(
            f"capacity.slo names {name!r}; a target is one of {', '.join(TARGET_EXAMPLES)} "
            "(or another percentile: ttft|tpot|e2e|itl _p50|_p90|_p99 _ms)"
        )
    return f"{match.group(1)}_ms", f"p{match.group(2)}"


def parse_slo(text: str) -> dict[str, float]:
    """The SLO as written, "ttft_p99_ms=500,tpot_p99_ms=50", as {target: limit}."""
    targets: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, limit = part.partition("=")
        name = name.strip()
        target_metric(name)
        try:
            value = float(limit) if sep else None
        except ValueError:
            value = None
        if value is None or value < 0:
            raise ConfigError(f"capacity.slo: {part!r} needs a limit >= 0, e.g. {name}=500")
        if name == ERROR_RATE and value > 1:
            raise ConfigError(f"capacity.slo: error_rate={value:g} is a fraction, 0 to 1")
        if name in targets:
            raise ConfigError(f"capacity.slo names {name} twice")
        targets[name] = value
    return targets


@dataclass
class CapacityConfig:
    """The search runs when `slo` is set: on one running engine, probe loads by doubling
    from `start` (halving for rates, when `start` already misses) until a probe misses,
    then bisect to `resolution` (users, or requests/s; null: 1 user, or 5% of the highest
    rate that held). Each probe is an ordinary level of `requests_per_probe` requests
    (raised to load.min_requests_per_worker per worker): a p99 needs 100 samples."""

    slo: str = ""
    start: float = 1.0
    max_load: float = 256.0
    resolution: float | None = None
    requests_per_probe: int = 100

    @property
    def enabled(self) -> bool:
        return bool(self.slo.strip())

    def targets(self) -> dict[str, float]:
        return parse_slo(self.slo)

    def validate(self) -> None:
        if self.enabled and not self.targets():
            raise ConfigError("capacity.slo has no target, e.g. capacity.slo='ttft_p99_ms=500'")
        require_positive("capacity.start", self.start)
        require_positive("capacity.max_load", self.max_load)
        require_positive("capacity.resolution", self.resolution)
        require_positive("capacity.requests_per_probe", self.requests_per_probe)
        if self.max_load < self.start:
            raise ConfigError(
                f"capacity.max_load={self.max_load:g} is below capacity.start={self.start:g}"
            )
