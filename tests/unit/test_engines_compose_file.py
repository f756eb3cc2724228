"""docker/compose.yaml checked offline: health checks, GPUs, loopback ports, pinned images,
named volumes, and the commands it renders from the harness's variables."""

from __future__ import annotations

import copy
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.config import BenchConfig, register, to_bench_config
from harness.engines import create_engine
from harness.engines.base import EngineError
from harness.engines.compose import interpolate, load_compose, render
from harness.engines.llamacpp import LlamaServer
from harness.engines.ollama import Ollama
from harness.engines.served import ServedEngine
from harness.engines.vllm import Vllm

REPO = Path(__file__).resolve().parents[2]
SERVICES = load_compose()["services"]
# A pinned tag, and a digest variable that pins it further when set ("@sha256:...").
DEFAULT_RE = re.compile(
    r"^\$\{(?P<var>[A-Z_]+)_IMAGE:-(?P<default>[^}]+)\}\$\{(?P=var)_DIGEST:-\}$"
)
BRIDGED = [name for name, service in SERVICES.items() if "network_mode" not in service]
HOST_TWINS = [name for name, service in SERVICES.items() if "network_mode" in service]


def compose_bench(*overrides: str) -> BenchConfig:
    from hydra import compose, initialize_config_dir

    register()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return to_bench_config(compose(config_name="config", overrides=list(overrides)))


def engine_for(tmp_path: Path, *overrides: str) -> ServedEngine:
    bench = compose_bench(*overrides)
    engine = create_engine(bench.engine, bench.model, tmp_path)
    assert isinstance(engine, ServedEngine)
    engine.port = 8123
    if isinstance(engine, LlamaServer):
        engine.model_path = Path("/data/gguf/model-q4.gguf")
    return engine


def rendered(env: dict[str, str]) -> dict[str, Any]:
    return render(load_compose(), env)["services"]


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_a_health_check(service: str) -> None:
    check = SERVICES[service]["healthcheck"]
    assert check["test"][0] == "CMD" and len(check["test"]) > 1
    assert check["start_period"]


@pytest.mark.parametrize("service", SERVICES)
def test_every_gpu_service_reserves_an_nvidia_gpu(service: str) -> None:
    definition = SERVICES[service]
    if "cpu" in definition.get("profiles", []):
        assert "deploy" not in definition
        return
    devices = definition["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]


@pytest.mark.parametrize("service", BRIDGED)
def test_ports_are_published_on_loopback_only(service: str) -> None:
    for port in SERVICES[service]["ports"]:
        assert port.startswith("${ENGINE_BIND_HOST:-127.0.0.1}:")
    for port in rendered({})[service]["ports"]:
        assert port.split(":")[0] == "127.0.0.1"


def test_every_service_has_a_twin_on_the_host_network() -> None:
    assert sorted(HOST_TWINS) == sorted(f"{name}-host" for name in BRIDGED)
    for twin in HOST_TWINS:
        bridged = {k: v for k, v in SERVICES[twin].items() if k != "network_mode"}
        assert SERVICES[twin]["network_mode"] == "host" and "ports" not in SERVICES[twin]
        assert {**bridged, "ports": SERVICES[twin.removesuffix("-host")]["ports"]} == (
            SERVICES[twin.removesuffix("-host")]
        )


@pytest.mark.parametrize(
    ("name", "service"),
    [
        ("vllm", "vllm-host"),
        ("ollama", "ollama-host"),
        ("llamacpp", "llamacpp-host"),
        ("llamacpp-cpu", "llamacpp-cpu-host"),
    ],
)
def test_host_networking_runs_the_twin_listening_on_loopback_at_the_runs_port(
    tmp_path: Path, name: str, service: str
) -> None:
    overrides = (f"engine={name}", "model.hf_repo=o/m", "model.ollama_tag=m:1b")
    engine = engine_for(tmp_path, *overrides, "engine.network=host")
    assert engine.compose_service().up_args()[-1] == service
    definition = rendered(engine.compose_env())[service]
    if "command" in definition:
        words = shlex.split(definition["command"])
        listen = (words[words.index("--host") + 1], words[words.index("--port") + 1])
    else:
        listen = tuple(definition["environment"]["OLLAMA_HOST"].split(":"))
    assert listen == ("127.0.0.1", "8123")


@pytest.mark.parametrize("service", SERVICES)
def test_images_are_pinned_variables_with_defaults(service: str) -> None:
    match = DEFAULT_RE.match(SERVICES[service]["image"])
    assert match, SERVICES[service]["image"]
    tag = match["default"].rsplit(":", 1)[1]
    assert tag != "latest" and re.search(r"\d", tag)


def test_the_engine_configs_pin_the_same_images_as_the_compose_file() -> None:
    for name in ("ollama", "vllm", "llamacpp", "llamacpp-cpu"):
        config = yaml.safe_load((REPO / "conf" / "engine" / f"{name}.yaml").read_text())
        service = config.get("service", name)
        match = DEFAULT_RE.match(SERVICES[service]["image"])
        assert match and match["default"] == config["image"], name


@pytest.mark.parametrize("service", SERVICES)
def test_model_caches_are_named_volumes(service: str) -> None:
    declared = load_compose()["volumes"]
    for volume in SERVICES[service]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("${"):  # the host's GGUF folder, mounted read-only
            assert volume.endswith(":ro")
        else:
            assert source in declared
    caches = [v.split(":")[0] for v in SERVICES[service]["volumes"] if not v.startswith("$")]
    assert caches, f"{service} keeps no model cache"


def test_vllm_shares_host_memory_and_takes_the_token_from_the_shell() -> None:
    vllm = SERVICES["vllm"]
    assert vllm["ipc"] == "host"
    assert vllm["environment"] == {"HF_TOKEN": None}  # passed through, value never in a file


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A}", {"A": "1"}, "1"),
        ("$A-x", {"A": "1"}, "1-x"),
        ("${A}", {}, ""),
        ("${A:-d}", {}, "d"),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A-d}", {"A": ""}, ""),
        ("${A:--1}", {}, "-1"),
        ("${A:+yes}", {"A": "1"}, "yes"),
        ("${A:+yes}", {"A": ""}, ""),
        ("${A:-${B:-x}}", {}, "x"),
        ("$${A}", {"A": "1"}, "${A}"),
        ("a $ b", {}, "a $ b"),
    ],
)
def test_interpolation_follows_the_compose_rules(
    text: str, env: dict[str, str], expected: str
) -> None:
    assert interpolate(text, env) == expected


