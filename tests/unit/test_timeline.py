"""A level over time from its records: requests in flight and output tokens per second,
bin by bin, with nothing added to the client's hot path."""

from __future__ import annotations

import pytest

from harness.metrics.timeline import client_series
from harness.records import RequestRecord


def record(start: float, end: float, chunks_ms: list[float], tokens: int) -> RequestRecord:
    return RequestRecord(
        request_id=0,
        concurrency=1,
        worker=0,
        start_mono_s=start,
        end_mono_s=end,
        on_wire=True,
        chunk_times_ms=chunks_ms,
        output_tokens=tokens,
    )


def series(points: list[tuple[float, str, float]], name: str) -> list[tuple[float, float]]:
    return [(t, value) for t, n, value in points if n == name]


def test_in_flight_is_time_averaged_per_second() -> None:
    # one request for the whole 2 s, another for the second half of the first second
    points = client_series(
        [record(100.0, 102.0, [], 0), record(100.5, 101.0, [], 0)], start_mono_s=100.0
    )
    assert series(points, "in_flight") == [(0.5, pytest.approx(1.5)), (1.5, pytest.approx(1.0))]


def test_tokens_are_counted_in_the_second_their_chunk_arrived() -> None:
    # 4 chunks of 2 tokens each: at 0.2, 0.9, 1.1 and 1.8 s
    points = client_series([record(10.0, 12.0, [200, 900, 1100, 1800], 8)], start_mono_s=10.0)
    assert series(points, "output_tokens_per_s") == [(0.5, 4.0), (1.5, 4.0)]


def test_a_short_last_bin_gives_rates_over_its_own_length() -> None:
    points = client_series([record(0.0, 1.5, [1250, 1400], 2)], start_mono_s=0.0)
    assert series(points, "in_flight") == [(0.5, 1.0), (1.25, 1.0)]
    assert series(points, "output_tokens_per_s") == [(0.5, 0.0), (1.25, 4.0)]


def test_a_failed_request_was_in_flight_but_brought_no_tokens() -> None:
    failed = record(0.0, 1.0, [500], 1)
    failed.status = "error"
    points = client_series([failed], start_mono_s=0.0)
    assert series(points, "in_flight") == [(0.5, 1.0)]
    assert series(points, "output_tokens_per_s") == [(0.5, 0.0)]


def test_nothing_sent_gives_no_series() -> None:
    unsent = record(0.0, 1.0, [], 0)
    unsent.on_wire = False
    assert client_series([unsent], start_mono_s=0.0) == []
