"""One load level of a job: plan it, run it against the engine, summarise its records."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.client.limits import check_open_files
from harness.client.monitor import summarize_client
from harness.client.openai_api import Endpoint, RequestSpec
from harness.client.processes import auto_processes, run_level_in_processes, run_until_signal
from harness.client.scheduler import LevelOutcome, LevelPlan, warm_up
from harness.config import BenchConfig
from harness.engines import Engine, EngineError
from harness.metrics import CLIENT_RECORD_FLAGS, summarize_level
from harness.records import RequestRecord
from harness.telemetry.energy import NO_ENERGY
from harness.telemetry.process import rss_peak
from harness.telemetry.sampler import Sampler
from harness.telemetry.series import LevelSeries
from harness.workload.check import workload_figures

log = logging.getLogger(__name__)


def level_name(mode: str, concurrency: int, rate: float | None) -> str:
    if mode == "rate":
        return f"rate={rate:g}/s"
    if mode == "trace":
        return f"trace x{rate:g}"
    return f"{'burst' if mode == 'burst' else 'concurrency'}={concurrency}"


# Prefix-cache counters an engine exports (vLLM: vllm:prefix_cache_queries / _hits, in
# tokens), read as the change over a level.
PREFIX_CACHE_COUNTERS = {
    "queries": ("vllm:prefix_cache_queries_total", "vllm:prefix_cache_queries"),
    "hits": ("vllm:prefix_cache_hits_total", "vllm:prefix_cache_hits"),
}


def counter_change(before: dict[str, float], after: dict[str, float], names: tuple) -> float | None:
    """How much the counters called `names` (any labels, summed) grew; None: not exported."""
    keys = [k for k in after if k.partition("{")[0] in names]
    if not keys:
        return None
    return sum(after[k] - before.get(k, 0.0) for k in keys)


def engine_prefix_cache(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """The engine's own prefix-cache hit rate over the level, where it exports one."""
    queries = counter_change(before, after, PREFIX_CACHE_COUNTERS["queries"])
    hits = counter_change(before, after, PREFIX_CACHE_COUNTERS["hits"])
    rate = hits / queries if queries and hits is not None else None
    return {"engine_prefix_cache_queries": queries, "engine_prefix_cache_hit_rate": rate}


def level_status(
    records: list[RequestRecord], engine_alive: bool, server_gone: bool = False
) -> str:
    ok = sum(r.ok for r in records)
    if not engine_alive:
        return "engine_died"
    if server_gone:
        return "server_gone"
    if not records or ok == 0:
        return "failed"
    return "ok" if ok == len(records) else "partial"


def failure_lines(records: list[RequestRecord]) -> list[str]:
    """A level's failed requests by kind, most first, each with one sample message:
    "10 x HTTP 500: boom"."""
    kinds: dict[str, list[RequestRecord]] = {}
    for record in records:
        if not record.ok and record.error_type != "cancelled":
            name = f"HTTP {record.http_status}" if record.http_status not in (None, 200) else ""
            kinds.setdefault(name or str(record.error_type), []).append(record)
    ordered = sorted(kinds.items(), key=lambda item: -len(item[1]))
    return [
        f"{len(failed)} x {kind}: {' '.join((failed[0].error_text or '').split())[:200]}"
        for kind, failed in ordered
    ]


def trace_offsets_s(specs: Sequence[RequestSpec], speedup: float) -> list[float]:
    """Send times of a trace level's requests after its first, `speedup` times faster."""
    times = [spec.send_at_s or 0.0 for spec in specs]
    return [(t - times[0]) / speedup for t in times] if times else []


@dataclass
class LevelSpec:
    """Which level of the job: its place, its load, its requests and their first id, and
    which repeat of its load it is."""

    index: int
    concurrency: int
    rate: float | None
    count: int
    first_id: int
    specs: Sequence[RequestSpec]
    repeat: int = 0  # which pass over the ladder (repeats=K: 0 to K-1)


