"""Server slots matter: at concurrency 4, four llama.cpp slots beat one (the embedded engine)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.runs import only_run_dir, read_summary

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.engine


def level_at_four(results: Path, parallel: int) -> dict:
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
    return level


def test_four_slots_serve_four_clients_faster_than_one(tmp_path: Path) -> None:
    one = level_at_four(tmp_path / "parallel1", parallel=1)
    four = level_at_four(tmp_path / "parallel4", parallel=4)
    figures = {
        "aggregate tok/s (1 slot, 4 slots)": (
            one["aggregate_output_tokens_per_s"],
            four["aggregate_output_tokens_per_s"],
        ),
        "TTFT p50 ms (1 slot, 4 slots)": (one["ttft_ms"]["p50"], four["ttft_ms"]["p50"]),
    }
    print(figures)
    # Measured on 2 cores: 45 -> 75 tok/s on a busy VM, 82-86 -> 99-120 on an idle one; the
    # margin leaves room for a loaded CI machine. With one slot three of four requests
    # wait for the slot, so their first token comes seconds later (4.3 s vs 0.17 s).
    assert four["aggregate_output_tokens_per_s"] > 1.1 * one["aggregate_output_tokens_per_s"], (
        figures
    )
    assert four["ttft_ms"]["p50"] < 0.5 * one["ttft_ms"]["p50"], figures
