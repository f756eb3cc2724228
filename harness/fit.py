"""Will this model fit? Predicted memory per engine, from the model's architecture.

    python -m harness.fit --model llama3.1-8b --quant Q4_K_M --ctx 32768 --gpu-gb 12

KV cache (exact): 2 (K and V) x layers x KV heads x head dim x bytes per element x cells,
with separate K/V head dims, per-layer KV heads, sliding-window layers and each engine's
rule for how many cells it allocates. Weights: the GGUF file size, else parameters x bits per
weight. Compute buffers and runtime overhead are documented approximations (see below).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.fit_arch import (
    MIB,
    Arch,
    FitError,
    ModelFacts,
    nominal_bits,
    resolve_model,
)

HEADROOM = 0.10  # "fits" leaves 10% of the device free
KV_PAD_CELLS = 256  # llama.cpp rounds the cells of each KV stream up to a multiple of 256
N_UBATCH = 512  # llama.cpp / Ollama default physical batch
# A CUDA context with cuBLAS handles takes about 300-500 MiB of device memory before anything
# is allocated (more on newer GPUs and drivers); 400 MiB is the middle.
CUDA_CONTEXT_MIB = 400.0
# Process RSS beyond model, KV and compute buffers for the embedded engine on the CPU (Python,
# llama.cpp libraries, tokenizer tables, server threads): about 90-110 MiB measured here.
CPU_RUNTIME_MIB = 100.0
VLLM_GPU_UTIL = 0.9
VLLM_BLOCK_TOKENS = 16
# vLLM >= 0.21 counts its CUDA graphs inside the budget; assumed 512 MiB at default sizes.
VLLM_CUDA_GRAPHS_MIB = 512.0

# Bytes per cached value: ggml block sizes (q8_0 stores 32 values in 34 bytes, q4_0 in 18);
# vLLM's "auto" is the model's 16-bit dtype and its fp8 variants take one byte.
KV_BYTES_PER_ELEMENT: dict[str, float] = {
    "f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q5_1": 24 / 32, "q5_0": 22 / 32,
    "q4_1": 20 / 32, "q4_0": 18 / 32, "iq4_nl": 18 / 32, "fp8": 1.0, "fp8_e4m3": 1.0,
    "fp8_e5m2": 1.0, "auto": 2.0,
}  # fmt: skip
ENGINES = ("llamacpp", "ollama", "vllm")
_ENGINE_RULES = {"llamacpp_embedded": "llamacpp", "llamacpp": "llamacpp", "llama.cpp": "llamacpp"}
DEVICES = ("gpu", "cpu")


def engine_rule(engine_kind: str) -> str:
    """The memory rule an engine follows; engines not known here get llama.cpp's ('generic')."""
    kind = engine_kind.strip().lower()
    return _ENGINE_RULES.get(kind, kind if kind in ENGINES else "generic")


def pad_up(value: int, multiple: int = KV_PAD_CELLS) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class CacheCells:
    """KV cells an engine allocates: per stream (sequence slot) for full and window layers."""

    streams: int
    full_per_stream: int
    swa_per_stream: int


def llamacpp_cells(
    arch: Arch, ctx_per_slot: int, parallel: int, unified: bool, n_ubatch: int = N_UBATCH
) -> CacheCells:
    """llama.cpp: n_ctx = ctx x parallel; one padded stream per slot unless the cache is unified.

    Window layers keep window (x slots when unified) + n_ubatch cells, padded, at most all.
    """
    streams, full = (
        (1, pad_up(ctx_per_slot * parallel)) if unified else (parallel, pad_up(ctx_per_slot))
    )
    if not arch.has_swa:
        return CacheCells(streams, full, full)
    window = (arch.sliding_window or 0) * (parallel if unified else 1) + n_ubatch
    return CacheCells(streams, full, min(full, pad_up(window)))


def kv_cache_bytes(arch: Arch, cells: CacheCells, kv_type: str) -> float:
    """Sum over layers of (K dim + V dim) x KV heads x cells x bytes per element."""
    per_element = kv_bytes_per_element(kv_type)
    total = 0.0
    for layer, heads in enumerate(arch.kv_heads):
        per_stream = cells.swa_per_stream if arch.is_swa(layer) else cells.full_per_stream
        total += heads * (arch.head_dim_k + arch.head_dim_v) * per_stream * cells.streams
    return total * per_element


