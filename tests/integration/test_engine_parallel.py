"""Server slots matter: at concurrency 4, four llama.cpp slots beat one (the embedded engine)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.runs import only_run_dir, read_summary

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.engine


def aggregate_tokens_per_s(results: Path, parallel: int) -> float:
    args = [
        sys.executable, "-m", "harness.bench", f"results={results}",
        f"engine.parallel={parallel}", "load.concurrency=[4]", "load.requests_per_level=12",
        "workload.max_tokens=64",
    ]  # fmt: skip
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_summary(only_run_dir(results))
    assert summary["run"]["engine_parallel"] == parallel
    (level,) = summary["levels"]
    assert level["status"] == "ok"
    return level["aggregate_output_tokens_per_s"]


def test_four_slots_serve_four_clients_faster_than_one(tmp_path: Path) -> None:
    one_slot = aggregate_tokens_per_s(tmp_path / "parallel1", parallel=1)
    four_slots = aggregate_tokens_per_s(tmp_path / "parallel4", parallel=4)
    # measured on 2 idle cores: about 45 tok/s with one slot, 75 with four
    assert four_slots > 1.3 * one_slot, (one_slot, four_slots)
