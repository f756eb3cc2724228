"""How an engine is started here, and the messages when it cannot be; engine config checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import ConfigError, ModelConfig
from harness.engines import create_engine
from harness.engines.base import EngineError
from harness.engines.launch import Facts, Needs, choose_launcher
from harness.engines.llamacpp import gguf_model
from harness.engines.llamacpp_embedded import EmbeddedLlamaCpp
from tests.unit.test_engines_compose_file import compose_bench, engine_for

VLLM = Needs(engine="vllm", binary="vllm", native_gpu=True, compose_gpu=True)
OLLAMA = Needs(engine="ollama", binary="ollama", native_gpu=False, compose_gpu=True)
LLAMA_CPU = Needs(
    "llamacpp-cpu", "llama-server", native_gpu=False, compose_gpu=False, embedded=True
)
NO_GPU = "no NVIDIA driver (nvidia-smi not found)"
NO_DOCKER = "Docker CLI present but no Docker engine running (docker info failed: x)"


def facts(binary: str | None = None, gpu: str | None = None, docker: str | None = None) -> Facts:
    return Facts(binary_path=binary, gpu_problem=gpu, docker_problem=docker)


def test_auto_prefers_the_native_binary() -> None:
    assert choose_launcher("auto", OLLAMA, facts(binary="/usr/bin/ollama")) == "native"


def test_auto_falls_back_to_compose() -> None:
    assert choose_launcher("auto", OLLAMA, facts()) == "compose"


def test_a_native_binary_that_needs_a_gpu_is_used_only_where_there_is_one() -> None:
    assert choose_launcher("auto", VLLM, facts(binary="/bin/vllm")) == "native"
    # without a GPU neither vllm on PATH nor its GPU container can run: refused, not tried
    with pytest.raises(EngineError, match="vllm needs an NVIDIA GPU"):
        choose_launcher("auto", VLLM, facts(binary="/bin/vllm", gpu=NO_GPU))
    # a binary that needs no GPU (ollama) runs natively on a machine without one
    assert choose_launcher("auto", OLLAMA, facts(binary="/bin/ollama", gpu=NO_GPU)) == "native"


def test_vllm_on_a_cpu_machine_says_what_is_missing_and_what_to_run() -> None:
    with pytest.raises(EngineError) as excinfo:
        choose_launcher("auto", VLLM, facts(gpu=NO_GPU, docker=NO_DOCKER))
    assert str(excinfo.value) == (
        "vllm needs an NVIDIA GPU and either Docker with the NVIDIA container toolkit or "
        "`vllm` on PATH; this machine has: no NVIDIA driver (nvidia-smi not found), Docker CLI "
        "present but no Docker engine running (docker info failed: x), no `vllm` on PATH. "
        "Run `make bench` for the embedded CPU engine, or `make bench ENGINE=openai URL=...` "
        "for a server you started."
    )


def test_llama_cpp_on_the_cpu_needs_no_gpu_and_suggests_the_embedded_launcher() -> None:
    assert choose_launcher("auto", LLAMA_CPU, facts(gpu=NO_GPU)) == "compose"
    with pytest.raises(EngineError) as excinfo:
        choose_launcher("auto", LLAMA_CPU, facts(docker=NO_DOCKER))
    message = str(excinfo.value)
    assert message.startswith("llamacpp-cpu needs either `llama-server` on PATH or Docker")
    assert "Add engine.launcher=embedded" in message


def test_native_without_the_binary_names_it() -> None:
    with pytest.raises(EngineError, match="`ollama` is not on PATH; install it, set engine.binary"):
        choose_launcher("native", OLLAMA, facts())


def test_compose_without_docker_names_the_problem() -> None:
    with pytest.raises(EngineError) as excinfo:
        choose_launcher("compose", OLLAMA, facts(binary="/bin/ollama", docker=NO_DOCKER))
    assert "ollama needs Docker with the NVIDIA container toolkit" in str(excinfo.value)
    assert NO_DOCKER in str(excinfo.value)


def test_compose_of_a_gpu_service_without_a_gpu_fails() -> None:
    with pytest.raises(EngineError, match="nvidia-smi not found"):
        choose_launcher("compose", OLLAMA, facts(gpu=NO_GPU))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (("engine=vllm", "model.hf_repo=null"), "model.hf_repo"),
        (
            ("engine=ollama", "engine.ollama_weights=library", "model.ollama_tag=null"),
            "model.ollama_tag",
        ),
        (("engine=ollama", "model=served", "model.served_name=x"), "model.path"),
        (("engine=llamacpp", "model=served", "model.served_name=x"), "model.url"),
    ],
)
def test_a_model_without_what_the_engine_needs_names_the_field(
    tmp_path: Path, overrides: tuple[str, ...], field: str
) -> None:
    with pytest.raises(EngineError, match=f"set {field}="):
        engine_for(tmp_path, *overrides).check_model()


def test_the_default_model_serves_every_engine(tmp_path: Path) -> None:
    """gemma3-270m: the packaged GGUF for llama.cpp and Ollama (its library tag beside it),
    an ungated HF copy for vLLM."""
    for engine in ("vllm", "ollama", "llamacpp"):
        engine_for(tmp_path, f"engine={engine}").check_model()  # raises when a field is missing
    assert engine_for(tmp_path, "engine=ollama").weights_mode == "gguf"
    library = engine_for(tmp_path, "engine=ollama", "engine.ollama_weights=library")
    assert library.tag == "gemma3:270m"
    assert engine_for(tmp_path, "engine=vllm").hf_repo == "unsloth/gemma-3-270m-it"


def test_a_gguf_path_or_url_serves_llama_cpp_whatever_the_source() -> None:
    model = ModelConfig(name="m", source="hf_repo", hf_repo="o/m", url="https://x/m.gguf")
    assert gguf_model(model).source == "gguf_url"
    assert gguf_model(ModelConfig(name="m", source="ollama", path="/m.gguf")).source == "gguf_file"


def test_the_embedded_launcher_runs_llama_cpp_from_the_wheel(tmp_path: Path) -> None:
    bench = compose_bench("engine=llamacpp-cpu", "engine.launcher=embedded")
    assert isinstance(create_engine(bench.engine, bench.model, tmp_path), EmbeddedLlamaCpp)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("engine.launcher=docker", "engine.launcher='docker' is not valid; choose one of: auto"),
        ("engine.flash_attn=yes", "engine.flash_attn='yes' is not valid; choose one of: auto, on"),
        ("engine.n_gpu_layers=-2", "engine.n_gpu_layers=-2 is not valid; it must be >= 0"),
        ("engine.gpu_memory_utilization=1.5", "engine.gpu_memory_utilization=1.5 is not valid"),
        ("engine.gpu_memory_utilization=0", "it must be > 0 and <= 1"),
        ("engine.ollama_keep_alive=soon", "engine.ollama_keep_alive='soon' is not valid"),
        ("engine.compose_project=My_Bench", "engine.compose_project='My_Bench' is not valid"),
        ("engine.image=vllm/vllm-openai", "pin a version tag (e.g. vllm/vllm-openai:<version>)"),
        ("engine.image=vllm/vllm-openai:latest", "'latest' changes under a benchmark"),
        ("engine.pull_timeout_s=0", "engine.pull_timeout_s=0.0 is not valid; it must be > 0"),
    ],
)
def test_bad_engine_knobs_name_the_field_value_and_choices(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        compose_bench("engine=vllm", override)
    assert message in str(excinfo.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ("engine=vllm", "engine.kv_cache_type=q8_0"),
            "engine.kv_cache_type (engine.kind='vllm')='q8_0' is not valid; choose one of: auto",
        ),
        (
            ("engine=ollama", "engine.kv_cache_type=q5_1"),
            "choose one of: f16, q8_0, q4_0",
        ),
        (
            ("engine=ollama", "engine.launcher=embedded"),
            "engine.launcher='embedded' is not valid for engine.kind='ollama'",
        ),
        (
            ("engine.launcher=compose",),
            "engine.launcher='compose' is not valid for engine.kind='llamacpp_embedded'",
        ),
    ],
)
def test_knobs_are_checked_against_the_engine_kind(
    overrides: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ConfigError) as excinfo:
        compose_bench(*overrides)
    assert message in str(excinfo.value)


@pytest.mark.parametrize(
    "overrides",
    [
        ("engine=llamacpp", "engine.parallel=1", "engine.kv_cache_type=q4_0"),
        ("engine=vllm", "engine.image=vllm/vllm-openai:v0.27.1", "engine.launcher=native"),
        ("engine=ollama", "engine.ollama_keep_alive=30m", "engine.flash_attn=off"),
        ("engine=llamacpp-cpu", "engine.image=ghcr.io/ggml-org/llama.cpp:server-b11347"),
        ("engine=vllm", f"engine.image=vllm/vllm-openai@sha256:{'a' * 64}"),
    ],
)
def test_sweepable_knobs_compose(overrides: tuple[str, ...]) -> None:
    bench = compose_bench(*overrides)
    for override in overrides:
        key, value = override.split("=", 1)
        if key == "engine":
            assert bench.engine.name == value
            continue
        got = getattr(getattr(bench, key.split(".")[0]), key.split(".")[1])
        assert str(got) == value, f"{key}: {got!r} != {value!r}"


def test_lost_the_port_reads_only_the_latest_start_of_an_appended_log(tmp_path: Path) -> None:
    import sys

    from harness.engines.host import lost_the_port
    from harness.engines.process import ManagedProcess

    log_path = tmp_path / "engine.log"
    assert not lost_the_port(log_path, 0)

    def run(line: str) -> ManagedProcess:
        process = ManagedProcess([sys.executable, "-c", f"print({line!r})"], log_path)
        process.start()
        assert process.proc is not None and process.proc.wait(timeout=30) == 0
        return process

    first = run("E srv start: couldn't bind HTTP server socket, port: 8080")
    assert first.log_offset == 0 and first.lost_its_port()
    second = run("error loading model: out of memory")
    assert second.log_offset > 0 and not second.lost_its_port()  # the first start's line
    third = run("Error: listen tcp 127.0.0.1:11434: bind: address already in use")
    assert third.lost_its_port()


@pytest.mark.parametrize(
    ("url", "here"),
    [
        ("http://127.0.0.1:8000/v1", True),
        ("http://localhost:8000", True),
        ("http://[::1]:8000/v1", True),
        ("http://10.1.2.3:8000/v1", False),
        ("https://api.example.org/v1", False),
    ],
)
def test_a_server_elsewhere_is_not_measured_with_this_machines_gpu(
    url: str, here: bool, tmp_path: Path
) -> None:
    bench = compose_bench("engine=openai", f"engine.url='{url}'", "model=served",
                          "model.served_name=m")  # fmt: skip
    assert create_engine(bench.engine, bench.model, tmp_path).on_this_machine is here


@pytest.mark.parametrize(
    ("overrides", "on_cpu"),
    [
        ((), True),  # the embedded server
        (("engine=llamacpp", "engine.launcher=embedded"), True),
        (("engine=llamacpp-cpu",), True),  # n_gpu_layers: 0
        (("engine=llamacpp",), False),
        (("engine=ollama",), False),
        (("engine=vllm",), False),
    ],
)
def test_a_cpu_engine_is_measured_by_its_processes_even_beside_a_gpu(
    overrides: tuple[str, ...], on_cpu: bool
) -> None:
    from harness.runner import engine_on_cpu

    assert engine_on_cpu(compose_bench(*overrides).engine) is on_cpu
