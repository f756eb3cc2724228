"""The calibration's truth: what the reference server did, from its own stamps (when it
parsed each request and wrote each event, on the monotonic clock the client shares),
against what the client read."""

from __future__ import annotations

from harness.metrics.request import describe, percentile
from harness.records import RequestRecord


def arrived(record: RequestRecord) -> float:
    """When the request reached the server: the kernel's receive stamp of its last bytes,
    or, where the server's kernel gives none, when the server parsed it (later: the
    server's own delay then counts in the client's error)."""
    timings = record.server_timings or {}
    return timings.get("arrived_mono_s") or timings["received_mono_s"]


def server_share(records: list[RequestRecord]) -> dict[str, float | None]:
    """Where the time between the client's stamps went, from the server's own (same
    monotonic clock), p50 in ms: on the wire -> the server's kernel had the bytes
    (`arrival_lag`, the client's), -> the server parsed them (`read_lag`, the server's:
    its loop busy, or its process waiting for a core), the server wrote the first
    content -> the client read it (`delivery_lag`, the client's)."""
    stamped = _stamped(records)
    arrival = [(arrived(r) - r.start_mono_s) * 1e3 for r in stamped]
    read = [(r.server_timings["received_mono_s"] - arrived(r)) * 1e3 for r in stamped]
    delivery = [
        (r.start_mono_s + r.ttft_ms / 1e3 - r.server_timings["first_content_mono_s"]) * 1e3
        for r in stamped
    ]
    return {
        "arrival_lag_p50_ms": percentile(arrival, 50),
        "read_lag_p50_ms": percentile(read, 50),
        "delivery_lag_p50_ms": percentile(delivery, 50),
    }


def _stamped(records: list[RequestRecord]) -> list[RequestRecord]:
    return [r for r in records if r.ok and r.ttft_ms is not None and r.server_timings]


def errors_vs_sent(records: list[RequestRecord]) -> dict[str, float | None]:
    """The client's error against what the server did, stamp by stamp: each TTFT against
    the server's own (request arrived -> first content written), each gap between two
    chunks against the gap between their writes. The server's timers fire up to a
    millisecond late (its event loop's timer resolution), and a busy server reads a
    request late; both really happened, so they are part of the truth here, and of the
    error against the injected delays."""
    stamped = _stamped(records)
    ttft = [
        r.ttft_ms - (r.server_timings["first_content_mono_s"] - arrived(r)) * 1e3 for r in stamped
    ]
    gaps = []
    for r in stamped:
        written, read = r.server_timings.get("content_mono_s") or [], r.chunk_times_ms
        if len(written) == len(read):
            gaps += [
                (read[i] - read[i - 1]) - (written[i] - written[i - 1]) * 1e3
                for i in range(1, len(read))
            ]
    ttft_stats, gap_stats = describe(ttft), describe(gaps)  # no p99 below 100 samples
    return {
        "ttft_err_p50_ms": ttft_stats["p50"],
        "ttft_err_p99_ms": ttft_stats["p99"],
        "ttft_err_n": ttft_stats["n"],
        "itl_err_p50_ms": gap_stats["p50"],
        "itl_err_p99_ms": gap_stats["p99"],
        "itl_err_n": gap_stats["n"],
    }
