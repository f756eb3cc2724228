"""Every workload end to end through `make bench` against the reference server, which counts
a word as a token (usage and POST /tokenize alike) and logs every prompt it sees."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from harness.workload.trace import BUNDLED_TRACE
from tests.integration.test_like_with_like import bench_against, server_stats
from tests.support.runs import only_run_dir, read_summary


def run(url: str, tmp_path: Path, *args: str, **variables: str) -> tuple[Path, str]:
    result = bench_against(url, tmp_path, *args, **variables)
    assert result.returncode == 0, result.stderr[-3000:]
    return only_run_dir(tmp_path), result.stdout


def records_of(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]


@pytest.fixture
def reference(start_reference_server: Callable[..., str]) -> str:
    return start_reference_server(ttft_ms=2, itl_ms=1)


def test_exact_length_prompts_count_what_usage_counts(reference: str, tmp_path: Path) -> None:
    run_dir, stdout = run(
        reference,
        tmp_path,
        "workload=exact-length",
        CONCURRENCY="1,2",
        REQUESTS="8",
        MAX_TOKENS="4",
    )
    records = records_of(run_dir)
    assert len(records) == 16
    for record in records:
        assert record["prompt_tokens_expected"] == record["prompt_tokens"] == 128
        assert record["prompt_tokens_expected_source"] == "tokenize"
    for level in read_summary(run_dir)["levels"]:
        check = level["workload"]["prompt_tokens_check"]
        assert check["n"] == 8 and check["within_1_share"] == 1.0
    assert "100% within +-1" in stdout
    assert server_stats(reference)["prompts"]["repeated"] == 0


def test_shared_prefix_requests_repeat_their_prefix_and_nothing_else(
    reference: str, tmp_path: Path
) -> None:
    run_dir, _ = run(
        reference,
        tmp_path,
        "workload=shared-prefix workload.prefix_groups=3 workload.shared_prefix_tokens=40",
        "workload.prompt_tokens=12",
        CONCURRENCY="1,2",
        REQUESTS="9",
        MAX_TOKENS="4",
    )
    records = records_of(run_dir)
    assert [r["prefix_group"] for r in records[:3]] == [2, 0, 1]  # after two warm-ups: 0, 1
    # the server's prefix cache holds a group's 40 words, and not one word more; the first
    # request of group 2 finds none of its prefix
    cached = {r["request_id"]: r["cached_prompt_tokens"] for r in records}
    assert cached == {i: 0 if i == 0 else 40 for i in range(18)}
    assert server_stats(reference)["prompts"]["repeated"] == 0


def test_multi_turn_sessions_grow_turn_by_turn(reference: str, tmp_path: Path) -> None:
    run_dir, _ = run(
        reference,
        tmp_path,
        "workload=multi-turn workload.turns=3 workload.think_time_s=0.05",
        "workload.prompt_tokens=10",
        CONCURRENCY="2",
        REQUESTS="6",
        MAX_TOKENS="5",
    )
    sessions: dict[int, list[dict]] = defaultdict(list)
    for record in records_of(run_dir):
        sessions[record["session"]].append(record)
    assert len(sessions) == 3
    for turns in sessions.values():
        turns.sort(key=lambda r: r["turn"])
        assert [r["turn"] for r in turns] == [0, 1, 2]
        assert len({r["worker"] for r in turns}) == 1  # one worker runs a session
        prompts = [r["prompt_tokens"] for r in turns]
        # each turn sends the history and 10 new words: 5 of reply and 10 more each time
        # (the server counts words of the JSON messages, which glues two of them into one)
        assert prompts == [10, 24, 38]
        for before, after in zip(turns, turns[1:], strict=False):
            assert after["due_mono_s"] - before["end_mono_s"] == pytest.approx(0.05, abs=1e-6)
            assert after["cached_prompt_tokens"] >= before["prompt_tokens"]
    by_turn = read_summary(run_dir)["levels"][0]["workload"]["by_turn"]
    assert [by_turn[t]["n"] for t in ("0", "1", "2")] == [3, 3, 3]
    assert server_stats(reference)["prompts"]["repeated"] == 0


def test_a_trace_is_sent_at_its_own_times(reference: str, tmp_path: Path) -> None:
    speedup = 4.0
    run_dir, _ = run(
        reference,
        tmp_path,
        f"workload=trace load=trace load.speedup=[{speedup:g}]",
        REQUESTS="62",
    )
    trace = [json.loads(line) for line in BUNDLED_TRACE.read_text().splitlines()]
    records = sorted(records_of(run_dir), key=lambda r: r["request_id"])
    assert len(records) == 62 and all(r["status"] == "ok" for r in records)
    # the two warm-up requests took the trace's first two entries
    offsets_s = [(e["timestamp"] - trace[2]["timestamp"]) / 1000 / speedup for e in trace[2:]]
    sent_s = [r["start_mono_s"] - records[0]["due_mono_s"] for r in records]
    # off by under 1 ms either way: the event loop's timers fire to the millisecond
    off_ms = np.abs(np.array(sent_s) - np.array(offsets_s)) * 1000
    assert np.percentile(off_ms, 99) < 5.0, off_ms
    assert [r["max_tokens"] for r in records] == [e["output_length"] for e in trace[2:]]
    level = read_summary(run_dir)["levels"][0]
    assert (level["mode"], level["speedup"]) == ("trace", speedup)
    assert server_stats(reference)["prompts"]["repeated"] == 0


def test_sharegpt_sends_first_turns_of_a_local_copy(reference: str, tmp_path: Path) -> None:
    words = [
        "how",
        "do",
        "i",
        "write",
        "a",
        "python",
        "function",
        "that",
        "reads",
        "a",
        "file",
        "line",
        "by",
        "line",
    ]
    dataset = [
        {
            "id": f"c{i}",
            "conversations": [
                {"from": "human", "value": " ".join([f"q{i}", *words[: 4 + i % 10]])},
                {"from": "gpt", "value": " ".join(["ok"] * (4 + i % 7))},
            ],
        }
        for i in range(60)
    ]
    path = tmp_path / "share.json"
    path.write_text(json.dumps(dataset))
    run_dir, stdout = run(
        reference,
        tmp_path / "results",
        f"workload=sharegpt workload.dataset_path={path}",
        CONCURRENCY="1,2",
        REQUESTS="8",
    )
    records = records_of(run_dir)
    prompts = {d["conversations"][0]["value"]: d for d in dataset}
    assert len(records) == 16
    for record in records:
        assert record["prompt_tokens"] == record["prompt_tokens_expected"]
        assert record["output_tokens"] == record["max_tokens"]  # the reply's length
    assert len(prompts) == 60
    assert "within +-1" in stdout
    assert server_stats(reference)["prompts"]["repeated"] == 0


def test_multi_turn_sessions_through_ollama_s_native_chat(reference: str, tmp_path: Path) -> None:
    run_dir, _ = run(
        reference,
        tmp_path,
        "workload=multi-turn workload.turns=2 workload.think_time_s=0 workload.prompt_tokens=8",
        "engine.ollama_native_api=true",
        CONCURRENCY="1",
        REQUESTS="4",
        MAX_TOKENS="3",
    )
    records = sorted(records_of(run_dir), key=lambda r: r["request_id"])
    assert [(r["session"], r["turn"]) for r in records] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    # the second turn carries the first, its 3-token reply and 8 new words
    assert [r["prompt_tokens"] for r in records] == [8, 18, 8, 18]
    assert server_stats(reference)["prompts"]["repeated"] == 0
