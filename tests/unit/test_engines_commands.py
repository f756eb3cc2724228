"""The exact commands the harness runs for each engine, as argument lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.engines import llamacpp
from harness.engines.compose import COMPOSE_FILE
from tests.unit.test_engines_compose_file import engine_for

COMPOSE = ["docker", "compose", "-f", str(COMPOSE_FILE), "-p", "llm-bench"]


def test_compose_commands_for_a_gpu_service(tmp_path: Path) -> None:
    service = engine_for(tmp_path, "engine=vllm", "model.hf_repo=o/m").compose_service()
    assert service.up_args() == [*COMPOSE, "up", "-d", "--no-build", "vllm"]
    assert service.pull_args() == [*COMPOSE, "pull", "vllm"]
    assert service.stop_args(30) == [*COMPOSE, "stop", "-t", "30", "vllm"]
    assert service.kill_args() == [*COMPOSE, "kill", "vllm"]
    assert service.down_args(30) == [*COMPOSE, "down", "-t", "30", "vllm"]
    assert service.logs_args() == [*COMPOSE, "logs", "--no-color", "vllm"]
    assert service.logs_args(tail=30) == [*COMPOSE, "logs", "--no-color", "--tail", "30", "vllm"]


def test_the_cpu_service_is_started_with_its_profile(tmp_path: Path) -> None:
    service = engine_for(tmp_path, "engine=llamacpp-cpu").compose_service()
    profile = [*COMPOSE, "--profile", "cpu"]
    assert service.up_args() == [*profile, "up", "-d", "--no-build", "llamacpp-cpu"]


def test_another_compose_project_is_passed_to_every_command(tmp_path: Path) -> None:
    overrides = ("engine=ollama", "model.ollama_tag=m:1b", "engine.compose_project=bench-b")
    service = engine_for(tmp_path, *overrides).compose_service()
    assert service.up_args()[:6] == [*COMPOSE[:5], "bench-b"]


def test_vllm_compose_environment(tmp_path: Path) -> None:
    overrides = ("engine=vllm", "model.hf_repo=meta-llama/Llama-3.1-8B-Instruct")
    assert engine_for(tmp_path, *overrides, "engine.parallel=16").compose_env() == {
        "ENGINE_BIND_HOST": "127.0.0.1",
        "VLLM_PORT": "8123",
        "VLLM_MODEL": "meta-llama/Llama-3.1-8B-Instruct",
        "VLLM_SERVED_NAME": "gemma3-270m",
        "VLLM_MAX_MODEL_LEN": "4096",
        "VLLM_MAX_NUM_SEQS": "16",
        "VLLM_GPU_MEMORY_UTILIZATION": "0.9",
        "VLLM_KV_CACHE_DTYPE": "auto",
        "VLLM_EXTRA_ARGS": "",
        "VLLM_IMAGE": "vllm/vllm-openai:v0.26.0",
        "ENGINE_LISTEN_HOST": "0.0.0.0",
        "ENGINE_LISTEN_PORT": "8000",
    }


def test_ollama_compose_environment(tmp_path: Path) -> None:
    overrides = ("engine=ollama", "model.ollama_tag=llama3.1:8b", "engine.kv_cache_type=q8_0")
    assert engine_for(tmp_path, *overrides, "engine.flash_attn=on").compose_env() == {
        "ENGINE_BIND_HOST": "127.0.0.1",
        "OLLAMA_PORT": "8123",
        "OLLAMA_NUM_PARALLEL": "4",
        "OLLAMA_CONTEXT_LENGTH": "4096",
        "OLLAMA_KEEP_ALIVE": "-1",
        "OLLAMA_MAX_LOADED_MODELS": "1",
        "OLLAMA_FLASH_ATTENTION": "1",
        "OLLAMA_KV_CACHE_TYPE": "q8_0",
        "OLLAMA_IMAGE": "ollama/ollama:0.33.3",
        "ENGINE_LISTEN_HOST": "0.0.0.0",
        "ENGINE_LISTEN_PORT": "11434",
    }


def test_llamacpp_compose_environment(tmp_path: Path) -> None:
    overrides = ("engine=llamacpp", "engine.parallel=2", "engine.extra_args=[--seed,1]")
    assert engine_for(tmp_path, *overrides).compose_env() == {
        "ENGINE_BIND_HOST": "127.0.0.1",
        "LLAMACPP_PORT": "8123",
        "LLAMACPP_MODELS_DIR": "/data/gguf",
        "LLAMACPP_MODEL_FILE": "model-q4.gguf",
        "LLAMACPP_ALIAS": "gemma3-270m",
        "LLAMACPP_CTX_SIZE": "8192",
        "LLAMACPP_PARALLEL": "2",
        "LLAMACPP_N_GPU_LAYERS": "999",
        "LLAMACPP_FLASH_ATTN": "auto",
        "LLAMACPP_CACHE_TYPE": "f16",
        "LLAMACPP_EXTRA_ARGS": "--cache-ram 0 --seed 1",
        "LLAMACPP_IMAGE": "ghcr.io/ggml-org/llama.cpp:server-cuda-b11347",
        "ENGINE_LISTEN_HOST": "0.0.0.0",
        "ENGINE_LISTEN_PORT": "8080",
    }


def test_the_cpu_twin_on_the_host_network_keeps_the_cpu_profile(tmp_path: Path) -> None:
    started = engine_for(tmp_path, "engine=llamacpp-cpu", "engine.network=host")
    profile = [*COMPOSE, "--profile", "cpu"]
    assert started.compose_service().up_args() == [
        *profile,
        "up",
        "-d",
        "--no-build",
        "llamacpp-cpu-host",
    ]
    assert started.compose_env()["LLAMACPP_CPU_IMAGE"] == "ghcr.io/ggml-org/llama.cpp:server-b11347"


def test_an_image_with_its_own_digest_clears_a_digest_pinned_in_the_shell(
    tmp_path: Path,
) -> None:
    image = "vllm/vllm-openai:v0.26.0@sha256:" + "a" * 64
    env = engine_for(tmp_path, "engine=vllm", f"engine.image={image}").compose_env()
    assert (env["VLLM_IMAGE"], env["VLLM_DIGEST"]) == (image, "")
    tagged = engine_for(tmp_path, "engine=vllm").compose_env()
    assert "VLLM_DIGEST" not in tagged  # a digest exported in the shell still applies


def test_the_cpu_image_goes_to_the_cpu_service_variable(tmp_path: Path) -> None:
    env = engine_for(tmp_path, "engine=llamacpp-cpu").compose_env()
    assert env["LLAMACPP_CPU_IMAGE"] == "ghcr.io/ggml-org/llama.cpp:server-b11347"
    assert env["LLAMACPP_N_GPU_LAYERS"] == "0"


@pytest.mark.parametrize("fit", [True, False])
def test_native_llama_server_argv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fit: bool
) -> None:
    monkeypatch.setattr(llamacpp, "supports_flag", lambda binary, flag: fit)
    overrides = ("engine=llamacpp", "engine.kv_cache_type=q8_0", "engine.flash_attn=on")
    assert engine_for(tmp_path, *overrides, "engine.threads=8").native_command() == [
        "llama-server", "--model", "/data/gguf/model-q4.gguf", "--alias", "gemma3-270m",
        "--host", "127.0.0.1", "--port", "8123", "--ctx-size", "16384", "--parallel", "4",
        "--n-gpu-layers", "999", "--flash-attn", "on", "--cache-type-k", "q8_0",
        "--cache-type-v", "q8_0", "--metrics", *(["--fit", "off"] if fit else []),
        *(["--cache-ram", "0"] if fit else []), "--threads", "8",
    ]  # fmt: skip


def test_native_ollama_serve_argv_and_environment(tmp_path: Path) -> None:
    engine = engine_for(tmp_path, "engine=ollama", "model.ollama_tag=m:1b", "engine.parallel=8")
    assert engine.native_command() == ["ollama", "serve"]
    assert engine.native_env() == {
        "OLLAMA_HOST": "127.0.0.1:8123",
        "OLLAMA_NUM_PARALLEL": "8",
        "OLLAMA_CONTEXT_LENGTH": "4096",
        "OLLAMA_KEEP_ALIVE": "-1",
        "OLLAMA_MAX_LOADED_MODELS": "1",
        "OLLAMA_FLASH_ATTENTION": "",
        "OLLAMA_KV_CACHE_TYPE": "f16",
    }


def test_native_vllm_serve_argv(tmp_path: Path) -> None:
    overrides = ("engine=vllm", "model.hf_repo=o/m", "engine.gpu_memory_utilization=0.75")
    engine = engine_for(tmp_path, *overrides, "engine.kv_cache_type=fp8", "engine.ctx_size=8192")
    assert engine.native_command() == [
        "vllm", "serve", "o/m", "--served-model-name", "gemma3-270m",
        "--host", "127.0.0.1", "--port", "8123", "--max-model-len", "8192",
        "--max-num-seqs", "256", "--gpu-memory-utilization", "0.75", "--kv-cache-dtype", "fp8",
        "--enable-prompt-tokens-details",
    ]  # fmt: skip


def test_a_binary_path_replaces_the_name_on_path(tmp_path: Path) -> None:
    overrides = ("engine=vllm", "model.hf_repo=o/m", "engine.binary=/opt/vllm/bin/vllm")
    assert engine_for(tmp_path, *overrides).native_command()[:2] == ["/opt/vllm/bin/vllm", "serve"]


@pytest.mark.parametrize(
    ("text", "sent"), [("-1", -1), ("300", 300), ("1.5", 1.5), ("5m", "5m"), ("30s", "30s")]
)
def test_ollama_keep_alive_numbers_go_as_numbers(text: str, sent: object) -> None:
    # Ollama reads a JSON string as a Go duration, which needs a unit: "-1" would be refused.
    from harness.engines.ollama import keep_alive_value

    assert keep_alive_value(text) == sent
    assert type(keep_alive_value(text)) is type(sent)


def test_embedded_llama_cpp_argv(tmp_path: Path) -> None:
    import sys

    from harness.engines import create_engine
    from tests.unit.test_engines_compose_file import compose_bench

    bench = compose_bench(
        "engine.parallel=2", "engine.ctx_size=1024", "engine.kv_cache_type=q8_0",
        "engine.flash_attn=on", "engine.port=8124",
    )  # fmt: skip
    engine = create_engine(bench.engine, bench.model, tmp_path)
    engine.model_path = "/m/gemma.gguf"
    assert engine.command() == [
        sys.executable, "-m", "harness.engines.xllamacpp_server", "--model", "/m/gemma.gguf",
        "--alias", "gemma3-270m", "--host", "127.0.0.1", "--port", "8124", "--parallel", "2",
        "--ctx-size", "2048", "--threads", "0", "--n-gpu-layers", "999", "--flash-attn", "on",
        "--cache-type", "q8_0", "--cache-ram-mib", "0",
    ]  # fmt: skip
    assert engine.requested_settings()["ctx_size_total"] == 2048
