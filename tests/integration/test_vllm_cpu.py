"""vLLM for real: its CPU build (`make setup-vllm`), started by the harness, on the packaged
model converted from the GGUF that llama.cpp serves.

`make bench ENGINE=vllm` on this machine (no GPU) runs engine=vllm-cpu. The run must carry
the engine's version, its KV capacity, its /metrics before and after each level with the
counters moving by what the level sent, its memory as the RSS of its process tree beside the
prediction, and leave no vLLM process behind. A second start (`make up`) answers a greedy
prompt as llama.cpp does on the same weights.

CI installs the CPU build (.ci/run); elsewhere these tests are skipped until
`make setup-vllm` has run. About 6 minutes on 2 cores: two starts of ~100 s, one conversion
of the GGUF (~90 s, cached afterwards), two small levels.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from harness.engines.vllm_cpu import default_venv
from tests.support.runs import make_bench, only_run_dir, read_summary

pytestmark = [pytest.mark.engine, pytest.mark.vllm_cpu]

PYTHON = default_venv() / "bin" / "python"
if not PYTHON.is_file():
    if os.environ.get("CI"):
        raise RuntimeError(f"CI installs vLLM's CPU build (make setup-vllm); {PYTHON} is missing")
    pytest.skip(
        f"vLLM's CPU build is not installed ({PYTHON}): make setup-vllm", allow_module_level=True
    )

LEVELS = {1: 4, 2: 8}  # REQUESTS=4, raised to 4 per worker at concurrency 2
PACKAGED_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
MAX_TOKENS = 16


def vllm_processes() -> list[str]:
    """Processes of vLLM's CPU build still running: its API server, engine core, workers.
    A zombie is not one: it holds no memory, and whoever inherited it reaps it."""
    found = []
    for process in psutil.process_iter(["pid", "name", "cmdline", "status"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        text = " ".join(process.info["cmdline"] or []) + " " + (process.info["name"] or "")
        if str(default_venv()) in text or "VLLM::" in text:
            found.append(f"{process.info['pid']} {text[:120]}")
    return found


def counter(metrics: dict[str, float], name: str) -> float:
    """The sum of one vLLM series over its labels."""
    return sum(v for k, v in metrics.items() if k.partition("{")[0] == name)


@pytest.fixture(scope="module")
def vllm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert not vllm_processes(), vllm_processes()
    results = tmp_path_factory.mktemp("results")
    result = make_bench(
        results, timeout_s=1200, ENGINE="vllm", CONCURRENCY="1,2", REQUESTS="4",
        MAX_TOKENS=str(MAX_TOKENS),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return only_run_dir(results)


def test_levels_run_on_vllm_cpu(vllm_run: Path) -> None:
    summary = read_summary(vllm_run)
    assert summary["status"] == "complete"
    assert summary["run"]["engine"] == "vllm-cpu"
    for level in summary["levels"]:
        sent = LEVELS[level["concurrency"]]
        assert (level["requests_ok"], level["requests_failed"]) == (sent, 0)
        assert level["reached_max_tokens_share"] == 1.0
        assert level["output_tokens_total"] == sent * MAX_TOKENS
        assert level["ttft_ms"]["p50"] > 0


def test_version_and_kv_capacity_are_recorded(vllm_run: Path) -> None:
    engine = json.loads((vllm_run / "environment.json").read_text())["engine"]
    installed = subprocess.run(
        [str(PYTHON), "-c", "import vllm; print(vllm.__version__)"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert engine["version"]["version"] == installed
    assert engine["version"]["binary"] == str(PYTHON)
    requested, in_effect = engine["settings_requested"], engine["settings_in_effect"]
    assert requested["device"] == "cpu" and requested["cpu_kvcache_space_gib"] == 1
    assert (requested["max_num_seqs"], requested["max_model_len"]) == (8, 2048)
    # the pool it reports holds at least one max_model_len sequence, and is what its log says
    assert in_effect["kv_cache_tokens"] >= 2048
    assert in_effect["kv_cache_tokens"] == in_effect["kv_cache_tokens_logged"]
    assert in_effect["kv_cache_memory_bytes"] == 1 << 30
    assert in_effect["max_model_len"] == 2048
    model = json.loads((vllm_run / "environment.json").read_text())["model"]
    assert model["conversion"]["add_bos_token"] is True
    assert model["conversion"]["check"]["first_ids"][0] == 2  # <bos>


def test_the_run_records_it_served_the_packaged_gguf_dequantised(vllm_run: Path) -> None:
    weights = json.loads((vllm_run / "environment.json").read_text())["weights"]
    assert weights["sha256"] == PACKAGED_SHA256  # the file llama.cpp serves
    assert (weights["format"], weights["quant"], weights["dequantised_from"]) == (
        "safetensors", "BF16", "Q4_K_M",
    )  # fmt: skip
    assert weights["quant_from"] == "vLLM's engine config line (quantization, dtype)"
    assert weights["quantization_method"] == "none"  # a plain bf16 model, read from its log
    summary = read_summary(vllm_run)
    assert summary["run"]["quant"] == "BF16"
    assert summary["run"]["weights"] == f"BF16 from gguf {PACKAGED_SHA256[:12]} (dequantised)"


def test_metrics_move_by_what_each_level_sent(vllm_run: Path) -> None:
    for level in read_summary(vllm_run)["levels"]:
        before, after = level["engine_metrics"]["before"], level["engine_metrics"]["after"]
        sent = LEVELS[level["concurrency"]]

        def moved(
            name: str, before: dict[str, float] = before, after: dict[str, Any] = after
        ) -> float:
            return counter(after, name) - counter(before, name)

        assert moved("vllm:request_success_total") == sent
        assert moved("vllm:generation_tokens_total") == sent * MAX_TOKENS
        assert moved("vllm:prompt_tokens_total") == level["prompt_tokens_total"]
        assert counter(after, "vllm:kv_cache_usage_perc") >= 0


def test_memory_is_the_process_tree_rss_beside_the_prediction(vllm_run: Path) -> None:
    summary = read_summary(vllm_run)
    predicted = summary["predicted_memory"]
    assert predicted["device"] == "cpu" and predicted["kv_cache_mib"] == 1024
    assert predicted["weights_mib"] == pytest.approx(511, abs=5)  # 0.268 B params, bf16
    for level in summary["levels"]:
        assert level["peak_memory_kind"] == "process_rss"
        # weights (511 MiB) and the KV pool (1 GiB) at least; the prediction within a quarter
        assert level["peak_memory_mib"] > 1535
        assert level["peak_memory_mib"] == pytest.approx(predicted["total_mib"], rel=0.25)


def test_nothing_of_vllm_is_left_after_the_run(vllm_run: Path) -> None:
    assert vllm_processes() == []
    assert "EngineCore" in (vllm_run / "engine.log").read_text()


@pytest.fixture(scope="module")
def both_engines(
    vllm_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """vLLM CPU and the embedded llama.cpp, started with `make up`, stopped after."""
    results = tmp_path_factory.mktemp("up")
    urls = {}
    try:
        for engine in ("vllm", ""):
            result = make_bench(results, timeout_s=900, target="up", ENGINE=engine)
            assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
            found = re.search(r"is running at (http://127\.0\.0\.1:\d+)/v1", result.stdout)
            assert found, result.stdout
            urls[engine or "llamacpp"] = found.group(1)
        yield urls
    finally:
        for engine in ("vllm", ""):
            make_bench(results, timeout_s=120, target="down", ENGINE=engine)


def complete(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{url}/v1/{path}", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def test_greedy_output_agrees_with_llamacpp(both_engines: dict[str, str]) -> None:
    """The same weights (Q4_K_M in llama.cpp, dequantised to bf16 in vLLM) continue a prompt
    with the same first words at temperature 0, and chat sees the same prompt tokens."""
    body = {"model": "gemma3-270m", "prompt": "The capital of France is", "max_tokens": 8,
            "temperature": 0}  # fmt: skip
    texts = {name: complete(url, "completions", body)["choices"][0]["text"]
             for name, url in both_engines.items()}  # fmt: skip
    words = {name: text.split()[:4] for name, text in texts.items()}
    assert words["vllm"] == words["llamacpp"], texts
    assert " ".join(words["vllm"]).lower().startswith("the capital of"), texts
    question = [{"role": "user", "content": "What is the capital of France?"}]
    chat = {"model": "gemma3-270m", "max_tokens": 4, "temperature": 0, "messages": question}
    usage = {name: complete(url, "chat/completions", chat)["usage"]["prompt_tokens"]
             for name, url in both_engines.items()}  # fmt: skip
    assert usage["vllm"] == usage["llamacpp"], usage


def test_make_down_leaves_no_vllm_process(both_engines: dict[str, str], tmp_path: Path) -> None:
    result = make_bench(tmp_path, timeout_s=120, target="down", ENGINE="vllm")
    assert result.returncode == 0, result.stderr[-2000:]
    assert vllm_processes() == []
