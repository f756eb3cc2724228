"""Will this model fit? The predicted memory of one deployment, by the engine's own rule.

Weights: the GGUF file size, else parameters x bits per weight. KV cache: exact (``kv``),
with each engine's rule for how many cells it allocates (``llamacpp``, ``vllm``). Compute
buffers and runtime overhead are documented approximations in those modules.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.fit.arch import Arch
from harness.fit.llamacpp import predict_llamacpp
from harness.fit.model import ModelFacts, resolve_model
from harness.fit.prediction import Prediction, check_counts, check_device
from harness.fit.vllm import VLLM_GPU_UTIL, predict_vllm

ENGINES = ("llamacpp", "ollama", "vllm")
_ENGINE_RULES = {"llamacpp_embedded": "llamacpp", "llamacpp": "llamacpp", "llama.cpp": "llamacpp"}


def engine_rule(engine_kind: str) -> str:
    """The memory rule an engine follows; engines not known here get llama.cpp's ('generic')."""
    kind = engine_kind.strip().lower()
    return _ENGINE_RULES.get(kind, kind if kind in ENGINES else "generic")


def predict(
    arch: Arch,
    engine: str,
    ctx_per_slot: int,
    parallel: int,
    weights_mib: float,
    kv_type: str = "f16",
    device: str = "gpu",
    gpu_total_mib: float | None = None,
    gpu_util: float = VLLM_GPU_UTIL,
    flash_attn: bool = True,
    cpu_kv_space_mib: float | None = None,
) -> Prediction:
    """The memory one engine needs for `parallel` slots of `ctx_per_slot` tokens each.

    For vLLM, `ctx_per_slot` is max_model_len and `parallel` max_num_seqs; on the CPU its
    KV pool is `cpu_kv_space_mib` (VLLM_CPU_KVCACHE_SPACE; None: vLLM's default).
    """
    check_counts(ctx_per_slot, parallel)
    check_device(device)
    rule = engine_rule(engine)
    if rule == "vllm":
        return predict_vllm(arch, ctx_per_slot, parallel, weights_mib, kv_type, device,
                            gpu_total_mib, gpu_util, cpu_kv_space_mib)  # fmt: skip
    return predict_llamacpp(arch, rule, ctx_per_slot, parallel, weights_mib, kv_type, device,
                            gpu_total_mib, flash_attn)  # fmt: skip


def predict_model(
    facts: ModelFacts, engine_kind: str, ctx_per_slot: int, parallel: int, **options: Any
) -> Prediction:
    """`predict` for resolved model facts (`options`: its keyword arguments after
    `weights_mib`), with where the figures come from filled in."""
    prediction = predict(
        facts.arch, engine_kind, ctx_per_slot, parallel, facts.weights_mib, **options
    )
    prediction.arch_source, prediction.weights_source = facts.arch.source, facts.weights_source
    prediction.quant = facts.quant
    return prediction


def predict_for_config(
    model: Any,
    engine_kind: str,
    ctx_per_slot: int,
    parallel: int,
    gguf_path: Path | None = None,
    kv_type: str | None = "f16",
    device: str = "gpu",
    gpu_total_mib: float | None = None,
    *,
    quant: str | None = None,
    hf_config: Path | None = None,
    gpu_util: float = VLLM_GPU_UTIL,
    flash_attn: bool = True,
    cpu_kv_space_mib: float | None = None,
    vllm_weights: str = "hf",
) -> Prediction:
    """Predict for a ModelConfig (or a dict of its fields) on one engine.

    kv_type None means the engine's default (16-bit); flash_attn False sizes llama.cpp's
    compute buffer for the KQ scores it then materialises.
    """
    for_vllm = engine_rule(engine_kind) == "vllm"
    facts = resolve_model(model, for_vllm, gguf_path, hf_config, quant, vllm_weights)
    return predict_model(
        facts,
        engine_kind,
        ctx_per_slot,
        parallel,
        kv_type=kv_type or "f16",
        device=device,
        gpu_total_mib=gpu_total_mib,
        gpu_util=gpu_util,
        flash_attn=flash_attn,
        cpu_kv_space_mib=cpu_kv_space_mib,
    )


def largest_fitting_ctx(fits: Callable[[int], bool], upper: int) -> int:
    """The largest context in 1..upper for which `fits` holds (0 if none); binary search."""
    if upper < 1 or not fits(1):
        return 0
    if fits(upper):
        return upper
    low, high = 1, upper  # fits(low) and not fits(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low
