"""The native launch path end to end, with stand-in `vllm`, `ollama`, `llama-server` binaries.

Each stand-in is a small script on PATH that records the arguments and environment the
harness started it with, then serves what the real engine serves (its health, version,
metrics and model endpoints, and streamed OpenAI chat completions from the reference
server). A full `python -m harness.bench` runs against each, so the exact command lines,
the readiness wait, the Ollama pull, the metric scrapes and the stop are all exercised.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from harness.engines import Engine
from tests.support import ollama_standin
from tests.support.runs import only_run_dir, read_summary

REPO = Path(__file__).resolve().parents[2]
RECORD_ENV = "FAKE_ENGINE_RECORD"
LISTEN_ENV = "FAKE_ENGINE_LISTEN"
CRASH_ENV = "FAKE_ENGINE_CRASH"
UNHEALTHY_ENV = "FAKE_ENGINE_UNHEALTHY"
CPU_BUILD_ENV = "FAKE_LLAMA_SERVER_CPU_ONLY"  # a llama-server built without GPU support
LAYERS = 19
FAKES = ("vllm", "ollama", "llama-server", "nvidia-smi")
MODULE = "tests.integration.test_engine_native"


# -- the stand-in engines (run as scripts, not by pytest) -----------------------------------
def _option(argv: list[str], name: str, default: str = "") -> str:
    return argv[argv.index(name) + 1] if name in argv else default


def _record(name: str, argv: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith(("OLLAMA_", "VLLM_", "HF_"))}
    folder = Path(os.environ[RECORD_ENV])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps({"argv": argv, "env": env}))


def _event(model: str, choices: list[dict[str, Any]], **extra: Any) -> bytes:
    body = {"object": "chat.completion.chunk", "model": model, "choices": choices, **extra}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _engine_app(name: str, argv: list[str]) -> web.Application:
    model = _option(argv, "--served-model-name") or _option(argv, "--alias") or "fake:1b"
    state: dict[str, Any] = {"tokens": 0, "tags": [], "loaded": []}

    async def chat(request: web.Request) -> web.StreamResponse:
        """A streamed chat completion of exactly max_tokens tokens, with usage."""
        tokens = int((await request.json()).get("max_tokens") or 16)
        state["tokens"] += tokens
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(_event(model, [{"index": 0, "delta": {"role": "assistant"}}]))
        for index in range(tokens):
            await asyncio.sleep(0.001)
            await response.write(_event(model, [{"index": 0, "delta": {"content": f"t{index} "}}]))
        await response.write(_event(model, [{"index": 0, "delta": {}, "finish_reason": "length"}]))
        usage = {"prompt_tokens": 5, "completion_tokens": tokens, "total_tokens": tokens + 5}
        await response.write(_event(model, [], usage=usage))
        await response.write(b"data: [DONE]\n\n")
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", lambda _: web.json_response({"data": [{"id": model}]}))
    healthy = 503 if os.environ.get(UNHEALTHY_ENV) else 200
    app.router.add_get("/health", lambda _: web.json_response({}, status=healthy))

    async def text(body: str) -> web.Response:
        return web.Response(text=body)

    if name == "llama-server":
        slots, ctx = int(_option(argv, "--parallel", "1")), int(_option(argv, "--ctx-size"))
        props = {
            "build_info": "b1-fake",
            "total_slots": slots,
            "default_generation_settings": {"n_ctx": ctx // slots},
        }
        app.router.add_get("/props", lambda _: web.json_response(props))
        app.router.add_get(
            "/metrics",
            lambda _: text(f"# TYPE x counter\nllamacpp:tokens_predicted_total {state['tokens']}"),
        )
    if name == "vllm":
        info = 'vllm:cache_config_info{block_size="16",cache_dtype="auto",num_gpu_blocks="100"}'
        metrics = (
            f"{info} 1.0\n"
            'vllm:num_requests_waiting{model_name="m"} 0.0\n'
            'vllm:e2e_request_latency_seconds_bucket{le="1.0",model_name="m"} 3.0\n'
            'vllm:e2e_request_latency_seconds_sum{model_name="m"} 1.5\n'
        )
        app.router.add_get("/version", lambda _: web.json_response({"version": "0.0.fake"}))
        app.router.add_get(
            "/metrics",
            lambda _: text(metrics + f"vllm:generation_tokens_total {state['tokens']}\n"),
        )
    if name == "ollama":

        async def pull(request: web.Request) -> web.StreamResponse:
            tag = (await request.json())["model"]
            response = web.StreamResponse()
            await response.prepare(request)
            for event in (
                {"status": "pulling manifest"},
                {"status": "pulling x", "digest": "sha256:abc", "total": 100, "completed": 40},
                {"status": "pulling x", "digest": "sha256:abc", "total": 100, "completed": 100},
                {"status": "success"},
            ):
                await response.write(json.dumps(event).encode() + b"\n")
            state["tags"].append({"name": tag, "digest": "feedbeef"})
            return response

        async def generate(request: web.Request) -> web.Response:
            body = await request.json()
            state["loaded"] = [
                {
                    "name": body["model"],
                    "size": 2000,
                    "size_vram": 1500,
                    "context_length": body["options"]["num_ctx"],
                }
            ]
            return web.json_response({"done": True, "done_reason": "load"})

        async def show(request: web.Request) -> web.Response:
            """What /api/show says of a pulled library model (Ollama's API, v0.33)."""
            await request.json()
            details = {"format": "gguf", "family": "llama", "quantization_level": "Q4_K_M"}
            blob = f"/root/.ollama/models/blobs/sha256-{'fe' * 32}"
            return web.json_response({"details": details, "modelfile": f"FROM {blob}\n"})

        app.router.add_post("/api/show", show)
        app.router.add_post("/api/chat", ollama_standin.chat)
        app.router.add_get("/api/version", lambda _: web.json_response({"version": "0.0.fake"}))
        app.router.add_get("/api/tags", lambda _: web.json_response({"models": state["tags"]}))
        app.router.add_get("/api/ps", lambda _: web.json_response({"models": state["loaded"]}))
        app.router.add_post("/api/pull", pull)
        app.router.add_post("/api/generate", generate)
    return app


def _log_offload(n_gpu_layers: int) -> None:
    """What llama-server logs while it loads the model, on a CUDA or a CPU-only build."""
    if os.environ.get(CPU_BUILD_ENV):
        print("warning: no usable GPU found, --gpu-layers option will be ignored")
        print("warning: one possible reason is that llama.cpp was compiled without GPU support")
        print("load_tensors:   CPU_Mapped model buffer size =   241.05 MiB", flush=True)
        return
    print("llama_model_load_from_file_impl: using device CUDA0 (Stand-in GPU) - 8000 MiB free")
    offloaded = min(n_gpu_layers, LAYERS)
    print(f"load_tensors: offloaded {offloaded}/{LAYERS} layers to GPU", flush=True)


def fake_main() -> int:
    """Entry point of every stand-in; which engine it plays is its file name."""
    name, argv = Path(sys.argv[0]).name, sys.argv[1:]
    if name == "nvidia-smi":
        print("GPU 0: Stand-in GPU (UUID: GPU-0)")
        return 0
    if name == "llama-server" and argv == ["--help"]:
        print("--fit [on|off]  adjust unset arguments to fit in device memory")
        return 0
    _record(name, [name, *argv])
    if name == "llama-server":
        _log_offload(int(_option(argv, "--n-gpu-layers", "0")))
    if os.environ.get(CRASH_ENV):
        print(f"stand-in {name}: error: CUDA out of memory", flush=True)
        return 1
    if os.environ.get(LISTEN_ENV):  # in a stand-in container: the published host port
        host, _, port = os.environ[LISTEN_ENV].rpartition(":")
    elif name == "ollama":
        host, _, port = os.environ["OLLAMA_HOST"].rpartition(":")
    else:
        host, port = _option(argv, "--host"), _option(argv, "--port")
    print(f"stand-in {name} listening on {host}:{port}", flush=True)
    web.run_app(_engine_app(name, argv), host=host, port=int(port), print=None)
    return 0


# -- the tests ------------------------------------------------------------------------------
def install_fakes(tmp_path: Path, entry_points: dict[str, str]) -> dict[str, str]:
    """Stand-in executables (name -> 'module:function'); an environment that finds them first."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, entry in entry_points.items():
        module, function = entry.split(":")
        script = bin_dir / name
        script.write_text(
            f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO)!r})\n"
            f"from {module} import {function}\nsys.exit({function}())\n"
        )
        script.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        RECORD_ENV: str(tmp_path / "record"),
    }


@pytest.fixture
def fake_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH starts with the stand-in engines and nvidia-smi."""
    return install_fakes(tmp_path, {name: f"{MODULE}:fake_main" for name in FAKES})


def bench(env: dict[str, str], results: Path, *overrides: str) -> subprocess.CompletedProcess:
    args = [
        sys.executable,
        "-m",
        "harness.bench",
        f"results={results}",
        "load.concurrency=[1,2]",
        "load.requests_per_level=4",
        "load.warmup_requests=1",
        "workload.max_tokens=8",
        *overrides,
    ]
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)


