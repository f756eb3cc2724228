"""The engine's own metrics, scraped from the real embedded llama.cpp server."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.engines import Engine, create_engine
from tests.unit.test_engines_compose_file import compose_bench

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    bench = compose_bench("engine.parallel=1")
    started = create_engine(bench.engine, bench.model, Path(tmp_path_factory.mktemp("run")))
    started.provision()
    started.start()
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


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