def kv_bytes_per_token(arch: Arch, kv_type: str) -> float:
    """KV bytes one token takes across all layers (no window saving: vLLM's page size)."""
    dims = sum(heads * (arch.head_dim_k + arch.head_dim_v) for heads in arch.kv_heads)
    return dims * kv_bytes_per_element(kv_type)


def kv_bytes_per_element(kv_type: str) -> float:
    """Bytes one cached value takes; a FitError names the allowed types."""
    if kv_type not in KV_BYTES_PER_ELEMENT:
        raise FitError(
            f"--kv-type={kv_type!r} is not valid; choose one of: {', '.join(KV_BYTES_PER_ELEMENT)}"
        )
    return KV_BYTES_PER_ELEMENT[kv_type]


def llamacpp_compute_bytes(
    arch: Arch, cells: CacheCells, n_outputs: int, flash_attn: bool = True, n_ubatch: int = N_UBATCH
) -> float:
    """Worst-case graph buffer: the KQ masks stay live; the peak is the largest of three points.

    FFN: n_ubatch x (4 ffn + 2 hidden) floats; attention without flash attention: the KQ scores,
    n_ubatch x cells x heads floats (+ 4 hidden); output: n_outputs x vocab logits. Matches
    llama.cpp's own logs to within 2%: gemma3-270m on the CPU (flash attention, measured here)
    and a 32-layer Mistral-7B at 2K/32K on CUDA (164/2144 MiB, fedora-copr/logdetective#106).
    """
    mask_bytes = 2 if flash_attn else 4
    masked_cells = cells.full_per_stream + (cells.swa_per_stream if arch.has_swa else 0)
    masks = n_ubatch * masked_cells * mask_bytes
    ffn = arch.ffn_size or 4 * arch.hidden_size
    ffn_point = n_ubatch * (4 * ffn + 2 * arch.hidden_size) * 4
    scores = 2 * arch.head_dim_k if flash_attn else cells.full_per_stream
    attention_point = n_ubatch * (scores * arch.n_heads + 4 * arch.hidden_size) * 4
    output_point = (n_outputs * (arch.vocab_size or 0) + n_ubatch * arch.hidden_size) * 4
    return masks + max(ffn_point, attention_point, output_point)


def vllm_activation_bytes(arch: Arch, batched_tokens: int) -> float:
    """Peak activations of vLLM's profiling run: tokens x (3 ffn + 3 hidden) bf16 values.

    Fits vllm-project/vllm#10517 (Llama-3.1-8B: 2.07 GiB over weights for 20,000 tokens).
    """
    ffn = arch.ffn_size or 4 * arch.hidden_size
    return batched_tokens * (3 * ffn + 3 * arch.hidden_size) * 2


def vllm_batched_tokens(gpu_total_mib: float) -> int:
    """vLLM's default max_num_batched_tokens for `vllm serve`: 8192 on >= 70 GiB GPUs, else 2048."""
    return 8192 if gpu_total_mib >= 70 * 1024 else 2048


