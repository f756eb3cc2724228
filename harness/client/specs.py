"""A job's request specs made as they are asked for: spec i is built from the workload,
the counter and i alone, so a level of ten million requests holds none of them in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

from harness.client.endpoint import RequestSpec

# Requests of a level bounded only by its time (load.requests_per_level=null): more than
# any level sends, and few enough that every request id stays an ordinary integer.
UNBOUNDED = 10**12


class LazySpecs(Sequence[RequestSpec]):
    """Specs `start` to `stop` of a job, each made by `make(index)` when read; slicing
    gives a view, never a list. `turns`: requests per unit (a multi-turn session)."""

    def __init__(
        self, make: Callable[[int], RequestSpec], stop: int, start: int = 0, turns: int = 1
    ) -> None:
        self.make, self.start, self.stop, self.turns = make, start, stop, turns

    def __len__(self) -> int:
        return self.stop - self.start

    @overload
    def __getitem__(self, index: int) -> RequestSpec: ...

    @overload
    def __getitem__(self, index: slice) -> LazySpecs: ...

    def __getitem__(self, index: int | slice) -> RequestSpec | LazySpecs:
        if isinstance(index, slice):
            first, last, step = index.indices(len(self))
            if step != 1:
                raise ValueError("a view of specs takes every spec (step 1)")
            last = max(first, last)
            return LazySpecs(self.make, self.start + last, self.start + first, self.turns)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"spec {index} of {len(self)}")
        return self.make(self.start + index)

    def __iter__(self) -> Iterator[RequestSpec]:
        return (self.make(index) for index in range(self.start, self.stop))

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, Sequence) or len(other) != len(self):
            return False
        return all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LazySpecs({self.start}..{self.stop})"


class SessionUnits(Sequence[range]):
    """The request indices of each session of `turns` requests, made when read."""

    def __init__(self, count: int, turns: int) -> None:
        self.count, self.turns = count, turns

    def __len__(self) -> int:
        return self.count // self.turns

    def __getitem__(self, unit: int) -> range:  # type: ignore[override]
        if not 0 <= unit < len(self):
            raise IndexError(f"session {unit} of {len(self)}")
        return range(unit * self.turns, (unit + 1) * self.turns)


def session_units(specs: Sequence[RequestSpec]) -> Sequence[range] | None:
    """The request indices of each multi-turn session, in order; None: no sessions."""
    if isinstance(specs, LazySpecs):
        return SessionUnits(len(specs), specs.turns) if specs.turns > 1 else None
    if all(spec.session is None for spec in specs):
        return None
    units, start = [], 0
    for index in range(1, len(specs) + 1):
        if index == len(specs) or specs[index].session != specs[start].session:
            units.append(range(start, index))
            start = index
    return units
