"""Each level beside the machine's ceilings: how much of the memory bandwidth its decode
used, the decode ceiling in tok/s, and the compute its prefill used (one stream).

Definitions live in harness.metrics.definitions; this computes them from a level's summary.
"""

from __future__ import annotations

from typing import Any

from harness.ceiling.decode_bytes import DecodeBytes

FAR_FROM_CEILING = "far_from_ceiling"
FAR_FROM_CEILING_BELOW = 0.25  # a GPU's single stream under this share: CPU or partial offload
SINGLE_STREAM_MODES = ("concurrency", "burst")


def _mean_per_request(level: dict[str, Any], total_key: str) -> float | None:
    ok = level.get("requests_ok") or 0
    total = level.get(total_key)
    return total / ok if ok and total is not None else None


def _tokens_per_s(level: dict[str, Any]) -> float | None:
    return level.get("steady_output_tokens_per_s") or level.get("aggregate_output_tokens_per_s")


def level_ceiling(
    level: dict[str, Any], decode: DecodeBytes, ceilings: dict[str, Any]
) -> dict[str, Any]:
    """The level's ceiling figures and every input they came from (None where a figure's
    input is missing: no TPOT, no bandwidth known)."""
    prompt_mean = _mean_per_request(level, "prompt_tokens_total")
    output_mean = _mean_per_request(level, "output_tokens_total")
    depth = (prompt_mean or 0.0) + (output_mean or 0.0) / 2  # mean depth while decoding
    tpot_ms = (level.get("tpot_ms") or {}).get("mean")
    steps_per_s = 1000.0 / tpot_ms if tpot_ms else None
    tok_s = _tokens_per_s(level)
    concurrency = max(int(level.get("concurrency") or 1), 1)
    running = 1.0
    if steps_per_s and tok_s:  # sequences decoded side by side in one step
        running = min(max(tok_s / steps_per_s, 1.0), float(concurrency))
    kv_bytes = decode.kv_bytes(depth)
    bytes_per_step = decode.weights.weight_bytes + running * kv_bytes
    bandwidth_gbs = ceilings.get("memory_bandwidth_gbs")
    bandwidth = bandwidth_gbs * 1e9 if bandwidth_gbs else None
    inputs = {
        "device": ceilings.get("device"),
        "memory_bandwidth_gbs": bandwidth_gbs,
        "compute_tflops": ceilings.get("compute_tflops"),
        "weight_bytes_per_step": decode.weights.weight_bytes,
        "weights_source": decode.weights.source,
        "kv_type": decode.kv_type,
        "mean_context_depth_tokens": depth,
        "kv_bytes_per_sequence": kv_bytes,
        "running_sequences": running,
        "bytes_per_step": bytes_per_step,
        "decode_steps_per_s": steps_per_s,
        "active_params": decode.weights.active_params,
        "prompt_tokens_mean": prompt_mean,
    }
    figures: dict[str, Any] = {
        "decode_bandwidth_utilisation": (
            bytes_per_step * steps_per_s / bandwidth if bandwidth and steps_per_s else None
        ),
        "decode_ceiling_tokens_per_s": running * bandwidth / bytes_per_step if bandwidth else None,
        "prefill_compute_utilisation": _prefill(level, decode, ceilings, prompt_mean, inputs),
        "memory_bandwidth_gbs": bandwidth_gbs,
        "ceiling_inputs": inputs,
    }
    return figures


def _prefill(
    level: dict[str, Any],
    decode: DecodeBytes,
    ceilings: dict[str, Any],
    prompt_mean: float | None,
    inputs: dict[str, Any],
) -> float | None:
    """2 x active params x prompt tokens / prefill time / peak, at one stream only, where
    TTFT stands for the prefill; the output projection runs for the last token alone."""
    ttft_ms = (level.get("ttft_ms") or {}).get("mean")
    tflops = ceilings.get("compute_tflops")
    one_stream = level.get("concurrency") == 1 and level.get("mode", "concurrency") in (
        SINGLE_STREAM_MODES
    )
    if not (one_stream and ttft_ms and tflops and prompt_mean):
        return None
    weights = decode.weights
    flop = 2 * (weights.active_params - weights.output_params) * prompt_mean
    flop += 2 * weights.output_params
    inputs["prefill_flop"] = flop
    inputs["prefill_s"] = ttft_ms / 1000.0
    return flop / (ttft_ms / 1000.0) / (tflops * 1e12)


def far_from_ceiling(level: dict[str, Any], device: str | None) -> bool:
    """A GPU run's single-stream decode under a quarter of its ceiling."""
    utilisation = level.get("decode_bandwidth_utilisation")
    return (
        device == "gpu"
        and level.get("concurrency") == 1
        and utilisation is not None
        and utilisation < FAR_FROM_CEILING_BELOW
    )
