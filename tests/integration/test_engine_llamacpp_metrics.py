"""The engine's own metrics and read-backs, from the real embedded llama.cpp server."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.engines import Engine, create_engine
from tests.unit.test_engines_compose_file import compose_bench

pytestmark = pytest.mark.engine


def started_engine(run_dir: Path) -> Iterator[Engine]:
    bench = compose_bench("engine.parallel=1")
    started = create_engine(bench.engine, bench.model, run_dir)
    started.provision()
    started.start()
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    yield from started_engine(Path(tmp_path_factory.mktemp("run")))


@pytest.fixture
def own_engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine of the test's own, which it may kill."""
    yield from started_engine(tmp_path)


def complete(engine: Engine, max_tokens: int) -> dict[str, int]:
    body = {
        "model": engine.served_model,
        "messages": [{"role": "user", "content": "Name three colours."}],
        "max_tokens": max_tokens,
    }
    request = urllib.request.Request(
        f"{engine.base_url}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())["usage"]


def test_counters_rise_by_what_a_request_used(engine: Engine) -> None:
    before = engine.scrape()
    usage = complete(engine, max_tokens=8)
    after = engine.scrape()
    predicted = "llamacpp:tokens_predicted_total"
    assert after[predicted] - before[predicted] == usage["completion_tokens"]
    assert (
        after["llamacpp:prompt_tokens_total"] - before["llamacpp:prompt_tokens_total"]
        == (usage["prompt_tokens"])
    )
    assert after["llamacpp:n_decode_total"] > before["llamacpp:n_decode_total"]


def test_the_scrape_holds_gauges_and_no_comment_lines(engine: Engine) -> None:
    metrics = engine.scrape()
    assert "llamacpp:requests_processing" in metrics
    assert all(key.startswith("llamacpp:") for key in metrics)


def test_a_server_killed_between_levels_scrapes_nothing_and_is_not_alive(
    own_engine: Engine,
) -> None:
    assert own_engine.scrape()  # it answers while it runs
    (pid,) = own_engine.pids()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    # until the kernel reports it exited (all its threads gone), without reaping it
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        assert time.monotonic() < deadline, "the killed server is still running"
        time.sleep(0.05)
    assert own_engine.scrape() == {}
    assert own_engine.alive() is False
    assert own_engine.settings()["total_slots"] is None  # read-backs do not raise either


def test_the_embedded_server_says_whether_it_offloads_to_a_gpu(engine: Engine) -> None:
    import xllamacpp

    kinds = {"GPU", "IGPU"}
    gpus = [d for d in xllamacpp.get_device_info() if d["type"].name.rsplit("_", 1)[-1] in kinds]
    settings = engine.settings()
    if gpus:
        assert settings["gpu_devices"] and engine.runs_on_gpu() is not False
    else:  # a CPU-only wheel offloads nothing, whatever n_gpu_layers says
        assert engine.runs_on_gpu() is False
        assert (settings["gpu_layers_offloaded"], settings["gpu_devices"]) == (0, [])
    assert settings["total_slots"] == 1 and settings["network"] == "host"
