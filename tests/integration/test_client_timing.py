"""The client against a real server with known, injected TTFT and inter-token delays."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable

import pytest

from harness.client import scheduler
from harness.client.openai_api import Endpoint, RequestSpec
from harness.client.processes import run_level_in_processes
from harness.client.scheduler import LevelPlan
from harness.metrics import summarize_level

INJECTED_TTFT_MS = 50.0
INJECTED_ITL_MS = 10.0
TOLERANCE_MS = 2.0


def run_level(url: str, concurrency: int, requests: int, tokens: int = 20) -> dict:
    endpoint = Endpoint(base_url=url, model="reference")
    plan = LevelPlan(
        concurrency,
        requests,
        None,
        request_timeout_s=30,
        connect_timeout_s=5,
        keep_alive=True,
        # identical requests would otherwise start in lock-step waves of `concurrency`
        ramp_up_s=0.25 if concurrency > 1 else 0.0,
    )
    # the runner's own path: one client process, uvloop where installed
    outcome = run_level_in_processes(
        endpoint, [RequestSpec("hello", tokens)], plan, lambda r: None, 0, processes=1
    )
    return summarize_level(outcome.records, concurrency)


def server_lateness_p50_ms(url: str) -> float:
    """How late the server itself sent its chunks (its timer wake-ups), by its own account."""
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats?reset=1") as response:
        return json.loads(response.read())["lateness_ms"]["p50"] or 0.0


@pytest.mark.parametrize(("concurrency", "requests"), [(1, 12), (32, 96)])
def test_measured_ttft_and_itl_match_the_injected_delays(
    start_reference_server: Callable[..., str], concurrency: int, requests: int
) -> None:
    url = start_reference_server(ttft_ms=INJECTED_TTFT_MS, itl_ms=INJECTED_ITL_MS)
    server_lateness_p50_ms(url)
    level = run_level(url, concurrency, requests)
    assert level["requests_ok"] == requests, level["errors_by_type"]
    # What the server really did: the injected delay plus its own (reported) timer lateness.
    # The rest of the difference is the request's trip and the client's own delay.
    sent_ttft_ms = INJECTED_TTFT_MS + server_lateness_p50_ms(url)
    assert sent_ttft_ms < INJECTED_TTFT_MS + 1.5, "the reference server itself ran late"
    assert level["ttft_ms"]["p50"] == pytest.approx(sent_ttft_ms, abs=TOLERANCE_MS)
    assert level["ttft_ms"]["p50"] == pytest.approx(INJECTED_TTFT_MS, abs=TOLERANCE_MS + 1.5)
    assert level["itl_ms"]["p50"] == pytest.approx(INJECTED_ITL_MS, abs=TOLERANCE_MS)
    assert level["ttft_ms"]["n"] == requests
    assert level["itl_ms"]["n"] == requests * 19


def test_tokens_come_from_usage_and_tpot_follows_the_schedule(
    start_reference_server: Callable[..., str],
) -> None:
    url = start_reference_server(ttft_ms=20, itl_ms=5)
    level = run_level(url, 2, 8, tokens=11)
    assert level["output_tokens_source"] == {"usage": 8}
    assert level["output_tokens_total"] == 88
    assert level["tpot_ms"]["p50"] == pytest.approx(5.0, abs=TOLERANCE_MS)


def test_without_keep_alive_every_request_still_succeeds(
    start_reference_server: Callable[..., str],
) -> None:
    url = start_reference_server(ttft_ms=5, itl_ms=1)
    endpoint = Endpoint(base_url=url, model="reference")
    plan = LevelPlan(4, 16, None, 30, 5, keep_alive=False)
    outcome = asyncio.run(
        scheduler.run_level(endpoint, [RequestSpec("x", 4)], plan, lambda r: None)
    )
    assert [r.status for r in outcome.records] == ["ok"] * 16
    assert sorted(r.request_id for r in outcome.records) == list(range(16))