def recorded(env: dict[str, str], name: str) -> dict[str, Any]:
    return json.loads((Path(env[RECORD_ENV]) / f"{name}.json").read_text())


def finished_run(result: subprocess.CompletedProcess, results: Path) -> Path:
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(results)
    summary = read_summary(run_dir)
    assert summary["status"] == "complete"
    assert [level["status"] for level in summary["levels"]] == ["ok", "ok"]
    return run_dir


def environment(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "environment.json").read_text())


def test_vllm_serve_gets_the_pinned_arguments(fake_path: dict[str, str], tmp_path: Path) -> None:
    results = tmp_path / "results"
    run_dir = finished_run(
        bench(fake_path, results, "engine=vllm", "model.hf_repo=org/fake-model"), results
    )
    argv = recorded(fake_path, "vllm")["argv"]
    port = argv[argv.index("--port") + 1]
    assert argv == [
        "vllm", "serve", "org/fake-model", "--served-model-name", "gemma3-270m",
        "--host", "127.0.0.1", "--port", port, "--max-model-len", "4096",
        "--max-num-seqs", "256", "--gpu-memory-utilization", "0.9", "--kv-cache-dtype", "auto",
        "--enable-prompt-tokens-details",
    ]  # fmt: skip
    engine = environment(run_dir)["engine"]
    assert engine["version"]["version"] == "0.0.fake"
    assert engine["version"]["launcher"] == "native"
    assert engine["settings_in_effect"]["kv_cache_tokens"] == 1600
    for level in read_summary(run_dir)["levels"]:
        after = level["engine_metrics"]["after"]
        assert after["vllm:generation_tokens_total"] > 0
        assert not [key for key in after if "_bucket" in key]


