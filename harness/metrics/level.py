"""Per-request records -> the summary of one load level, from the raw records only."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from harness.metrics.request import (
    decode_tokens_per_s,
    describe,
    from_due_ms,
    itl_gaps_ms,
    output_tokens_per_s,
    percentile,
    reached_max_tokens,
    tpot_ms,
)
from harness.records import RequestRecord

# Metrics with one value per request (or per gap), summarised by STATISTICS.
DISTRIBUTION_METRICS = (
    "ttft_ms",
    "ttfb_ms",
    "itl_ms",
    "tpot_ms",
    "e2e_ms",
    "output_tokens_per_s_per_request",
    "decode_tokens_per_s_per_request",
    "client_wait_ms",
    "connect_ms",
)
# Reported for open loops only: what a user who arrived on schedule waited.
FROM_DUE_METRICS = ("ttft_from_due_ms", "e2e_from_due_ms")

CLIENT_WAIT_P99_FLAG_MS = 1.0
# flags about the client itself (the rest are about what the engine was asked and gave)
CLIENT_RECORD_FLAGS = ("client_wait",)
REACHED_MAX_TOKENS_FLAG = 0.95
TOKENS_PER_CHUNK_TOLERANCE = 0.02


def per_request_values(records: Iterable[RequestRecord]) -> dict[str, list[float]]:
    """The samples of every distribution metric, from successful requests only (the
    client's wait from every request that reached the wire)."""
    samples: dict[str, list[float]] = {
        key: [] for key in (*DISTRIBUTION_METRICS, *FROM_DUE_METRICS, "client_queued_ms")
    }
    for record in records:
        wait = record.client_wait_ms
        if wait is not None:
            samples["client_wait_ms"].append(wait)
            samples["client_queued_ms"].append(record.queued_ms or 0.0)
        if record.connect_ms is not None:
            samples["connect_ms"].append(record.connect_ms)
        if not record.ok:
            continue
        samples["itl_ms"].extend(itl_gaps_ms(record))
        per_request = {
            "e2e_ms": record.e2e_ms,
            "ttft_ms": record.ttft_ms,
            "ttfb_ms": record.ttfb_ms,
            "tpot_ms": tpot_ms(record),
            "output_tokens_per_s_per_request": output_tokens_per_s(record),
            "decode_tokens_per_s_per_request": decode_tokens_per_s(record),
            "ttft_from_due_ms": from_due_ms(record, record.ttft_ms),
            "e2e_from_due_ms": from_due_ms(record, record.e2e_ms),
        }
        for key, value in per_request.items():
            if value is not None:
                samples[key].append(value)
    return samples


def steady_window(records: Sequence[RequestRecord], mode: str) -> tuple[float, float] | None:
    """(start, end) on the monotonic clock of the span in which the level ran at full
    load, or None where there is none."""
    sent = [r for r in records if r.on_wire]
    if not sent:
        return None
    if mode == "rate":
        start, end = min(r.end_mono_s for r in sent), max(r.start_mono_s for r in sent)
    else:
        by_worker: dict[int, list[RequestRecord]] = defaultdict(list)
        for record in sent:
            by_worker[record.worker].append(record)
        start = max(min(r.start_mono_s for r in mine) for mine in by_worker.values())
        end = min(max(r.end_mono_s for r in mine) for mine in by_worker.values())
    return (start, end) if end > start else None


def tokens_in_window(record: RequestRecord, start: float, end: float) -> float:
    """Output tokens of a request that arrived inside [start, end], each content chunk
    weighted by the request's tokens per chunk."""
    chunks = record.chunk_times_ms
    if not chunks or not record.output_tokens:
        return 0.0
    per_chunk = record.output_tokens / len(chunks)
    lo_ms, hi_ms = (start - record.start_mono_s) * 1000.0, (end - record.start_mono_s) * 1000.0
    return per_chunk * sum(1 for t in chunks if lo_ms <= t <= hi_ms)


def steady_rates(records: Sequence[RequestRecord], mode: str) -> dict[str, float | None]:
    window = steady_window(records, mode)
    if window is None:
        return {
            "steady_window_s": None,
            "steady_output_tokens_per_s": None,
            "steady_requests_per_s": None,
        }
    start, end = window
    ok = [r for r in records if r.ok]
    tokens = sum(tokens_in_window(r, start, end) for r in ok)
    finished = sum(1 for r in ok if start <= r.end_mono_s <= end)
    return {
        "steady_window_s": end - start,
        "steady_output_tokens_per_s": tokens / (end - start),
        "steady_requests_per_s": finished / (end - start),
    }


def chunking(ok: Sequence[RequestRecord]) -> dict[str, Any]:
    """Usage tokens per content chunk, and the ITL gaps that were 0 because their chunks
    came in one socket read."""
    with_usage = [r for r in ok if r.output_tokens_source == "usage" and r.chunk_times_ms]
    chunks = sum(len(r.chunk_times_ms) for r in with_usage)
    tokens = sum(r.output_tokens or 0 for r in with_usage)
    gaps = [gap for r in ok for gap in itl_gaps_ms(r)]
    return {
        "tokens_per_chunk": tokens / chunks if chunks else None,
        "content_chunks_total": sum(len(r.chunk_times_ms) for r in ok),
        "itl_zero_gaps": sum(1 for gap in gaps if gap == 0.0),
    }


def output_lengths(ok: Sequence[RequestRecord]) -> dict[str, Any]:
    reached = [v for v in (reached_max_tokens(r) for r in ok) if v is not None]
    return {
        "finish_reasons": dict(Counter(str(r.finish_reason) for r in ok)),
        "reached_max_tokens_share": sum(reached) / len(reached) if reached else None,
        "output_tokens_mean": (sum(r.output_tokens or 0 for r in ok) / len(ok)) if ok else None,
    }


def prefix_cache(ok: Sequence[RequestRecord]) -> dict[str, Any]:
    told = [r for r in ok if r.cached_prompt_tokens is not None and r.prompt_tokens]
    cached = sum(r.cached_prompt_tokens or 0 for r in told)
    prompt = sum(r.prompt_tokens or 0 for r in told)
    return {
        "cached_prompt_tokens_total": cached if told else None,
        "prefix_cache_hit_rate": cached / prompt if prompt else None,
        "prefix_cache_reported_by": len(told),
    }


# The engine's own per-request timings, where it reports them: Ollama's native API
# (eval_* and prompt_eval_*) and llama.cpp's `timings` (predicted_* and prompt_*).
ENGINE_TIMING_KEYS = (
    "eval_tokens_per_s",
    "eval_duration_ms",
    "prompt_eval_duration_ms",
    "predicted_per_second",
    "predicted_ms",
    "prompt_per_second",
    "prompt_ms",
)


def engine_reported(ok: Sequence[RequestRecord]) -> dict[str, Any]:
    """The engine's own account of the level's requests, beside ours: each timing it
    reported, summarised like a latency."""
    values: dict[str, list[float]] = defaultdict(list)
    for record in ok:
        for key, value in (record.server_timings or {}).items():
            if key in ENGINE_TIMING_KEYS and isinstance(value, int | float):
                values[key].append(float(value))
    return {key: describe(samples) for key, samples in values.items()}


def measurement_flags(
    summary: dict[str, Any], fixed_lengths: bool, client_wait_p99_ms: float | None
) -> list[str]:
    """What makes this level's figures unlike another's, by name. `client_wait_p99_ms`:
    of the client's wait less new connections, taken whatever the sample size (a flag,
    not a reported figure)."""
    flags = []
    if client_wait_p99_ms is not None and client_wait_p99_ms > CLIENT_WAIT_P99_FLAG_MS:
        flags.append("client_wait")
    share = summary["reached_max_tokens_share"]
    if fixed_lengths and share is not None and share < REACHED_MAX_TOKENS_FLAG:
        flags.append("short_outputs")
    if summary["output_tokens_source"].get("chunk_count_usage_rejected"):
        flags.append("usage_rejected")  # the server's counts disagreed with its content
    if summary.get("invalid_utf8_requests"):
        flags.append("invalid_utf8")  # the text received is not what the server meant
    per_chunk = summary["tokens_per_chunk"]
    if per_chunk is not None and abs(per_chunk - 1.0) > TOKENS_PER_CHUNK_TOLERANCE:
        flags.append("multi_token_chunks")
    return flags


def summarize_level(
    records: Sequence[RequestRecord],
    concurrency: int,
    wall_time_s: float | None = None,
    ttft_target_ms: float | None = None,
    tpot_target_ms: float | None = None,
    mode: str = "concurrency",
    fixed_lengths: bool = False,
) -> dict[str, Any]:
    """The summary of one load level, computed from its raw records only.

    The wall time defaults to first request sent -> last request finished.
    `fixed_lengths`: the workload asked for exactly max_tokens (ignore_eos).
    """
    ok = [r for r in records if r.ok]
    if wall_time_s is None:
        wall_time_s = (
            max(r.end_mono_s for r in records) - min(r.start_mono_s for r in records)
            if records
            else 0.0
        )
    output_tokens_total = sum(r.output_tokens or 0 for r in ok)
    samples = per_request_values(records)
    summary: dict[str, Any] = {
        "concurrency": concurrency,
        "requests_sent": len(records),
        "requests_ok": len(ok),
        "requests_failed": len(records) - len(ok),
        "errors_by_type": dict(Counter(r.error_type for r in records if not r.ok)),
        "wall_time_s": wall_time_s,
        "output_tokens_total": output_tokens_total,
        "prompt_tokens_total": sum(r.prompt_tokens or 0 for r in ok),
        "output_tokens_source": dict(Counter(r.output_tokens_source for r in ok)),
        # requests whose stream held bytes that are not UTF-8 (their text has U+FFFD there)
        "invalid_utf8_requests": sum(1 for r in records if r.invalid_utf8_events),
    }
    for key in DISTRIBUTION_METRICS:
        summary[key] = describe(samples[key])
    if mode == "rate":
        for key in FROM_DUE_METRICS:
            summary[key] = describe(samples[key])
    summary["aggregate_output_tokens_per_s"] = (
        output_tokens_total / wall_time_s if wall_time_s > 0 else None
    )
    summary["requests_per_s"] = len(ok) / wall_time_s if wall_time_s > 0 else None
    summary.update(steady_rates(records, mode))
    summary.update(chunking(ok))
    summary.update(output_lengths(ok))
    summary.update(prefix_cache(ok))
    summary["engine_reported"] = engine_reported(ok)
    summary["error_rate"] = (len(records) - len(ok)) / len(records) if records else None
    if ttft_target_ms is None and tpot_target_ms is None:
        summary["goodput"] = None
    else:
        good = sum(meets_targets(r, ttft_target_ms, tpot_target_ms) for r in records)
        summary["goodput"] = good / len(records) if records else None
    summary["goodput_targets"] = {"ttft_ms": ttft_target_ms, "tpot_ms": tpot_target_ms}
    wait_p99 = percentile(samples["client_queued_ms"], 99)
    summary["flags"] = measurement_flags(summary, fixed_lengths, wait_p99)
    return summary


def meets_targets(
    record: RequestRecord, ttft_target_ms: float | None, tpot_target_ms: float | None
) -> bool:
    if not record.ok:
        return False
    if ttft_target_ms is not None and (record.ttft_ms is None or record.ttft_ms > ttft_target_ms):
        return False
    tpot = tpot_ms(record)
    return not (tpot_target_ms is not None and (tpot is None or tpot > tpot_target_ms))
