"""`make capacity` against a server whose latency grows with load: the reference server
with S slots serves S streams at once and queues the rest, so one more user than S waits
a whole service time for a slot. With a TTFT target just above one service time the
search must find exactly S users, each probe a level of the run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.store import read_records
from tests.support.runs import make_bench, only_run_dir, read_summary

# 50 ms to the first token, then 7 more every 5 ms: one service takes 85 ms; a request
# that queues behind full slots waits about that long before its own 50 ms.
TTFT_MS, ITL_MS, TOKENS = 50, 5, 8
TARGET_MS = 100


@pytest.mark.parametrize("slots", [2, 8])
def test_make_capacity_finds_as_many_users_as_the_server_has_slots(
    start_reference_server: Callable[..., str], tmp_path: Path, slots: int
) -> None:
    url = start_reference_server(ttft_ms=TTFT_MS, itl_ms=ITL_MS, slots=slots)
    result = make_bench(
        tmp_path,
        target="capacity",
        ENGINE="openai",
        URL=url,
        MODEL="reference",
        MAX_TOKENS=str(TOKENS),
        SLO=f"ttft_p99_ms={TARGET_MS}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith(f"capacity: {slots} concurrent users (ttft_p99_ms ")
    assert last.endswith(f" <= {TARGET_MS}; binding: ttft_p99_ms)")
    run_dir = only_run_dir(tmp_path)
    summary = read_summary(run_dir)
    capacity = summary["capacity"]
    assert (capacity["status"], capacity["capacity"], capacity["first_missed"]) == (
        "found",
        slots,
        slots + 1,
    )
    # every probe is an ordinary level of the run, with its 100 requests on file
    probes = capacity["probes"]
    users = [level["concurrency"] for level in summary["levels"]]
    assert [probe["load"] for probe in probes] == users
    assert all(probe["held"] == (probe["load"] <= slots) for probe in probes)
    sent = Counter(record.level for record in read_records(run_dir))
    for probe in probes:
        assert sent[probe["level_index"]] >= 100
        assert probe["targets"]["ttft_p99_ms"]["judged_on"] == "p99"
    # above the slots the TTFT p99 is a queued request's: about a service time more
    missed = next(p for p in probes if p["load"] == slots + 1)
    assert missed["targets"]["ttft_p99_ms"]["value"] > TTFT_MS + 0.5 * (TTFT_MS + 7 * ITL_MS)
