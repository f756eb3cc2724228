"""The search itself, apart from what a probe is: bracket by doubling (or halving, when
the first load already misses), then bisect until the bracket is no wider than the
resolution. Deterministic: the same verdicts give the same probes."""

from __future__ import annotations

from dataclasses import dataclass, field

# A rate search that misses at its start halves at most this many times.
MAX_HALVINGS = 6
# A rate's default resolution: this share of the highest rate that held.
RELATIVE_RESOLUTION = 0.05


@dataclass
class Search:
    """`integer`: loads are whole users (at least 1); else requests/s."""

    start: float
    max_load: float
    resolution: float | None = None
    integer: bool = True
    passed: float | None = None  # the highest load that held (below `failed`)
    failed: float | None = None  # the lowest load that missed
    probes: list[tuple[float, bool]] = field(default_factory=list)

    def record(self, load: float, held: bool) -> None:
        self.probes.append((load, held))
        if held and (self.failed is None or load < self.failed):
            self.passed = load if self.passed is None else max(self.passed, load)
        elif not held:
            self.failed = load if self.failed is None else min(self.failed, load)

    def width(self) -> float:
        """How narrow the bracket must get: the resolution, or its default."""
        if self.resolution is not None:
            return self.resolution
        return 1.0 if self.integer else RELATIVE_RESOLUTION * (self.passed or self.start)

    def next_load(self) -> float | None:
        """The next load to probe, or None when the search is over."""
        if not self.probes:
            return self._load(self.start)
        if self.failed is None:  # everything held so far: double, up to max_load
            assert self.passed is not None
            if self.passed >= self.max_load:
                return None
            return self._load(min(2 * self.passed, self.max_load))
        if self.passed is None:  # everything missed so far: halve, down to the floor
            lower = self._load(self.failed / 2)
            floor = 1.0 if self.integer else self.start / 2**MAX_HALVINGS
            return lower if lower < self.failed and lower >= floor else None
        if self.failed - self.passed <= self.width():
            return None
        middle = self._load((self.passed + self.failed) / 2)
        return middle if self.passed < middle < self.failed else None

    def _load(self, value: float) -> float:
        return float(int(value)) if self.integer else round(value, 4)

    @property
    def status(self) -> str:
        """found (bracketed to the resolution), at_max (max_load held), below_start
        (nothing held), or searching."""
        if self.next_load() is not None:
            return "searching"
        if self.passed is None:
            return "below_start"
        return "at_max" if self.failed is None else "found"