def test_ollama_is_pulled_loaded_and_pinned(fake_path: dict[str, str], tmp_path: Path) -> None:
    results = tmp_path / "results"
    overrides = ("engine=ollama", "engine.ollama_weights=library", "model.ollama_tag=fake:1b",
                 "engine.parallel=2")  # fmt: skip
    run_dir = finished_run(bench(fake_path, results, *overrides), results)
    started = recorded(fake_path, "ollama")
    assert started["argv"] == ["ollama", "serve"]
    env = started["env"]
    assert env["OLLAMA_HOST"].startswith("127.0.0.1:")
    assert {k: v for k, v in env.items() if k != "OLLAMA_HOST"} == {
        "OLLAMA_NUM_PARALLEL": "2",
        "OLLAMA_CONTEXT_LENGTH": "4096",
        "OLLAMA_KEEP_ALIVE": "-1",
        "OLLAMA_MAX_LOADED_MODELS": "1",
        "OLLAMA_FLASH_ATTENTION": "",
        "OLLAMA_KV_CACHE_TYPE": "f16",
    }
    engine = environment(run_dir)["engine"]
    assert engine["version"]["pulled_now"] is True
    assert engine["version"]["model_digest"] == "feedbeef"
    assert engine["settings_in_effect"]["context_length"] == 4096
    after = read_summary(run_dir)["levels"][0]["engine_metrics"]["after"]
    assert after['ollama:size_vram_bytes{model="fake:1b"}'] == 1500


def test_llama_server_gets_slots_context_and_fit_off(
    fake_path: dict[str, str], tmp_path: Path
) -> None:
    results = tmp_path / "results"
    run_dir = finished_run(bench(fake_path, results, "engine=llamacpp-cpu"), results)
    argv = recorded(fake_path, "llama-server")["argv"]
    model_path = environment(run_dir)["model"]["path"]
    port = argv[argv.index("--port") + 1]
    assert argv == [
        "llama-server", "--model", model_path, "--alias", "gemma3-270m",
        "--host", "127.0.0.1", "--port", port, "--ctx-size", "8192", "--parallel", "4",
        "--n-gpu-layers", "0", "--flash-attn", "auto", "--cache-type-k", "f16",
        "--cache-type-v", "f16", "--metrics", "--fit", "off",
    ]  # fmt: skip
    settings = environment(run_dir)["engine"]["settings_in_effect"]
    assert settings["total_slots"] == 4 and settings["ctx_per_slot"] == 2048
    for level in read_summary(run_dir)["levels"]:
        metrics = level["engine_metrics"]
        predicted = "llamacpp:tokens_predicted_total"
        assert (
            metrics["after"][predicted] - metrics["before"][predicted]
            == (level["output_tokens_total"])
        )