def test_a_required_variable_that_is_missing_is_an_error() -> None:
    with pytest.raises(EngineError, match="MODEL is required: set it"):
        interpolate("${MODEL:?set it}", {})


def test_llamacpp_renders_the_same_arguments_as_the_native_server(tmp_path: Path) -> None:
    engine = engine_for(tmp_path, "engine=llamacpp", "engine.parallel=8", "engine.threads=6")
    assert isinstance(engine, LlamaServer)
    service = rendered(engine.compose_env())["llamacpp"]
    expected = engine.server_args("/models/model-q4.gguf", "0.0.0.0", 8080)
    assert shlex.split(service["command"]) == [
        *expected, "--fit", "off", "--cache-ram", "0", "--threads", "6",
    ]  # fmt: skip
    assert service["ports"] == ["127.0.0.1:8123:8080"]
    assert service["volumes"][0] == "/data/gguf:/models:ro"
    assert service["image"] == "ghcr.io/ggml-org/llama.cpp:server-cuda-b11347"


def test_vllm_renders_the_same_arguments_as_vllm_serve(tmp_path: Path) -> None:
    overrides = ("engine=vllm", "model.hf_repo=org/m", "engine.extra_args=[--dtype,half]")
    engine = engine_for(tmp_path, *overrides)
    assert isinstance(engine, Vllm)
    service = rendered(engine.compose_env())["vllm"]
    argv = [*service["entrypoint"], *shlex.split(service["command"])]
    assert argv == ["vllm", "serve", *engine.server_args("0.0.0.0", 8000), "--dtype", "half"]
    assert service["ports"] == ["127.0.0.1:8123:8000"]


def test_ollama_renders_the_same_knobs_as_the_native_server(tmp_path: Path) -> None:
    engine = engine_for(tmp_path, "engine=ollama", "model.ollama_tag=m:1b", "engine.parallel=8")
    assert isinstance(engine, Ollama)
    service = rendered(engine.compose_env())["ollama"]
    assert service["environment"] == engine.server_env("0.0.0.0:11434")
    assert service["ports"] == ["127.0.0.1:8123:11434"]


