"""The Compose launch path end to end, with a stand-in `docker` that plays Compose.

The stand-in renders docker/compose.yaml with the environment the harness passed (the
same interpolation Compose does), runs the service's command with a stand-in engine
published on the service's host port, and answers `ps`, `inspect`, `logs`, `stop` and
`down` for it. So these tests check the compose file, the variables the harness sets,
and the order of the docker commands, on a machine without a Docker engine.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.engines.compose import load_compose, render
from tests.integration.test_engine_native import (
    CRASH_ENV,
    FAKES,
    LISTEN_ENV,
    MODULE,
    RECORD_ENV,
    bench,
    environment,
    finished_run,
    install_fakes,
    recorded,
)
from tests.support.runs import read_summary

MODULE_COMPOSE = "tests.integration.test_engine_compose"
IMAGE_ENGINES = {"vllm": "vllm", "ollama": "ollama", "llama.cpp": "llama-server"}
DIGEST = "sha256:" + "0" * 64


def _containers(folder: Path) -> dict[str, Any]:
    path = folder / "containers.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _compose_up(argv: list[str], folder: Path) -> None:
    compose_file, service = Path(argv[argv.index("-f") + 1]), argv[-1]
    definition = render(load_compose(compose_file), os.environ)["services"][service]
    engine = next(name for key, name in IMAGE_ENGINES.items() if key in definition["image"])
    command = definition.get("command", "")
    args = shlex.split(command) if isinstance(command, str) else list(command)
    entrypoint = definition.get("entrypoint", [])
    if entrypoint:  # e.g. ["vllm", "serve"]: the engine is the first word
        args = entrypoint[1:] + args
    env = {**os.environ, **{k: str(v) for k, v in definition.get("environment", {}).items()}}
    if definition.get("network_mode") != "host":  # else it listens where its command says
        host_ip, host_port, _ = definition["ports"][0].split(":")
        env[LISTEN_ENV] = f"{host_ip}:{host_port}"
    log = (folder / f"{service}.log").open("ab")
    bin_dir = Path(sys.argv[0]).parent
    process = subprocess.Popen(
        [str(bin_dir / engine), *args], env=env, stdout=log, stderr=log, start_new_session=True
    )
    containers = _containers(folder)
    network = definition.get("network_mode", "llm-bench_default")  # Compose's project network
    containers[service] = {"pid": process.pid, "image": definition["image"], "network": network}
    (folder / "containers.json").write_text(json.dumps(containers))


def _stop(service: str, folder: Path, sig: signal.Signals) -> None:
    container = _containers(folder).get(service)
    if container:
        try:
            os.killpg(container["pid"], sig)
        except ProcessLookupError:
            return


def fake_docker() -> int:
    """`docker` as far as the harness uses it."""
    argv, folder = sys.argv[1:], Path(os.environ[RECORD_ENV])
    folder.mkdir(parents=True, exist_ok=True)
    harness_env = {k: v for k, v in os.environ.items() if k.isupper() and "_" in k}
    with (folder / "docker-calls.jsonl").open("a") as calls:
        calls.write(json.dumps({"argv": ["docker", *argv], "env": harness_env}) + "\n")
    if argv[:1] == ["info"]:
        print("28.0.0")
    elif argv[:2] == ["compose", "version"]:
        print("Docker Compose version v2.30.0")
    elif argv[:2] == ["image", "inspect"]:
        print(f"{argv[-1].rsplit(':', 1)[0]}@{DIGEST}")
    elif argv[:1] == ["inspect"]:
        service = argv[-1].removeprefix("container-")
        container = _containers(folder)[service]
        pid = container["pid"]
        alive = subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode == 0
        fields = {
            "{{.State.Pid}}": str(pid),
            "{{.State.Status}}": "running" if alive else "exited",
            "{{.State.ExitCode}}": "0" if alive else "1",
            "{{.Image}}": container["image"],
            "{{.HostConfig.NetworkMode}}": container["network"],
        }
        print(" ".join(fields[part] for part in argv[2].split()))
    elif argv[:1] == ["compose"]:
        start = 5
        while argv[start] == "--profile":
            start += 2
        subcommand, service = argv[start], argv[-1]
        if subcommand == "up":
            _compose_up(argv, folder)
        elif subcommand == "ps" and service in _containers(folder):
            print(f"container-{service}")
        elif subcommand == "logs":
            print((folder / f"{service}.log").read_text(errors="replace"))
        elif subcommand in ("stop", "kill"):
            _stop(service, folder, signal.SIGTERM if subcommand == "stop" else signal.SIGKILL)
        elif subcommand == "down":
            containers = _containers(folder)
            containers.pop(service, None)
            (folder / "containers.json").write_text(json.dumps(containers))
    return 0


@pytest.fixture
def fake_docker_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    entry_points = {name: f"{MODULE}:fake_main" for name in FAKES}
    entry_points["docker"] = f"{MODULE_COMPOSE}:fake_docker"
    env = install_fakes(tmp_path, entry_points)
    yield env
    # a stand-in container the harness failed to stop must not outlive the test
    for service in _containers(Path(env[RECORD_ENV])):
        _stop(service, Path(env[RECORD_ENV]), signal.SIGKILL)


def docker_calls(env: dict[str, str]) -> list[dict[str, Any]]:
    lines = (Path(env[RECORD_ENV]) / "docker-calls.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def compose_calls(env: dict[str, str]) -> list[list[str]]:
    """The compose sub-commands run, without the common `docker compose -f F -p P` prefix."""
    return [c["argv"][6:] for c in docker_calls(env) if c["argv"][1:2] == ["compose"]][1:]


VLLM_UNDER_COMPOSE = ("engine=vllm", "engine.launcher=compose", "model.hf_repo=org/fake-model")


def test_vllm_runs_as_the_compose_service_with_its_knobs(
    fake_docker_env: dict[str, str], tmp_path: Path
) -> None:
    results = tmp_path / "results"
    overrides = (
        *VLLM_UNDER_COMPOSE,
        "engine.parallel=8",
        "engine.gpu_memory_utilization=0.5",
        "engine.stop_grace_s=3",
    )
    run_dir = finished_run(bench(fake_docker_env, results, *overrides), results)
    up = next(c for c in docker_calls(fake_docker_env) if "up" in c["argv"])
    port = up["env"]["VLLM_PORT"]
    assert up["argv"][-4:] == ["up", "-d", "--no-build", "vllm"]
    container_argv = recorded(fake_docker_env, "vllm")["argv"]
    assert container_argv == [
        "vllm", "serve", "org/fake-model", "--served-model-name", "gemma3-270m",
        "--host", "0.0.0.0", "--port", "8000", "--max-model-len", "4096",
        "--max-num-seqs", "8", "--gpu-memory-utilization", "0.5", "--kv-cache-dtype", "auto",
        "--enable-prompt-tokens-details",
    ]  # fmt: skip
    assert compose_calls(fake_docker_env)[-4:] == [
        ["logs", "--no-color", "vllm"],
        ["stop", "-t", "3", "vllm"],
        ["down", "-t", "3", "vllm"],
        ["ps", "-a", "-q", "vllm"],  # the container is gone
    ]
    engine = environment(run_dir)["engine"]
    assert engine["base_url"] == f"http://127.0.0.1:{port}/v1"
    assert engine["version"]["image"] == "vllm/vllm-openai:v0.26.0"
    assert engine["version"]["image_digest"] == f"vllm/vllm-openai@{DIGEST}"
    assert engine["settings_in_effect"]["network"] == "bridge"
    assert "stand-in vllm listening" in (run_dir / "engine.log").read_text()


def test_a_service_left_running_still_leaves_its_log_in_the_run(
    fake_docker_env: dict[str, str], tmp_path: Path
) -> None:
    results = tmp_path / "results"
    overrides = (*VLLM_UNDER_COMPOSE, "engine.keep_running=true")
    run_dir = finished_run(bench(fake_docker_env, results, *overrides), results)
    calls = compose_calls(fake_docker_env)
    assert calls[-1] == ["logs", "--no-color", "vllm"]
    assert not [c for c in calls if c[0] in ("stop", "down", "kill")]
    assert "vllm" in _containers(Path(fake_docker_env[RECORD_ENV]))  # still running
    assert "stand-in vllm listening" in (run_dir / "engine.log").read_text()


def test_llamacpp_cpu_uses_the_cpu_profile_and_mounts_the_gguf_folder(
    fake_docker_env: dict[str, str], tmp_path: Path
) -> None:
    results = tmp_path / "results"
    overrides = ("engine=llamacpp-cpu", "engine.launcher=compose", "engine.parallel=2")
    run_dir = finished_run(bench(fake_docker_env, results, *overrides), results)
    model_path = Path(environment(run_dir)["model"]["path"])
    up = next(c for c in docker_calls(fake_docker_env) if "up" in c["argv"])
    assert up["argv"][6:9] == ["--profile", "cpu", "up"]
    assert up["env"]["LLAMACPP_MODELS_DIR"] == str(model_path.parent)
    argv = recorded(fake_docker_env, "llama-server")["argv"]
    assert argv[:3] == ["llama-server", "--model", f"/models/{model_path.name}"]
    assert argv[argv.index("--ctx-size") + 1] == "4096"
    assert argv[-5:] == ["--metrics", "--fit", "off", "--cache-ram", "0"]  # prompt cache off
    summary = read_summary(run_dir)
    assert summary["status"] == "complete"


def test_a_container_that_dies_fails_the_wait_with_its_log(
    fake_docker_env: dict[str, str], tmp_path: Path
) -> None:
    results = tmp_path / "results"
    overrides = ("engine=ollama", "engine.launcher=compose", "engine.ollama_weights=library",
                 "model.ollama_tag=fake:1b")  # fmt: skip
    started = time.monotonic()
    result = bench({**fake_docker_env, CRASH_ENV: "1"}, results, *overrides)
    assert result.returncode == 1
    assert "the ollama container stopped (exited 1)" in result.stderr
    assert "stand-in ollama: error: CUDA out of memory" in result.stderr
    assert time.monotonic() - started < 30
    assert compose_calls(fake_docker_env)[-3:] == [
        ["stop", "-t", "10", "ollama"],
        ["down", "-t", "10", "ollama"],
        ["ps", "-a", "-q", "ollama"],
    ]


def test_a_model_without_an_ollama_tag_is_refused_before_docker_starts(
    fake_docker_env: dict[str, str], tmp_path: Path
) -> None:
    result = bench(fake_docker_env, tmp_path / "results", "engine=ollama",
                   "engine.ollama_weights=library", "model.ollama_tag=null")  # fmt: skip
    assert result.returncode == 1
    assert "model='gemma3-270m' has none: set model.ollama_tag=<tag>" in (result.stderr)
    assert not [c for c in docker_calls(fake_docker_env) if "up" in c["argv"]]


def test_stop_escalates_to_kill_when_stop_fails(tmp_path: Path) -> None:
    from harness.engines.compose import ComposeService

    service = ComposeService("vllm", "llm-bench", {})
    calls: list[list[str]] = []

    def run(args: list[str], timeout_s: float = 0) -> tuple[int, str]:
        calls.append(args[6:])
        return (1, "stop failed") if "stop" in args else (0, "")

    service.run = run  # type: ignore[method-assign]
    started = time.monotonic()
    service.stop(grace_s=2)
    assert calls == [
        ["stop", "-t", "2", "vllm"],
        ["kill", "vllm"],
        ["down", "-t", "2", "vllm"],
        ["ps", "-a", "-q", "vllm"],
    ]
    assert time.monotonic() - started < 1


def test_a_container_left_after_down_is_removed_by_force(tmp_path: Path) -> None:
    from harness.engines.compose import ComposeService

    service = ComposeService("vllm", "llm-bench", {})
    calls: list[list[str]] = []
    containers = ["c0ffee"]

    def run(args: list[str], timeout_s: float = 0) -> tuple[int, str]:
        calls.append(args)
        if args[:2] == ["docker", "rm"]:
            containers.clear()
        return 0, " ".join(containers) if "ps" in args else ""

    service.run = run  # type: ignore[method-assign]
    service.stop(grace_s=2)
    assert calls[-2:] == [["docker", "rm", "-f", "c0ffee"], [*service.container_args()]]


def test_a_container_that_cannot_be_removed_is_an_error_naming_it() -> None:
    from harness.engines.base import EngineError
    from harness.engines.compose import ComposeService

    service = ComposeService("vllm", "llm-bench", {})
    service.run = lambda args, timeout_s=0: (0, "c0ffee" if "ps" in args else "")  # type: ignore[method-assign]
    with pytest.raises(EngineError, match="docker rm -f c0ffee"):
        service.stop(grace_s=2)


def test_host_networking_runs_the_host_twin_and_records_it(
    fake_docker_env: dict[str, str], tmp_path: Path
) -> None:
    results = tmp_path / "results"
    overrides = ("engine=ollama", "engine.launcher=compose", "engine.ollama_weights=library",
                 "model.ollama_tag=fake:1b")  # fmt: skip
    run_dir = finished_run(
        bench(fake_docker_env, results, *overrides, "engine.network=host"), results
    )
    up = next(c for c in docker_calls(fake_docker_env) if "up" in c["argv"])
    assert up["argv"][-1] == "ollama-host"
    started = recorded(fake_docker_env, "ollama")
    assert started["env"]["OLLAMA_HOST"] == f"127.0.0.1:{up['env']['OLLAMA_PORT']}"
    engine = environment(run_dir)["engine"]
    assert engine["settings_in_effect"]["network"] == "host"
    assert engine["version"]["service"] == "ollama-host"
