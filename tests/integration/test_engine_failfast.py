"""Engines that cannot start on this machine fail within seconds, saying what is missing."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.engines import host
from tests.support.runs import only_run_dir, read_summary

REPO = Path(__file__).resolve().parents[2]
GPU_AND_DOCKER = host.gpu_problem() is None and host.docker_problem() is None


@pytest.mark.skipif(GPU_AND_DOCKER, reason="this machine can start the GPU engines")
@pytest.mark.parametrize(
    ("engine", "needs"),
    [
        (
            "vllm",
            "vllm needs an NVIDIA GPU and either Docker with the NVIDIA container toolkit or "
            "`vllm` on PATH; this machine has: ",
        ),
        (
            "ollama",
            "ollama needs either `ollama` on PATH, or Docker with the NVIDIA container toolkit "
            "and an NVIDIA GPU; this machine has: ",
        ),
    ],
)
def test_a_gpu_engine_fails_fast_where_it_cannot_start(
    engine: str, needs: str, tmp_path: Path
) -> None:
    if shutil.which(engine):
        pytest.skip(f"`{engine}` is on PATH here")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "harness.bench", f"engine={engine}", f"results={tmp_path}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed_s = time.monotonic() - started
    assert result.returncode == 1, result.stderr[-2000:]
    assert elapsed_s < 20
    assert needs in result.stderr
    missing = [p for p in (host.gpu_problem(), host.docker_problem()) if p]
    assert all(problem in result.stderr for problem in missing)
    assert f"no `{engine}` on PATH. Run `make bench` for the embedded CPU engine" in result.stderr
    summary = read_summary(only_run_dir(tmp_path))
    assert summary["status"] == "failed"
    assert summary["error"].startswith(needs)
