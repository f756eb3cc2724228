"""A level over time, from its records alone: how many requests the client had in flight
and how many output tokens arrived, second by second (no client hot-path cost: computed
after the level from each record's start, end and chunk times)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from harness.records import RequestRecord

# (seconds since the level started, at the middle of the bin, series name, value)
Point = tuple[float, str, float]
CLIENT_SERIES = ("in_flight", "output_tokens_per_s")


def client_series(
    records: Sequence[RequestRecord], start_mono_s: float, bin_s: float = 1.0
) -> list[Point]:
    """Per bin of `bin_s` from the level's start to its last byte: the requests on the
    wire (time-averaged over the bin) and the output tokens that arrived per second (each
    content chunk weighted by its request's tokens per chunk). The last bin may be short;
    its rates are over its own length."""
    sent = [r for r in records if r.on_wire]
    if not sent or bin_s <= 0:
        return []
    end = max(r.end_mono_s for r in sent)
    bins = max(1, math.ceil((end - start_mono_s) / bin_s - 1e-9))
    busy = [0.0] * bins
    tokens = [0.0] * bins
    for record in sent:
        first = max(0, int((record.start_mono_s - start_mono_s) // bin_s))
        for index in range(first, bins):
            lo = start_mono_s + index * bin_s
            if lo >= record.end_mono_s:
                break
            busy[index] += min(record.end_mono_s, lo + bin_s) - max(record.start_mono_s, lo)
        if record.ok and record.output_tokens and record.chunk_times_ms:
            per_chunk = record.output_tokens / len(record.chunk_times_ms)
            for chunk_ms in record.chunk_times_ms:
                at = record.start_mono_s + chunk_ms / 1000.0 - start_mono_s
                tokens[min(bins - 1, max(0, int(at // bin_s)))] += per_chunk
    points: list[Point] = []
    for index in range(bins):
        length = min(bin_s, end - start_mono_s - index * bin_s)
        if length <= 0:
            continue
        middle = index * bin_s + length / 2
        points.append((middle, "in_flight", busy[index] / length))
        points.append((middle, "output_tokens_per_s", tokens[index] / length))
    return points
