"""A job's specs are made as they are read: a level of any size holds none of them."""

from __future__ import annotations

import pickle

import pytest

from harness.client.specs import UNBOUNDED, LazySpecs, session_units
from harness.config import ConfigError, WorkloadConfig
from harness.config.load import LoadConfig
from harness.workload import build_specs


def synthetic(**fields: object) -> WorkloadConfig:
    return WorkloadConfig(**{"name": "synthetic", "kind": "synthetic", **fields})  # type: ignore[arg-type]


def test_a_job_of_a_trillion_requests_builds_only_the_spec_it_reads() -> None:
    specs = build_specs(synthetic(), UNBOUNDED)
    assert isinstance(specs, LazySpecs) and len(specs) == UNBOUNDED
    far = specs[UNBOUNDED - 1]
    assert far.prompt.startswith(f"Request {UNBOUNDED - 1}:")
    assert specs[-1] == far


def test_a_view_of_the_specs_reads_the_job_s_own_specs() -> None:
    specs = build_specs(synthetic(seed=5), 1000)
    view = specs[200:300]
    assert isinstance(view, LazySpecs) and len(view) == 100
    assert view[0] == specs[200] and view[99] == specs[299]
    assert list(view[10:12]) == [specs[210], specs[211]]
    with pytest.raises(IndexError):
        view[100]


def test_a_spec_is_the_same_however_often_it_is_made() -> None:
    specs = build_specs(synthetic(seed=2), 50)
    again = pickle.loads(pickle.dumps(specs))  # as a client process receives them
    assert [s.prompt for s in specs] == [s.prompt for s in again]
    assert len({s.prompt for s in specs}) == 50


def test_sessions_of_a_lazy_job_are_ranges_made_when_read() -> None:
    cfg = WorkloadConfig(kind="multi_turn", turns=3, api="chat")
    units = session_units(build_specs(cfg, 3 * 10**9))
    assert units is not None and len(units) == 10**9
    assert units[10**9 - 1] == range(3 * 10**9 - 3, 3 * 10**9)


def test_a_level_without_a_count_needs_a_duration() -> None:
    with pytest.raises(ConfigError, match="load.requests_per_level=null needs load.max_duration_s"):
        LoadConfig(requests_per_level=None).validate()
    LoadConfig(requests_per_level=None, max_duration_s=3).validate()