class LevelRunner:
    """Runs the levels of one job on a running engine, each through the same steps."""

    def __init__(
        self,
        bench: BenchConfig,
        engine: Engine,
        endpoint: Endpoint,
        sampler: Sampler | None,
        on_record: Callable[[RequestRecord], None],
        on_level: Callable[[dict[str, Any]], None],
        predicted_mib: float | None,
        series: LevelSeries | None = None,
    ) -> None:
        self.bench, self.engine, self.endpoint, self.sampler = bench, engine, endpoint, sampler
        self.on_record, self.on_level, self.predicted_mib = on_record, on_level, predicted_mib
        self.series = series

    def plan(self, level: LevelSpec) -> LevelPlan:
        """A trace level is an open loop at the trace's times, `level.rate` times faster."""
        load = self.bench.load
        trace = load.mode == "trace"
        return LevelPlan(
            level.concurrency,
            level.count,
            load.max_duration_s,
            load.request_timeout_s,
            load.connect_timeout_s,
            keep_alive=self.bench.engine.keep_alive,
            ramp_up_s=load.ramp_up_s,
            mode="rate" if trace else load.mode,
            rate_per_s=None if trace else level.rate,
            arrival=load.arrival,
            seed=self.bench.seed + level.index,
            level_index=level.index,
            offsets_s=trace_offsets_s(level.specs, level.rate or 1.0) if trace else None,
            idle_timeout_s=load.idle_timeout_s,
        )

    def run(self, level: LevelSpec) -> None:
        """Run one level and hand its summary to `on_level`; an interruption still
        summarises what finished (status `interrupted`) before it propagates."""
        plan = self.plan(level)
        processes = self.bench.load.client_processes or auto_processes(plan)
        check_open_files(plan.concurrency, processes)
        records: list[RequestRecord] = []

        def on_record(record: RequestRecord) -> None:
            self.on_record(record)  # stored first: the summary holds only stored records
            records.append(record)

        metrics_before = self.engine.scrape()
        if self.series:
            self.series.start(level.index)
        status, outcome = "interrupted", None
        try:
            outcome = run_level_in_processes(
                self.endpoint, level.specs, plan, on_record, level.first_id, processes
            )
            status = level_status(records, self.engine.alive(), outcome.server_gone)
        finally:
            summary = self.summarise(records, plan, status, outcome)
            summary["repeat"] = level.repeat
            if self.series:
                summary["engine_metrics_samples"] = self.series.stop()
                self.series.add_client(records)
            after = self.engine.scrape() if self.engine.alive() else {}
            summary["engine_metrics"] = {"before": metrics_before, "after": after}
            summary.update(engine_prefix_cache(metrics_before, after))
            self.on_level(summary)

    def summarise(
        self,
        records: list[RequestRecord],
        plan: LevelPlan,
        status: str,
        outcome: LevelOutcome | None,
    ) -> dict[str, Any]:
        load = self.bench.load
        level = summarize_level(
            records,
            plan.concurrency,
            ttft_target_ms=load.goodput_ttft_ms,
            tpot_target_ms=load.goodput_tpot_ms,
            mode=plan.mode,
            fixed_lengths=self.bench.workload.ignore_eos,
        )
        level.update(
            status=status,
            level_index=plan.level_index,
            mode=load.mode,
            rate_per_s=plan.rate_per_s,
            stopped_by_deadline=outcome.stopped_by_deadline if outcome else None,
        )
        for line in failure_lines(records):
            log.warning("level %s: %s", plan.level_index + 1, line)
        if counted := level["output_tokens_source"].get("chunk_count"):
            log.warning(
                "level %s: %d responses carried no usage: their output tokens are their "
                "content chunks (output_tokens_source chunk_count)",
                plan.level_index + 1,
                counted,
            )
        if plan.offsets_s is not None:
            level["speedup"] = self.speedup_of(plan)
        level["workload"] = workload_figures(records)
        level.update(self.memory(records))
        tokens, energy = level["output_tokens_total"], level["energy_j"]
        level["energy_per_output_token_j"] = energy / tokens if energy and tokens else None
        level["predicted_memory_mib"] = self.predicted_mib
        client = summarize_client(outcome.client) if outcome else None
        level["client"] = client
        from_records = [f for f in level["flags"] if f in CLIENT_RECORD_FLAGS]
        level["client_flags"] = (client["flags"] if client else []) + from_records
        level["flags"] = [f for f in level["flags"] if f not in CLIENT_RECORD_FLAGS]
        distorting = [f for f in level["client_flags"] if f not in CLIENT_RECORD_FLAGS]
        if distorting:
            log.warning(
                "level %s: the client may have distorted the figures: %s",
                plan.level_index + 1,
                ", ".join(distorting),
            )
        if from_records:
            wait = level["client_wait_ms"]
            log.warning(
                "level %s: requests waited on the client before going on the wire "
                "(client_wait: max %.1f ms, n=%d); latencies run from the wire and exclude "
                "it, the load offered was that much lower",
                plan.level_index + 1,
                wait["max"] or 0.0,
                wait["n"],
            )
        if level["flags"]:
            log.warning(
                "level %s: not like for like with a level without these flags: %s",
                plan.level_index + 1,
                ", ".join(level["flags"]),
            )
        return level

    def speedup_of(self, plan: LevelPlan) -> float:
        levels = self.bench.load.levels()  # a repeat's index runs on past one pass
        return float(levels[plan.level_index % len(levels)][1] or 1.0)

    def memory(self, records: list[RequestRecord]) -> dict[str, Any]:
        """Peak memory and GPU energy from the level's first send to its last byte."""
        if not records or not self.sampler:
            return {**rss_peak(None), **NO_ENERGY}  # the fields of a peak, all unknown
        start = min(r.start_mono_s for r in records)
        end = max(r.end_mono_s for r in records)
        return {**self.sampler.peak(start, end), **self.sampler.energy(start, end)}


def warm_up_or_fail(bench: BenchConfig, endpoint: Endpoint, specs: list[RequestSpec]) -> None:
    """The unmeasured warm-up requests; each failure is said at once, and an engine that
    answers none of them ends the job."""
    load = bench.load
    warm = run_until_signal(
        warm_up(
            endpoint,
            specs,
            len(specs),
            load.request_timeout_s,
            keep_alive=bench.engine.keep_alive,
            idle_timeout_s=load.idle_timeout_s,
            on_failure=lambda r: log.warning(
                "warm-up request %d failed: %s: %s", -r.request_id, r.error_type, r.error_text
            ),
        )
    )
    if not any(r.ok for r in warm):
        raise EngineError(
            f"every warm-up request failed; first error: {warm[0].error_type}: {warm[0].error_text}"
        )
