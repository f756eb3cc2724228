"""The embedded llama.cpp server applies flash attention and the KV cache type it is given."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.engines import create_engine
from harness.engines.base import EngineError, http_get
from tests.unit.test_engines_compose_file import compose_bench

pytestmark = pytest.mark.engine


def _started(tmp_path: Path, *overrides: str):
    bench = compose_bench("engine.parallel=1", "engine.ctx_size=512", *overrides)
    engine = create_engine(bench.engine, bench.model, tmp_path)
    engine.provision()
    engine.start()
    return engine


def test_a_quantized_kv_cache_with_flash_attention_serves(tmp_path: Path) -> None:
    engine = _started(tmp_path, "engine.kv_cache_type=q8_0", "engine.flash_attn=on")
    try:
        engine.wait_ready()
        assert http_get(f"{engine.root_url}/health")[0] == 200
        requested = engine.requested_settings()
        assert (requested["kv_cache_type"], requested["flash_attn"]) == ("q8_0", "on")
        assert engine.settings()["total_slots"] == 1
    finally:
        engine.stop()


def test_the_knobs_reach_the_server_which_refuses_a_quantized_v_cache_without_it(
    tmp_path: Path,
) -> None:
    """llama.cpp needs flash attention for a quantized V cache: its refusal proves both
    settings arrived (were either dropped, the server would start with f16 defaults)."""
    engine = _started(tmp_path, "engine.kv_cache_type=q8_0", "engine.flash_attn=off")
    try:
        with pytest.raises(EngineError, match="quantized V cache requires flash_attn"):
            engine.wait_ready()
    finally:
        engine.stop()
