"""Rows that compare like with like, checked end to end against the reference server:
no prompt is sent twice, short outputs are flagged, shared prefixes only on purpose."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.support.runs import make_bench, only_run_dir, read_summary


def server_stats(url: str) -> dict:
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats") as response:
        return json.loads(response.read())


def bench_against(url: str, tmp_path: Path, *args: str, **variables: str):
    return make_bench(
        tmp_path,
        ENGINE="openai",
        URL=url,
        MODEL="reference",
        ARGS=" ".join(args),
        **variables,
    )


def test_a_whole_default_job_sends_no_prompt_twice(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    # the default workload (the original five prompts) and ladder (1, 2, 4, 8) with warm-up
    url = start_reference_server(ttft_ms=2, itl_ms=1)
    result = bench_against(url, tmp_path, MAX_TOKENS="4")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_summary(only_run_dir(tmp_path))
    sent = sum(level["requests_sent"] for level in summary["levels"])
    prompts = server_stats(url)["prompts"]
    assert [lv["concurrency"] for lv in summary["levels"]] == [1, 2, 4, 8]
    assert prompts["requests"] == sent + 2  # and the two warm-up requests
    assert prompts["repeated"] == 0 and prompts["distinct"] == prompts["requests"]
    for level in summary["levels"]:
        # only the opening word is shared ("Request N: ..."), never a whole prompt
        assert level["prefix_cache_hit_rate"] < 0.1
        assert level["flags"] == []
        assert level["reached_max_tokens_share"] == 1.0


def test_a_server_that_stops_early_is_flagged_short_outputs(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(ttft_ms=2, itl_ms=1, fault="stop_early")
    result = bench_against(url, tmp_path, CONCURRENCY="1,2", REQUESTS="4", MAX_TOKENS="8")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path)
    for level in read_summary(run_dir)["levels"]:
        sent = {1: 4, 2: 8}[level["concurrency"]]  # at least 4 requests per worker
        assert level["finish_reasons"] == {"stop": sent}
        assert level["reached_max_tokens_share"] == 0.0
        assert level["output_tokens_mean"] == 4.0
        assert "short_outputs" in level["flags"]
    assert "short_outputs" in (run_dir / "table.md").read_text()
    assert "short_outputs" in (run_dir / "bench.log").read_text()  # warned as it went


def test_a_shared_prefix_workload_repeats_its_prefix(
    start_reference_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_reference_server(ttft_ms=2, itl_ms=1)
    result = bench_against(
        url,
        tmp_path,
        "workload=shared-prefix workload.prefix_groups=1",  # one group: the warm-up's
        CONCURRENCY="1,2",
        REQUESTS="4",
        MAX_TOKENS="4",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_summary(only_run_dir(tmp_path))
    assert server_stats(url)["prompts"]["repeated"] == 0
    for level in summary["levels"]:
        # 256 shared tokens of 288: the server's cache would have held most of each
        assert level["prefix_cache_hit_rate"] > 0.5
