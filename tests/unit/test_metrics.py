"""Metric maths on hand-made records (definitions: `python -m harness.metrics`)."""

from __future__ import annotations

import pytest

from harness.metrics import (
    FROM_DUE_METRICS,
    METRICS,
    describe,
    itl_gaps_ms,
    summarize_level,
    tpot_ms,
)
from harness.records import RequestRecord


def make_record(
    request_id: int = 0,
    start_s: float = 100.0,
    chunk_times_ms: tuple[float, ...] = (100.0, 120.0, 140.0, 160.0, 180.0),
    e2e_ms: float = 200.0,
    output_tokens: int | None = 5,
    status: str = "ok",
    error_type: str | None = None,
) -> RequestRecord:
    return RequestRecord(
        request_id=request_id,
        concurrency=1,
        worker=0,
        status=status,
        error_type=error_type,
        start_mono_s=start_s,
        end_mono_s=start_s + e2e_ms / 1000.0,
        ttfb_ms=chunk_times_ms[0] if chunk_times_ms else None,
        ttft_ms=chunk_times_ms[0] if chunk_times_ms else None,
        chunk_times_ms=list(chunk_times_ms),
        output_tokens=output_tokens,
        output_tokens_source="usage" if output_tokens is not None else "none",
    )


def test_describe_gives_mean_percentiles_max_and_count() -> None:
    stats = describe([float(v) for v in range(1, 101)])
    assert stats["mean"] == pytest.approx(50.5)
    assert stats["p50"] == pytest.approx(50.5)
    assert stats["p90"] == pytest.approx(90.1)
    assert stats["p99"] == pytest.approx(99.01)
    assert stats["max"] == 100.0
    assert stats["n"] == 100


def test_describe_of_nothing_is_none_with_count_zero() -> None:
    assert describe([]) == {
        "mean": None,
        "p50": None,
        "p90": None,
        "p99": None,
        "max": None,
        "n": 0,
    }


def test_itl_is_the_gaps_between_content_chunks() -> None:
    record = make_record(chunk_times_ms=(100.0, 110.0, 135.0, 136.0))
    assert itl_gaps_ms(record) == pytest.approx([10.0, 25.0, 1.0])


def test_tpot_is_decode_time_over_tokens_after_the_first() -> None:
    # (E2E 200 - TTFT 100) / (5 - 1) = 25 ms
    assert tpot_ms(make_record()) == pytest.approx(25.0)


def test_tpot_is_undefined_for_a_single_token() -> None:
    assert tpot_ms(make_record(chunk_times_ms=(100.0,), output_tokens=1)) is None


def test_level_summary_of_two_requests() -> None:
    first = make_record(0, start_s=10.0)
    second = make_record(1, start_s=10.1, e2e_ms=400.0, output_tokens=9)
    level = summarize_level([first, second], concurrency=2)
    # wall time: first sent at 10.0 s, last finished at 10.5 s
    assert level["wall_time_s"] == pytest.approx(0.5)
    assert level["output_tokens_total"] == 14
    assert level["aggregate_output_tokens_per_s"] == pytest.approx(14 / 0.5)
    assert level["requests_per_s"] == pytest.approx(2 / 0.5)
    # per request: 5 tokens / 0.2 s = 25 tok/s and 9 / 0.4 = 22.5 tok/s
    assert level["output_tokens_per_s_per_request"]["mean"] == pytest.approx((25 + 22.5) / 2)
    # decode rate: (5-1) / 0.1 s = 40 and (9-1) / 0.3 s
    assert level["decode_tokens_per_s_per_request"]["max"] == pytest.approx(40.0)
    assert level["ttft_ms"]["n"] == 2
    assert level["itl_ms"]["n"] == 8
    assert level["itl_ms"]["p50"] == pytest.approx(20.0)
    assert level["e2e_ms"]["max"] == pytest.approx(400.0)
    assert level["error_rate"] == 0.0
    assert level["output_tokens_source"] == {"usage": 2}


def test_failed_requests_count_as_errors_and_add_no_latency_samples() -> None:
    ok = make_record(0)
    failed = make_record(1, status="error", error_type="http_5xx", chunk_times_ms=())
    level = summarize_level([ok, failed], concurrency=2)
    assert level["requests_ok"] == 1
    assert level["requests_failed"] == 1
    assert level["errors_by_type"] == {"http_5xx": 1}
    assert level["error_rate"] == 0.5
    assert level["ttft_ms"]["n"] == 1
    assert level["output_tokens_total"] == 5


def test_explicit_wall_time_overrides_the_record_span() -> None:
    level = summarize_level([make_record()], concurrency=1, wall_time_s=1.0)
    assert level["aggregate_output_tokens_per_s"] == pytest.approx(5.0)


def test_goodput_is_the_share_meeting_both_targets() -> None:
    fast = make_record(0)  # TTFT 100 ms, TPOT 25 ms
    slow_start = make_record(1, chunk_times_ms=(300.0, 310.0), e2e_ms=320.0, output_tokens=2)
    failed = make_record(2, status="error", error_type="timeout")
    level = summarize_level(
        [fast, slow_start, failed], concurrency=3, ttft_target_ms=200, tpot_target_ms=30
    )
    assert level["goodput"] == pytest.approx(1 / 3)


def test_goodput_is_not_computed_without_targets() -> None:
    assert summarize_level([make_record()], concurrency=1)["goodput"] is None


def test_an_empty_level_has_no_rates() -> None:
    level = summarize_level([], concurrency=4)
    assert level["requests_sent"] == 0
    assert level["aggregate_output_tokens_per_s"] is None
    assert level["error_rate"] is None


CEILING_METRICS = (
    "decode_bandwidth_utilisation",
    "decode_ceiling_tokens_per_s",
    "prefill_compute_utilisation",
)


