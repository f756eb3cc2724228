"""The reference server's own transport, against a real client: kernel receive stamps on
the shared clock, and writes larger than the socket takes at once."""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.request
from collections.abc import Callable

import pytest

from harness.client.openai_api import Endpoint, RequestSpec
from harness.client.scheduler import LevelPlan, run_level


@pytest.mark.skipif(sys.platform != "linux", reason="SO_TIMESTAMPNS is Linux's")
def test_each_request_carries_the_kernels_arrival_between_the_wire_and_the_parse(
    start_reference_server: Callable[..., str],
) -> None:
    url = start_reference_server(ttft_ms=5, itl_ms=2)
    endpoint = Endpoint(base_url=url, model="reference")
    for keep_alive in (False, True):  # a first request, and later ones on one connection
        plan = LevelPlan(2, 6, None, 30, 5, keep_alive=keep_alive)
        outcome = asyncio.run(run_level(endpoint, [RequestSpec("x", 4)], plan, lambda r: None))
        for record in outcome.records:
            timings = record.server_timings
            assert record.ok and timings is not None
            # on the wire (the client's stamp, just before its write) -> in the server's
            # kernel -> parsed by the server
            assert record.start_mono_s <= timings["arrived_mono_s"] <= timings["received_mono_s"]
            assert timings["arrived_mono_s"] - record.start_mono_s < 0.05


def test_a_response_larger_than_the_socket_takes_arrives_whole(
    start_reference_server: Callable[..., str],
) -> None:
    # POST /tokenize answers one token per word: a million words make a ~7 MB body, more
    # than a socket's send buffer, so the transport keeps the rest until it is writable
    url = start_reference_server()
    root = url.removesuffix("/v1")
    words = 1_000_000
    request = urllib.request.Request(
        f"{root}/tokenize",
        data=json.dumps({"content": "w " * words}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    assert len(body) > 6_000_000
    assert json.loads(body)["tokens"] == list(range(words))