def test_an_image_override_reaches_the_service(tmp_path: Path) -> None:
    engine = engine_for(tmp_path, "engine=vllm", "engine.image=vllm/vllm-openai:v0.27.1")
    assert rendered(engine.compose_env())["vllm"]["image"] == "vllm/vllm-openai:v0.27.1"


def test_a_digest_variable_pins_the_tagged_image(tmp_path: Path) -> None:
    engine = engine_for(tmp_path, "engine=llamacpp-cpu")
    digest = "@sha256:" + "0" * 64
    env = {**engine.compose_env(), "LLAMACPP_CPU_DIGEST": digest}
    assert engine.compose_service().image == "ghcr.io/ggml-org/llama.cpp:server-b11347"
    assert rendered(env)["llamacpp-cpu"]["image"] == (
        f"ghcr.io/ggml-org/llama.cpp:server-b11347{digest}"
    )


def _compose_validator() -> list[str] | None:
    """`docker compose` (the v2 plugin) where installed; else the standalone
    `docker-compose` (Debian's package), which checks a file against the Compose
    Specification schema it ships and renders it the same way, without a Docker engine."""
    if shutil.which("docker") is not None:
        done = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=20)
        if done.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose") is not None:
        return ["docker-compose"]
    return None


COMPOSE_VALIDATOR = _compose_validator()


@pytest.mark.skipif(
    COMPOSE_VALIDATOR is None, reason="neither docker compose nor docker-compose is installed"
)
@pytest.mark.parametrize("network", ["bridge", "host"])
@pytest.mark.parametrize("name", ["ollama", "vllm", "llamacpp", "llamacpp-cpu"])
def test_docker_compose_accepts_the_file_with_each_engines_variables(
    name: str, network: str, tmp_path: Path
) -> None:
    assert COMPOSE_VALIDATOR is not None
    overrides = ("model.hf_repo=o/m", "model.ollama_tag=m:1", f"engine.network={network}")
    engine = engine_for(tmp_path, f"engine={name}", *overrides)
    service = engine.compose_service()
    args = [*COMPOSE_VALIDATOR, *service.base_args()[2:]]
    done = subprocess.run(
        [*args, "config"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", **engine.compose_env()},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    # Compose's own rendering agrees with the harness's on what decides the run.
    theirs = yaml.safe_load(done.stdout)["services"][service.service]
    ours = rendered(engine.compose_env())[service.service]
    assert theirs["image"] == ours["image"] == service.image
    assert _words(theirs.get("command")) == _words(ours.get("command"))
    assert theirs.get("environment", {}) == _environment(ours.get("environment"))
    if network == "host":
        assert theirs["network_mode"] == "host" and not theirs.get("ports")
    else:
        assert theirs["ports"] and {_host_ip(port) for port in theirs["ports"]} == {"127.0.0.1"}


def _host_ip(port: str | dict[str, Any]) -> str | None:
    """docker-compose v1 prints "127.0.0.1:8080:8080/tcp"; the v2 plugin a mapping."""
    return port.get("host_ip") if isinstance(port, dict) else port.split(":")[0]


def _words(command: str | list[str] | None) -> list[str]:
    if command is None:
        return []
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def _environment(environment: dict[str, Any] | list[str] | None) -> dict[str, str | None]:
    """As Compose prints it: a mapping; a name without a value is passed from the shell."""
    if isinstance(environment, list):
        pairs = [item.split("=", 1) for item in environment]
        return {pair[0]: pair[1] if len(pair) > 1 else None for pair in pairs}
    return {k: None if v is None else str(v) for k, v in (environment or {}).items()}


@pytest.mark.skipif(
    COMPOSE_VALIDATOR is None, reason="neither docker compose nor docker-compose is installed"
)
def test_the_compose_check_rejects_a_broken_service(tmp_path: Path) -> None:
    """The validator above can fail: a misspelt health check key and a GPU reservation whose
    capabilities are not a list are refused."""
    assert COMPOSE_VALIDATOR is not None
    broken = copy.deepcopy(load_compose())
    service = broken["services"]["vllm"]
    service["healthcheck"]["intervall"] = service["healthcheck"].pop("interval")
    service["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] = "gpu"
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    done = subprocess.run(
        [*COMPOSE_VALIDATOR, "-f", str(path), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin"},
        timeout=60,
    )
    assert done.returncode != 0
    assert "intervall" in done.stderr and "capabilities" in done.stderr
