"""A run over time: the engine's /metrics scraped every second of each level into
timeseries.csv, the client's in-flight count and token rate beside it (the reference
server with 2 slots exports its streams running and waiting)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.support.runs import make_bench, only_run_dir, read_summary

# 20 ms to the first token, 39 more every 10 ms: 410 ms a request
TTFT_MS, ITL_MS, TOKENS = 20, 10, 40


def test_each_second_of_each_level_has_an_engine_sample_and_the_clients_view(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(ttft_ms=TTFT_MS, itl_ms=ITL_MS, slots=2)
    result = make_bench(
        tmp_path,
        ENGINE="openai",
        URL=url,
        MODEL="reference",
        CONCURRENCY="1,4",
        REQUESTS="6",
        MAX_TOKENS=str(TOKENS),
        ARGS="load.min_requests_per_worker=3",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path)
    series = pd.read_csv(run_dir / "timeseries.csv")
    levels = read_summary(run_dir)["levels"]
    for level in levels:
        mine = series[series["level_index"] == level["level_index"]]
        engine = mine[(mine["source"] == "engine") & (mine["name"] == "reference:requests_running")]
        times = sorted(engine["t_level_s"])
        # a sample at the start, then one a second (and one at the end): no gap over 1 s
        assert times[0] < 0.2
        assert max(b - a for a, b in zip(times, times[1:], strict=False)) < 1.2
        assert times[-1] >= level["wall_time_s"] - 0.2
        assert level["engine_metrics_samples"] == len(times)
        client = mine[mine["source"] == "client"]
        tokens = client[client["name"] == "output_tokens_per_s"]
        middle = tokens["t_level_s"]
        seconds = 2 * (middle - np.floor(middle))  # each bin's length (the last may be short)
        # every token of the level is in some bin once
        assert (tokens["value"] * seconds).sum() == pytest.approx(
            level["output_tokens_total"], rel=0.01
        )
    by_users = {level["concurrency"]: level["level_index"] for level in levels}
    waiting = series[(series["name"] == "reference:requests_waiting")]
    # 4 users on 2 slots: 2 wait while 2 are served; 1 user never waits
    assert waiting[waiting["level_index"] == by_users[4]]["value"].max() == 2
    assert waiting[waiting["level_index"] == by_users[1]]["value"].max() == 0
    in_flight = series[(series["name"] == "in_flight") & (series["level_index"] == by_users[4])]
    assert in_flight["value"].iloc[1] > 3.5  # a full second in, all 4 are on the wire
