"""Command line of the memory estimator: `python -m harness.fit` / `make fit`."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.config.engine import EngineConfig
from harness.fit.arch import FitError
from harness.fit.heuristic import original_heuristic
from harness.fit.kv import KV_BYTES_PER_ELEMENT, kv_bytes_per_element
from harness.fit.model import available_models, load_model_yaml, model_gguf_path, resolve_model
from harness.fit.predict import ENGINES, largest_fitting_ctx, predict_model
from harness.fit.prediction import HEADROOM, Prediction, check_counts
from harness.fit.quant import QUANT_BITS_PER_WEIGHT, quant_name
from harness.fit.speed import decode_ceiling, gpu_bandwidth
from harness.fit.vllm import VLLM_GPU_UTIL


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m harness.fit", description="Predict whether a model fits in memory."
    )
    parser.add_argument("--model", help="a conf/model/<name>.yaml name, e.g. llama3.1-8b")
    parser.add_argument("--quant", help=f"weights type: {', '.join(QUANT_BITS_PER_WEIGHT)}")
    parser.add_argument(
        "--ctx", type=int, default=4096, help="context per slot, tokens (vLLM: max_model_len)"
    )
    parser.add_argument("--gpu-gb", type=float, help="device memory in GiB (RAM with --device cpu)")
    parser.add_argument("--engine", default="llamacpp", help=f"one of: {', '.join(ENGINES)}")
    parser.add_argument(
        "--parallel", type=int, default=1, help="slots / concurrent sequences (vLLM: max_num_seqs)"
    )
    parser.add_argument("--kv-type", default="f16", help=", ".join(KV_BYTES_PER_ELEMENT))
    parser.add_argument("--gguf", type=Path, help="read the architecture from this GGUF file")
    parser.add_argument("--hf-config", type=Path, help="read it from this config.json")
    parser.add_argument("--device", default="gpu", help="gpu or cpu (cpu: no CUDA context)")
    parser.add_argument("--gpu-util", type=float, default=VLLM_GPU_UTIL, help="vLLM's share")
    parser.add_argument(
        "--vllm-weights",
        choices=EngineConfig.VLLM_WEIGHTS,
        help="what vLLM loads (engine.vllm_weights)",
    )
    parser.add_argument(
        "--cpu-kv-gib", type=float, help="vLLM on the CPU: VLLM_CPU_KVCACHE_SPACE (default 4)"
    )
    parser.add_argument("--no-flash-attn", action="store_true", help="llama.cpp/Ollama -fa off")
    parser.add_argument("--gpu", help="a GPU's name (e.g. 'RTX 4090'): its decode ceiling")
    parser.add_argument("--gpu-bw", type=float, help="the GPU's memory bandwidth, GB/s")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser.parse_args(argv)


def _check_args(args: argparse.Namespace) -> None:
    if args.engine not in ENGINES:
        raise FitError(
            f"--engine={args.engine!r} is not valid; choose one of: {', '.join(ENGINES)}"
        )
    if args.gpu_gb is not None and args.gpu_gb <= 0:
        raise FitError(f"--gpu-gb={args.gpu_gb!r} is not valid; it must be > 0")
    if args.cpu_kv_gib is not None and args.cpu_kv_gib <= 0:
        raise FitError(f"--cpu-kv-gib={args.cpu_kv_gib!r} is not valid; it must be > 0")
    if not 0 < args.gpu_util <= 1:
        raise FitError(f"--gpu-util={args.gpu_util!r} is not valid; it must be in (0, 1]")
    if args.model is None and args.gguf is None and args.hf_config is None:
        raise FitError(
            "give --model (one of: " + ", ".join(available_models()) + "), --gguf or --hf-config"
        )
    if args.gguf is not None and not args.gguf.is_file():
        raise FitError(f"--gguf={str(args.gguf)!r}: no such file")
    kv_bytes_per_element(args.kv_type)
    if args.quant is not None:
        quant_name(args.quant)
    check_counts(args.ctx, args.parallel)


def report(args: argparse.Namespace) -> dict[str, Any]:
    """Prediction, largest fitting context and the original heuristic, as one mapping."""
    _check_args(args)
    model = load_model_yaml(args.model) if args.model else {"name": "model"}
    facts = resolve_model(model, args.engine == "vllm", args.gguf, args.hf_config, args.quant,
                          args.vllm_weights)  # fmt: skip
    gpu_mib = None if args.gpu_gb is None else args.gpu_gb * 1024

    def run(ctx: int) -> Prediction:
        return predict_model(
            facts,
            args.engine,
            ctx,
            args.parallel,
            kv_type=args.kv_type,
            device=args.device,
            gpu_total_mib=gpu_mib,
            gpu_util=args.gpu_util,
            flash_attn=not args.no_flash_attn,
            cpu_kv_space_mib=None if args.cpu_kv_gib is None else args.cpu_kv_gib * 1024,
        )

    prediction = run(args.ctx)
    largest = None
    if gpu_mib is not None:
        upper = facts.arch.max_ctx or 1 << 20
        largest = largest_fitting_ctx(lambda ctx: bool(run(ctx).fits), upper)
    quant = facts.quant or "F16"
    heuristic = original_heuristic(facts.params_b, quant, args.ctx * args.parallel)
    result = {
        "model": model["name"],
        "quant": quant,
        "prediction": prediction.to_dict(),
        "largest_ctx_per_slot": largest,
        "heuristic": asdict(heuristic),
    }
    if args.gpu is not None or args.gpu_bw is not None:
        bandwidth, named = gpu_bandwidth(args.gpu, args.gpu_bw)
        gguf = args.gguf if args.gguf is not None else gguf_for(model, args.engine)
        speed = decode_ceiling(facts, gguf, args.kv_type, args.ctx, bandwidth)
        result["decode_ceiling"] = {"gpu": named, **speed}
    return result


def gguf_for(model: dict[str, Any], engine: str) -> Path | None:
    """The model's own GGUF where llama.cpp or Ollama serve it as it is."""
    return None if engine == "vllm" else model_gguf_path(model)


