"""Metric maths on hand-made records (definitions: `python -m harness.metrics`)."""

from __future__ import annotations

import pytest

from harness.metrics import (
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


def test_every_summary_metric_has_a_definition_with_unit() -> None:
    level = summarize_level([make_record()], concurrency=1)
    for key in METRICS:
        if key in ("peak_memory_mib",):
            continue  # added by the runner from telemetry
        assert key in level, key
        assert METRICS[key].unit and METRICS[key].definition


def test_the_readme_carries_the_metric_definitions_verbatim() -> None:
    from pathlib import Path

    from harness.metrics import metrics_markdown

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert metrics_markdown() in readme