def vllm_kv_tokens(pool_bytes: float, arch: Arch, kv_type: str) -> int:
    """Tokens the KV pool holds: whole blocks of 16 tokens ("GPU KV cache size: N tokens")."""
    block_bytes = kv_bytes_per_token(arch, kv_type) * VLLM_BLOCK_TOKENS
    return max(0, int(pool_bytes // block_bytes)) * VLLM_BLOCK_TOKENS


@dataclass
class Prediction:
    """Predicted memory of one deployment, in MiB, with the rule that produced it."""

    engine: str
    device: str
    ctx_per_slot: int
    parallel: int
    kv_type: str
    weights_mib: float
    kv_cache_mib: float
    compute_buffer_mib: float
    overhead_mib: float
    total_mib: float
    method: str
    kv_cells: int  # cells the full-attention layers hold, over all slots
    arch_source: str = ""
    weights_source: str = ""
    gpu_total_mib: float | None = None
    fits: bool | None = None
    kv_tokens_capacity: int | None = None  # vLLM: tokens of KV its pool holds
    quant: str | None = None  # weights type

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
) -> Prediction:
    """The memory one engine needs for `parallel` slots of `ctx_per_slot` tokens each."""
    _check_counts(ctx_per_slot, parallel)
    if device not in DEVICES:
        raise FitError(f"--device={device!r} is not valid; choose one of: {', '.join(DEVICES)}")
    rule = engine_rule(engine)
    if rule == "vllm":
        return _predict_vllm(arch, ctx_per_slot, parallel, weights_mib, kv_type, device,
                             gpu_total_mib, gpu_util)  # fmt: skip
    unified = rule == "ollama"  # Ollama: one cache of num_ctx x parallel cells
    cells = llamacpp_cells(arch, ctx_per_slot, parallel, unified)
    # Current llama.cpp reserves logits for one token per slot; Ollama and unknown engines
    # are taken to reserve them for the whole batch, as llama.cpp used to.
    n_outputs = parallel if rule == "llamacpp" else N_UBATCH
    compute = llamacpp_compute_bytes(arch, cells, n_outputs, flash_attn)
    if device == "cpu":  # the logits buffer lives in host memory
        compute += n_outputs * (arch.vocab_size or 0) * 4
    overhead = CPU_RUNTIME_MIB if device == "cpu" else CUDA_CONTEXT_MIB
    kv_mib = kv_cache_bytes(arch, cells, kv_type) / MIB
    total = weights_mib + kv_mib + compute / MIB + overhead
    layout = "1 unified stream" if unified else f"{cells.streams} stream(s)"
    window = f", window layers {cells.swa_per_stream}" if arch.has_swa else ""
    method = (
        f"{rule} rule: KV {layout} x {cells.full_per_stream} cells (padded to {KV_PAD_CELLS})"
        f"{window}; compute buffer = masks + max(FFN, attention, logits) at n_ubatch"
        f" {N_UBATCH}, flash attention {'on' if flash_attn else 'off'}; overhead = "
        + ("process runtime (CPU)" if device == "cpu" else "CUDA context")
    )
    return Prediction(
        engine=rule, device=device, ctx_per_slot=ctx_per_slot, parallel=parallel,
        kv_type=kv_type, weights_mib=weights_mib, kv_cache_mib=kv_mib,
        compute_buffer_mib=compute / MIB, overhead_mib=overhead, total_mib=total, method=method,
        kv_cells=cells.full_per_stream * cells.streams, gpu_total_mib=gpu_total_mib,
        fits=None if gpu_total_mib is None else total <= (1 - HEADROOM) * gpu_total_mib,
    )  # fmt: skip


def _predict_vllm(
    arch: Arch,
    ctx_per_slot: int,
    parallel: int,
    weights_mib: float,
    kv_type: str,
    device: str,
    gpu_total_mib: float | None,
    gpu_util: float,
) -> Prediction:
    """vLLM takes gpu_util x GPU memory; what weights, activations and overhead leave is KV."""
    if device != "gpu":
        raise FitError("--device='cpu' is not valid with --engine='vllm'; its rule is for GPUs")
    batched = vllm_batched_tokens(gpu_total_mib or 0.0)
    activation_mib = vllm_activation_bytes(arch, batched) / MIB
    overhead = CUDA_CONTEXT_MIB + VLLM_CUDA_GRAPHS_MIB
    base_mib = weights_mib + activation_mib + overhead
    capacity: int | None = None
    if gpu_total_mib is None:  # no budget known: the least it needs
        kv_mib = kv_bytes_per_token(arch, kv_type) * ctx_per_slot * parallel / MIB
    else:  # the KV pool takes the rest of the share; none left: vLLM does not start
        kv_mib = max(0.0, gpu_util * gpu_total_mib - base_mib)
        capacity = vllm_kv_tokens(kv_mib * MIB, arch, kv_type)
    total = base_mib + kv_mib
    # It fits when the pool holds every slot's full context and the share leaves the headroom.
    fits = None
    if capacity is not None:
        fits = capacity >= ctx_per_slot * parallel and gpu_util <= 1 - HEADROOM + 1e-9
    method = (
        f"vllm rule: pre-allocates {gpu_util:g} x GPU memory; KV pool = that - weights -"
        f" activations ({batched} batched tokens) - overhead (CUDA context + CUDA graphs);"
        f" capacity in blocks of {VLLM_BLOCK_TOKENS} tokens; fits when it holds ctx x parallel"
    )
    return Prediction(
        engine="vllm", device=device, ctx_per_slot=ctx_per_slot, parallel=parallel,
        kv_type=kv_type, weights_mib=weights_mib, kv_cache_mib=kv_mib,
        compute_buffer_mib=activation_mib, overhead_mib=overhead, total_mib=total, method=method,
        kv_cells=ctx_per_slot * parallel, gpu_total_mib=gpu_total_mib, fits=fits,
        kv_tokens_capacity=capacity,
    )  # fmt: skip


def _check_counts(ctx_per_slot: int, parallel: int) -> None:
    if ctx_per_slot < 1:
        raise FitError(f"--ctx={ctx_per_slot!r} is not valid; it must be an integer >= 1")
    if parallel < 1:
        raise FitError(f"--parallel={parallel!r} is not valid; it must be an integer >= 1")


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


@dataclass(frozen=True)
class Heuristic:
    """The original write-up's rule of thumb, in GB, kept beside the estimate for comparison."""

    weights_gb: float
    kv_gb: float
    overhead_gb: float
    total_gb: float
    label: str = "original write-up heuristic"


def original_heuristic(params_b: float, quant: str, ctx_tokens: int) -> Heuristic:
    """weights = params_b x bits/8 x 1.25; kv = params_b/7 x ctx/4096 x 0.5; overhead 0.8 GB."""
    weights = params_b * nominal_bits(quant) / 8 * 1.25
    kv = params_b / 7 * ctx_tokens / 4096 * 0.5
    return Heuristic(weights, kv, 0.8, weights + kv + 0.8)


def predict_model(
    facts: ModelFacts,
    engine_kind: str,
    ctx_per_slot: int,
    parallel: int,
    kv_type: str = "f16",
    device: str = "gpu",
    gpu_total_mib: float | None = None,
    gpu_util: float = VLLM_GPU_UTIL,
    flash_attn: bool = True,
) -> Prediction:
    """`predict` for resolved model facts, with where the figures come from filled in."""
    prediction = predict(
        facts.arch, engine_kind, ctx_per_slot, parallel, facts.weights_mib, kv_type, device,
        gpu_total_mib, gpu_util, flash_attn,
    )  # fmt: skip
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
) -> Prediction:
    """Predict for a ModelConfig (or a dict of its fields) on one engine.

    kv_type None means the engine's default (16-bit); flash_attn False sizes llama.cpp's
    compute buffer for the KQ scores it then materialises.
    """
    facts = resolve_model(model, engine_rule(engine_kind) == "vllm", gguf_path, hf_config, quant)
    return predict_model(
        facts, engine_kind, ctx_per_slot, parallel, kv_type or "f16", device, gpu_total_mib,
        gpu_util, flash_attn,
    )  # fmt: skip


# ---------------------------------------------------------------- model files

MODEL_DIR = Path(__file__).resolve().parent.parent / "conf" / "model"


def available_models(model_dir: Path = MODEL_DIR) -> list[str]:
    return sorted(path.stem for path in model_dir.glob("*.yaml"))


def load_model_yaml(name: str, model_dir: Path = MODEL_DIR) -> dict[str, Any]:
    """The fields of conf/model/<name>.yaml, or a FitError listing the known names."""
    path = model_dir / f"{name}.yaml"
    if not path.is_file():
        raise FitError(
            f"--model={name!r} is not a known model; choose one of: "
            + ", ".join(available_models(model_dir))
        )
    values = yaml.safe_load(path.read_text()) or {}
    return {"name": name, **values}


if __name__ == "__main__":
    from harness.fit_cli import main

    sys.exit(main())
