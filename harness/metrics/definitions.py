"""Every metric's name, unit, direction and definition, once.

Tables, figure labels and the README read METRICS; `harness.metrics.level` computes them.
"""

from __future__ import annotations

from dataclasses import dataclass

STATISTICS = ("mean", "p50", "p90", "p99", "max", "n")
# A percentile needs samples enough to mean something: below these counts it is None
# (p99 of 16 requests would be their maximum, which `max` already says).
MIN_SAMPLES = {"p90": 10, "p99": 100}


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    better: str  # "lower" | "higher"
    definition: str


METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric(
            "ttft_ms",
            "TTFT",
            "ms",
            "lower",
            "request on the wire -> first streamed chunk that carries generated content "
            "(role-only and empty deltas do not count)",
        ),
        Metric(
            "ttfb_ms",
            "TTFB",
            "ms",
            "lower",
            "request on the wire -> first byte of the response body",
        ),
        Metric(
            "itl_ms",
            "ITL",
            "ms",
            "lower",
            "gap between consecutive content chunks of one request (all gaps of a level "
            "pooled); per chunk, so comparable with TPOT only where tokens per chunk is 1",
        ),
        Metric(
            "tpot_ms",
            "TPOT",
            "ms",
            "lower",
            "(E2E - TTFT) / (output tokens - 1), for requests with at least 2 output tokens",
        ),
        Metric("e2e_ms", "E2E latency", "ms", "lower", "request on the wire -> last byte"),
        Metric(
            "client_wait_ms",
            "client wait",
            "ms",
            "lower",
            "request due (its worker was free, or the open-loop schedule said so) -> its "
            "bytes handed to the socket: the client's own delay, incl. a wait for a free "
            "slot under a concurrency cap, the wait for its event loop's send turn "
            "(requests open connections one at a time, in the order due) and opening a "
            "new connection (connect_ms); "
            "flagged client_wait when the p99 of the wait less connect_ms is > 1 ms",
        ),
        Metric(
            "connect_ms",
            "connect",
            "ms",
            "lower",
            "opening a new connection for a request (once it has the send turn), part of "
            "the client's wait (every "
            "request with keep-alive off; a worker's first with it on)",
        ),
        Metric(
            "ttft_from_due_ms",
            "TTFT from due",
            "ms",
            "lower",
            "open loops only: request due -> first content chunk, as a user who arrived on "
            "schedule feels it (client wait + TTFT)",
        ),
        Metric(
            "e2e_from_due_ms",
            "E2E from due",
            "ms",
            "lower",
            "open loops only: request due -> last byte (client wait + E2E)",
        ),
        Metric(
            "output_tokens_per_s_per_request",
            "per-request tok/s",
            "tok/s",
            "higher",
            "output tokens / E2E latency, per request",
        ),
        Metric(
            "decode_tokens_per_s_per_request",
            "per-request decode rate",
            "tok/s",
            "higher",
            "(output tokens - 1) / (E2E - TTFT), per request",
        ),
        Metric(
            "aggregate_output_tokens_per_s",
            "aggregate tok/s",
            "tok/s",
            "higher",
            "output tokens of all successful requests of a level / the level's wall time "
            "(first request sent -> last request finished); diluted by ramp-up and drain",
        ),
        Metric(
            "steady_output_tokens_per_s",
            "steady tok/s",
            "tok/s",
            "higher",
            "output tokens that arrived in the steady window / its length; the window: "
            "closed loop and bursts, every worker busy (the last worker's first send -> the "
            "first worker out of work); open loop, first request finished -> last request "
            "sent. What tables and figures lead with",
        ),
        Metric(
            "steady_requests_per_s",
            "steady requests/s",
            "req/s",
            "higher",
            "successful requests that finished in the steady window / its length",
        ),
        Metric(
            "tokens_per_chunk",
            "tokens per chunk",
            "tok",
            "higher",
            "usage output tokens / content chunks, over successful requests with usage; "
            "not 1: ITL is per chunk (flagged multi_token_chunks), TPOT is per token",
        ),
        Metric(
            "reached_max_tokens_share",
            "reached max_tokens",
            "fraction",
            "higher",
            "share of successful requests whose output reached the max_tokens they asked "
            "for; below 0.95 where the workload asked for fixed lengths: flagged "
            "short_outputs",
        ),
        Metric(
            "output_tokens_mean",
            "mean output tokens",
            "tok",
            "higher",
            "output tokens per successful request, mean",
        ),
        Metric(
            "prefix_cache_hit_rate",
            "prefix-cache hit rate",
            "fraction",
            "lower",
            "cached prompt tokens / prompt tokens, over requests whose usage says how many "
            "were cached (usage.prompt_tokens_details.cached_tokens); null where none says",
        ),
        Metric(
            "requests_per_s",
            "requests/s",
            "req/s",
            "higher",
            "successful requests of a level / the level's wall time (diluted like aggregate tok/s)",
        ),
        Metric("error_rate", "error rate", "fraction", "lower", "failed requests / requests sent"),
        Metric(
            "goodput",
            "goodput",
            "fraction",
            "higher",
            "share of requests sent that succeeded and met the TTFT and TPOT targets",
        ),
        Metric(
            "peak_memory_mib",
            "peak memory",
            "MiB",
            "lower",
            "GPU memory used on the engine's devices, summed over them (tensor parallel), at "
            "the sample of the level where that sum peaks (NVML, nothing subtracted); its "
            "devices are those on which NVML's per-process query finds the engine's process "
            "tree, else those it was given (CUDA_VISIBLE_DEVICES), else every device, named "
            "in peak_memory_devices; beside it peak_engine_process_mib (NVML's figure for the "
            "engine's processes, where it reports one) and peak_memory_above_baseline_mib "
            "(minus the same devices' memory before the engine started); for a CPU engine "
            "(embedded llama.cpp, or no GPU layers) or without NVML: peak RSS of the engine's "
            "process tree, labelled process_rss; null for a server on another machine",
        ),
        Metric(
            "energy_j",
            "GPU energy",
            "J",
            "lower",
            "energy of the engine's GPUs (as for peak memory) from a level's first send to "
            "its last byte: the change of NVML's energy counter, or where a GPU has none its "
            "power samples integrated (energy_source says which); the whole devices', idle "
            "draw included; null without NVML",
        ),
        Metric(
            "mean_power_w",
            "mean GPU power",
            "W",
            "lower",
            "GPU energy / the level's time from first send to last byte",
        ),
        Metric(
            "decode_bandwidth_utilisation",
            "% of bandwidth ceiling",
            "fraction",
            "higher",
            "(weight bytes read per decode step + running sequences x KV bytes per sequence "
            "at the level's mean context depth) x decode steps/s / the machine's peak memory "
            "bandwidth (environment.json ceilings.memory_bandwidth_gbs); steps/s = 1 / mean "
            "TPOT; running sequences = steady tok/s x mean TPOT, between 1 and the "
            "concurrency; weights: the served GGUF's tensors (a tied embedding once, as the "
            "output projection; the token-embedding lookup not counted; an MoE's active "
            "experts only) or a checkpoint's parameters x dtype; flagged far_from_ceiling "
            "where a GPU run's single stream is under 0.25; inputs in ceiling_inputs",
        ),
        Metric(
            "decode_ceiling_tokens_per_s",
            "decode ceiling",
            "tok/s",
            "higher",
            "the level's running sequences x peak memory bandwidth / bytes read per decode "
            "step: the tok/s at which its decode would be bound by memory bandwidth alone",
        ),
        Metric(
            "prefill_compute_utilisation",
            "% of compute ceiling (prefill)",
            "fraction",
            "higher",
            "at one stream (closed loop or burst of 1): (2 x active matmul params less the "
            "output projection) x mean prompt tokens + 2 x the output projection (it runs "
            "for the last token only) / mean TTFT (which stands for the prefill) / the "
            "machine's peak dense compute (ceilings.compute_tflops); null at other levels",
        ),
        Metric(
            "energy_per_output_token_j",
            "energy per output token",
            "J/tok",
            "lower",
            "GPU energy / output tokens of the level's successful requests",
        ),
    )
}


def metrics_markdown() -> str:
    """The metric definitions as a markdown table (the README embeds this output)."""
    lines = ["| metric | key | unit | better | definition |", "| --- | --- | --- | --- | --- |"]
    for metric in METRICS.values():
        lines.append(
            f"| {metric.label} | `{metric.key}` | {metric.unit} | {metric.better} "
            f"| {metric.definition} |"
        )
    return "\n".join(lines) + "\n"
