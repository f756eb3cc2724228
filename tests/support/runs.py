"""Running `make bench` the way a user does, and finding what it wrote."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def make_bench(
    results: Path, timeout_s: float = 600, target: str = "bench", **variables: str
) -> subprocess.CompletedProcess:
    """`make bench VAR=value ...` (or another target) with RESULTS pointing at `results`."""
    args = ["make", "--no-print-directory", target, f"RESULTS={results}"]
    args += [f"{key}={value}" for key, value in variables.items()]
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout_s)


def only_run_dir(results: Path) -> Path:
    summaries = list(results.rglob("summary.json"))
    assert len(summaries) == 1, summaries
    return summaries[0].parent


def read_summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())