def test_every_summary_metric_has_a_definition_with_unit() -> None:
    closed = summarize_level([make_record()], concurrency=1)
    open_loop = summarize_level([make_record()], concurrency=0, mode="rate")
    for key in METRICS:
        if key in ("peak_memory_mib", "energy_j", "mean_power_w", "energy_per_output_token_j"):
            continue  # added by the runner from telemetry
        if key in CEILING_METRICS:
            continue  # added by the runner from the machine's ceilings (tests/unit/test_ceiling)
        assert key in (open_loop if key in FROM_DUE_METRICS else closed), key
        assert METRICS[key].unit and METRICS[key].definition
    assert not set(FROM_DUE_METRICS) & set(closed), "from-due latencies are for open loops"


def test_the_readme_carries_the_metric_definitions_verbatim() -> None:
    from pathlib import Path

    from harness.metrics import metrics_markdown

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert metrics_markdown() in readme


def test_a_percentile_needs_its_sample_count() -> None:
    few = describe([float(v) for v in range(16)])
    assert few["p99"] is None and few["max"] == 15.0 and few["n"] == 16
    assert few["p90"] is not None
    assert describe([1.0] * 9)["p90"] is None
    assert describe([1.0] * 100)["p99"] == 1.0


def waited(record: RequestRecord, wait_ms: float) -> RequestRecord:
    record.on_wire = True
    record.due_mono_s = record.start_mono_s - wait_ms / 1000.0
    return record


def test_the_clients_wait_is_kept_apart_and_flagged_above_1_ms() -> None:
    calm = summarize_level([waited(make_record(i), 0.2) for i in range(4)], concurrency=4)
    assert calm["client_wait_ms"]["p50"] == pytest.approx(0.2)
    assert calm["ttft_ms"]["p50"] == pytest.approx(100.0)  # from the wire, wait not inside
    assert "client_wait" not in calm["flags"]
    queued = summarize_level([waited(make_record(i), 3.0) for i in range(4)], concurrency=4)
    assert "client_wait" in queued["flags"]


def test_open_loops_report_latency_from_the_due_instant_beside_it() -> None:
    level = summarize_level([waited(make_record(), 40.0)], concurrency=0, mode="rate")
    assert level["ttft_ms"]["p50"] == pytest.approx(100.0)
    assert level["ttft_from_due_ms"]["p50"] == pytest.approx(140.0)
    assert level["e2e_from_due_ms"]["p50"] == pytest.approx(240.0)


def test_the_steady_window_leaves_out_ramp_up_and_drain() -> None:
    # two workers, 200 ms requests of 5 tokens; worker 1 starts 0.4 s late and its last
    # request ends 0.4 s after worker 0 ran out of work
    records = []
    for worker, starts in ((0, (0.0, 0.2, 0.4, 0.6)), (1, (0.4, 0.6, 0.8, 1.0))):
        for start in starts:
            record = waited(make_record(len(records), start_s=100.0 + start), 0.0)
            record.worker = worker
            records.append(record)
    level = summarize_level(records, concurrency=2)
    assert level["steady_window_s"] == pytest.approx(0.4)
    # every 100 ms inside the window both workers stream a token every 20 ms
    assert level["steady_output_tokens_per_s"] == pytest.approx(2 * 5 / 0.2, rel=0.3)
    assert level["aggregate_output_tokens_per_s"] == pytest.approx(40 / 1.2)


def test_tokens_per_chunk_above_1_flags_itl() -> None:
    record = make_record(chunk_times_ms=(100.0, 130.0), output_tokens=6)
    level = summarize_level([record], concurrency=1)
    assert level["tokens_per_chunk"] == pytest.approx(3.0)
    assert "multi_token_chunks" in level["flags"]
    assert level["tpot_ms"]["p50"] == pytest.approx((200.0 - 100.0) / 5)


def test_chunks_of_one_read_count_as_zero_gaps() -> None:
    record = make_record(chunk_times_ms=(100.0, 100.0, 120.0, 120.0, 140.0))
    assert summarize_level([record], concurrency=1)["itl_zero_gaps"] == 2


def test_outputs_shorter_than_asked_are_flagged_where_lengths_were_fixed() -> None:
    short = [make_record(i, output_tokens=3) for i in range(4)]
    for record in short:
        record.max_tokens, record.finish_reason = 5, "stop"
    level = summarize_level(short, concurrency=1, fixed_lengths=True)
    assert level["reached_max_tokens_share"] == 0.0
    assert level["finish_reasons"] == {"stop": 4}
    assert level["output_tokens_mean"] == 3.0
    assert "short_outputs" in level["flags"]
    assert "short_outputs" not in summarize_level(short, 1, fixed_lengths=False)["flags"]


def test_the_prefix_cache_hit_rate_counts_only_requests_that_say() -> None:
    told, silent = make_record(0), make_record(1)
    told.prompt_tokens, told.cached_prompt_tokens = 100, 25
    silent.prompt_tokens = 100
    level = summarize_level([told, silent], concurrency=1)
    assert level["prefix_cache_hit_rate"] == pytest.approx(0.25)
    assert level["prefix_cache_reported_by"] == 1
    assert summarize_level([silent], concurrency=1)["prefix_cache_hit_rate"] is None


def test_the_engines_own_timings_are_summarised_beside_ours() -> None:
    records = [make_record(i) for i in range(3)]
    for n, record in enumerate(records):
        record.server_timings = {"eval_tokens_per_s": 40.0 + n, "received_mono_s": 1.0}
    reported = summarize_level(records, concurrency=1)["engine_reported"]
    assert set(reported) == {"eval_tokens_per_s"}
    assert reported["eval_tokens_per_s"]["mean"] == pytest.approx(41.0)