def test_a_cpu_only_llama_server_asked_for_gpu_layers_is_recorded_on_the_cpu(
    fake_path: dict[str, str], tmp_path: Path
) -> None:
    results = tmp_path / "results"
    env = {**fake_path, CPU_BUILD_ENV: "1"}
    result = bench(env, results, "engine=llamacpp", "engine.launcher=native")
    run_dir = finished_run(result, results)
    settings = environment(run_dir)["engine"]["settings_in_effect"]
    assert settings["runs_on_gpu"] is False and settings["gpu_layers_offloaded"] == 0
    assert settings["gpu_devices"] == []
    argv = recorded(env, "llama-server")["argv"]
    assert argv[argv.index("--n-gpu-layers") + 1] == "999"
    warning = "[WARNING] - llamacpp was asked for 999 GPU layers (engine.n_gpu_layers) but "
    assert warning + "offloaded none" in (run_dir / "bench.log").read_text()


@pytest.fixture
def llama_server(
    fake_path: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Engine]]:
    """A started native llama-server engine (the stand-in on PATH), stopped afterwards."""
    from harness.engines import create_engine
    from tests.unit.test_engines_compose_file import compose_bench

    for name in ("PATH", RECORD_ENV):
        monkeypatch.setenv(name, fake_path[name])
    started: list[Engine] = []

    def start(*overrides: str) -> Engine:
        bench = compose_bench("engine=llamacpp", "engine.launcher=native", *overrides)
        engine = create_engine(bench.engine, bench.model, tmp_path / f"run{len(started)}")
        started.append(engine)
        engine.provision()
        engine.start()
        engine.wait_ready()
        return engine

    yield start
    for engine in started:
        engine.stop()


def test_a_llama_server_that_offloaded_no_layer_runs_on_the_cpu(
    llama_server: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert llama_server("engine.n_gpu_layers=0").runs_on_gpu() is False
    monkeypatch.setenv(CPU_BUILD_ENV, "1")
    engine = llama_server()
    assert engine.runs_on_gpu() is False
    assert engine.settings()["runs_on_gpu"] is False


def test_a_llama_server_that_offloaded_its_layers_runs_on_the_gpu(
    llama_server: Callable[..., Engine],
) -> None:
    engine = llama_server("engine.n_gpu_layers=10")
    assert engine.runs_on_gpu() is True
    settings = engine.settings()
    assert (settings["gpu_layers_offloaded"], settings["layers_total"]) == (10, LAYERS)
    assert settings["gpu_devices"] == ["CUDA0 (Stand-in GPU)"]
    assert settings["network"] == "host"


def test_a_server_that_never_gets_ready_times_out_with_its_log(
    fake_path: dict[str, str], tmp_path: Path
) -> None:
    env = {**fake_path, UNHEALTHY_ENV: "1"}
    overrides = ("engine=vllm", "model.hf_repo=o/m", "engine.startup_timeout_s=3")
    started = time.monotonic()
    result = bench(env, tmp_path / "results", *overrides)
    assert result.returncode == 1
    assert "vllm at http://127.0.0.1:" in result.stderr
    assert "(native): not ready after 3 s (engine.startup_timeout_s=3)" in result.stderr
    assert "last lines of the engine log:\nstand-in vllm listening on 127.0.0.1:" in result.stderr
    assert time.monotonic() - started < 30


def test_serve_up_leaves_it_running_and_down_stops_it(
    fake_path: dict[str, str], tmp_path: Path
) -> None:
    env = {**fake_path, "BENCH_ENGINES_DIR": str(tmp_path / "engines")}
    args = [sys.executable, "-m", "harness.serve"]
    overrides = ["engine=ollama", "engine.ollama_weights=library", "model.ollama_tag=fake:1b"]
    up = subprocess.run(
        [*args, "up", *overrides], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert up.returncode == 0, up.stderr[-3000:]
    state = json.loads((tmp_path / "engines" / "ollama" / "state.json").read_text())
    assert state["launcher"] == "native" and f"URL={state['url']}" in up.stdout
    assert asyncio.run(_answers(state["url"]))
    down = subprocess.run(
        [*args, "down", *overrides], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert down.returncode == 0, down.stderr[-3000:]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _process_exists(state["pid"]):
        time.sleep(0.1)
    assert not _process_exists(state["pid"])
    assert not (tmp_path / "engines" / "ollama" / "state.json").exists()


async def _answers(base_url: str) -> bool:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/models") as response:
        return response.status == 200


def _process_exists(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