def format_report(result: dict[str, Any]) -> str:
    p, h = result["prediction"], result["heuristic"]
    rows = [
        ("weights", p["weights_mib"], f"{h['weights_gb']:.2f}"),
        ("KV cache", p["kv_cache_mib"], f"{h['kv_gb']:.2f}"),
        ("compute buffer", p["compute_buffer_mib"], "-"),
        ("overhead", p["overhead_mib"], f"{h['overhead_gb']:.2f}"),
        ("total", p["total_mib"], f"{h['total_gb']:.2f}"),
    ]
    lines = [
        f"{result['model']} {result['quant']} on {p['engine']} ({p['device']}): "
        f"{p['parallel']} slot(s) x {p['ctx_per_slot']} tokens, KV {p['kv_type']}",
        f"{'':16}{'this estimate':>22}   {h['label']}",
        f"{'component':16}{'MiB':>11}{'GiB':>11}   {'GB':>6}",
    ]
    lines += [f"{name:16}{mib:>11.1f}{mib / 1024:>11.2f}   {gb:>6}" for name, mib, gb in rows]
    if p["kv_tokens_capacity"] is not None:
        lines += vllm_pool_lines(p)
    if p["gpu_total_mib"] is not None:
        lines.append(verdict_line(p))
        lines.append(f"largest context per slot that fits: {result['largest_ctx_per_slot']} tokens")
    lines += [f"weights: {p['weights_source']}; architecture: {p['arch_source']}", p["method"]]
    if "decode_ceiling" in result:
        lines += speed_lines(result["decode_ceiling"], p["ctx_per_slot"])
    return "\n".join(lines)


def verdict_line(p: dict[str, Any]) -> str:
    """The verdict and its rule: vLLM's share of the card and one full sequence in its
    pool, or the total within the headroom."""
    verdict = "fits" if p["fits"] else "does NOT fit"
    card = f"{p['gpu_total_mib'] / 1024:g} GiB {p['device'].upper()}"
    if p["gpu_util"] is not None and p["device"] == "gpu":
        share = p["gpu_util"] * p["gpu_total_mib"]
        return (
            f"{card}, vLLM's share {share:.0f} MiB (free on an empty card), its KV pool"
            f" {'holds' if p['fits'] else 'cannot hold'} one {p['ctx_per_slot']}-token sequence:"
            f" {verdict}"
        )
    limit = (1 - HEADROOM) * p["gpu_total_mib"]
    return f"{card}, limit with {HEADROOM:.0%} headroom {limit:.0f} MiB: {verdict}"


def speed_lines(speed: dict[str, Any], ctx: int) -> list[str]:
    """How fast at most: one stream's decode ceiling, bound by memory bandwidth."""
    return [
        f"how fast at most on {speed['gpu']}:",
        f"  decode ceiling, one stream: {speed['tokens_per_s_empty_context']:,.0f} tok/s"
        f" ({speed['weight_bytes_per_step'] / 2**20:,.0f} MiB of weights read per token),"
        f" {speed['tokens_per_s_full_context']:,.0f} tok/s with {ctx} tokens of context",
    ]


def vllm_pool_lines(p: dict[str, Any]) -> list[str]:
    """What vLLM's KV pool holds: tokens, full-length sequences, and how many run at once."""
    capacity, ctx = p["kv_tokens_capacity"], p["ctx_per_slot"]
    return [
        f"KV pool holds {capacity} tokens (vLLM 'GPU KV cache size')"
        f" = {capacity // ctx} full-length sequence(s) of {ctx} tokens",
        f"full-length sequences at once: {p['full_length_sequences']}"
        f" (at most max_num_seqs {p['parallel']})",
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = report(args)
    except FitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
