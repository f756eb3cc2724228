"""Each engine under Docker Compose on a real NVIDIA GPU, with a small model.

Skipped where there is no NVIDIA driver or no Docker engine with Compose. Ollama and vLLM
download their model (and every engine its image) on first use, so the first run needs
the network and takes minutes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.engines import host
from tests.support.runs import only_run_dir, read_summary

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(host.gpu_problem() is not None, reason=str(host.gpu_problem())),
    pytest.mark.skipif(host.docker_problem() is not None, reason=str(host.docker_problem())),
]

SMALL_MODELS = {
    "llamacpp": ["model=gemma3-270m"],  # the packaged GGUF: nothing to download
    "ollama": ["model.name=qwen2.5-0.5b", "model.ollama_tag=qwen2.5:0.5b"],
    "vllm": ["model.name=qwen2.5-0.5b", "model.hf_repo=Qwen/Qwen2.5-0.5B-Instruct"],
}


@pytest.mark.parametrize("engine", SMALL_MODELS)
def test_engine_runs_two_levels_under_compose(engine: str, tmp_path: Path) -> None:
    args = [
        sys.executable, "-m", "harness.bench", f"results={tmp_path}", f"engine={engine}",
        "engine.launcher=compose", "engine.ctx_size=2048", "engine.parallel=4",
        "telemetry.gpu=on", "load.concurrency=[1,4]", "load.requests_per_level=8",
        "workload.max_tokens=16", *SMALL_MODELS[engine],
    ]  # fmt: skip
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path)
    summary = read_summary(run_dir)
    assert summary["status"] == "complete"
    for level in summary["levels"]:
        assert level["status"] == "ok"
        assert level["peak_memory_kind"] == "gpu"
        assert level["peak_memory_devices"]["devices"]  # and which devices, and why
        assert level["peak_memory_above_baseline_mib"] is not None  # baseline taken first
        assert level["engine_metrics"]["after"]
    engine_info = json.loads((run_dir / "environment.json").read_text())["engine"]
    assert engine_info["version"]["launcher"] == "compose"
    assert "@sha256:" in engine_info["version"]["image_digest"]
    assert (run_dir / "engine.log").read_text().strip()
