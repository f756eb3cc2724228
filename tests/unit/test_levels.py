"""The level runner's own arithmetic: an engine's prefix-cache counters over a level."""

from __future__ import annotations

import pytest

from harness.levels import engine_prefix_cache


def test_the_engines_prefix_cache_hit_rate_is_the_change_over_the_level() -> None:
    before = {
        'vllm:prefix_cache_queries_total{engine="0",model_name="m"}': 1000.0,
        'vllm:prefix_cache_hits_total{engine="0",model_name="m"}': 100.0,
    }
    after = {
        'vllm:prefix_cache_queries_total{engine="0",model_name="m"}': 3000.0,
        'vllm:prefix_cache_hits_total{engine="0",model_name="m"}': 600.0,
    }
    level = engine_prefix_cache(before, after)
    assert level["engine_prefix_cache_queries"] == 2000.0
    assert level["engine_prefix_cache_hit_rate"] == pytest.approx(0.25)


def test_an_engine_without_the_counters_reports_no_rate() -> None:
    level = engine_prefix_cache({}, {"llamacpp:tokens_predicted_total": 5.0})
    assert level == {"engine_prefix_cache_queries": None, "engine_prefix_cache_hit_rate": None}
