"""Bytes one decode step reads from memory: the weights it multiplies by, plus the KV cache.

A step multiplies every weight matrix once (an MoE's active experts only) and looks up one
row of the token embedding, which is not counted; a tied embedding is read whole as the
output projection. The KV part uses the fit's formula (``harness.fit.kv``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.fit.arch import Arch, FitError
from harness.fit.gguf_header import arch_from_gguf
from harness.fit.hf_config import arch_from_hf_config
from harness.fit.kv import CacheCells, kv_cache_bytes
from harness.gguf_meta import TensorInfo, read_gguf_tensors

# Tensors a step reads one row of (a lookup), not the whole matrix.
GGUF_LOOKUPS = ("token_embd.weight", "per_layer_token_embd.weight", "position_embd.weight",
                "token_types.weight")  # fmt: skip
GGUF_OUTPUT = "output.weight"
GGUF_EMBEDDING = "token_embd.weight"
EXPERT_MARK = "_exps."  # llama.cpp's stacked expert tensors: blk.N.ffn_{gate,up,down}_exps
# config.json's name for the routed experts' count, by model family (Mixtral, Qwen, DeepSeek).
MOE_EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts")


@dataclass(frozen=True)
class DecodeWeights:
    """What one decode step reads of the weights, and the matmul parameters it multiplies."""

    weight_bytes: float  # read per step: every matrix once, active experts only
    active_params: float  # matmul parameters one token multiplies (output projection incl.)
    output_params: float  # of which the output projection (prefill runs it for one token)
    source: str  # where the figures come from, named

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _expert_share(meta: dict[str, Any]) -> float:
    arch = str(meta.get("general.architecture", ""))
    total, used = meta.get(f"{arch}.expert_count"), meta.get(f"{arch}.expert_used_count")
    return float(used) / float(total) if total and used else 1.0


def weights_from_tensors(
    meta: dict[str, Any], tensors: list[TensorInfo], dtype_bytes: float | None = None
) -> tuple[float, float, float]:
    """(bytes, active matmul params, output params) of GGUF tensors; with `dtype_bytes`,
    each weight costs that many bytes (the GGUF dequantised, as vLLM serves it)."""
    names = {tensor.name for tensor in tensors}
    tied = GGUF_OUTPUT not in names
    share = _expert_share(meta)
    total_bytes = active = output = 0.0
    for tensor in tensors:
        is_output = tensor.name == GGUF_OUTPUT or (tied and tensor.name == GGUF_EMBEDDING)
        if tensor.name in GGUF_LOOKUPS and not is_output:
            continue
        part = share if EXPERT_MARK in tensor.name else 1.0
        stored = tensor.n_bytes if dtype_bytes is None else tensor.n_elements * dtype_bytes
        total_bytes += stored * part
        if len(tensor.shape) >= 2:  # norms and biases are not matrix products
            active += tensor.n_elements * part
            output += tensor.n_elements if is_output else 0.0
    return total_bytes, active, output


def gguf_decode_weights(path: Path, dtype_bytes: float | None = None) -> DecodeWeights:
    """The exact tensor sizes of a GGUF file (or its element counts x `dtype_bytes`)."""
    try:
        meta, tensors = read_gguf_tensors(path)
    except (OSError, ValueError) as exc:
        raise FitError(f"{str(path)!r} cannot be read as GGUF: {exc}") from exc
    weight_bytes, active, output = weights_from_tensors(meta, tensors, dtype_bytes)
    how = "tensor sizes" if dtype_bytes is None else f"elements x {dtype_bytes:g} bytes"
    return DecodeWeights(weight_bytes, active, output, f"GGUF {how} ({path.name})")


def hf_decode_weights(config: dict[str, Any], dtype_bytes: float | None = None) -> DecodeWeights:
    """Parameters x dtype from a Hugging Face config.json: attention, MLP (an MoE's active
    experts, its router and shared experts) and the output projection, once."""
    text = config.get("text_config") or config
    try:
        hidden, layers = int(text["hidden_size"]), int(text["num_hidden_layers"])
        heads, vocab = int(text["num_attention_heads"]), int(text["vocab_size"])
    except KeyError as exc:
        raise FitError(f"config.json has no {exc.args[0]!r}; is it a decoder model?") from exc
    head_dim = int(text.get("head_dim") or hidden // heads)
    kv_heads = int(text.get("num_key_value_heads") or heads)
    attention = hidden * head_dim * (2 * heads + 2 * kv_heads)
    mlp = _hf_mlp_params(text, hidden)
    output = float(vocab * hidden)
    active = layers * (attention + mlp) + output
    dtype = str(config.get("torch_dtype") or config.get("dtype") or text.get("torch_dtype"))
    per_weight = dtype_bytes or {"float32": 4.0, "float16": 2.0, "bfloat16": 2.0}.get(dtype)
    if per_weight is None:
        raise FitError(f"config.json torch_dtype={dtype!r}: give the bytes per weight")
    source = f"config.json: {active / 1e9:.3f}B active params x {per_weight:g} bytes"
    return DecodeWeights(active * per_weight, active, output, source)


def _hf_mlp_params(text: dict[str, Any], hidden: int) -> float:
    experts = next((text[k] for k in MOE_EXPERT_KEYS if text.get(k)), None)
    if not experts:
        return 3.0 * hidden * int(text.get("intermediate_size") or 4 * hidden)
    used = int(text.get("num_experts_per_tok") or 1)
    expert_ffn = int(text.get("moe_intermediate_size") or text["intermediate_size"])
    shared_ffn = int(text.get("shared_expert_intermediate_size") or 0)
    shared_ffn += int(text.get("n_shared_experts") or 0) * expert_ffn
    return 3.0 * hidden * (used * expert_ffn + shared_ffn) + hidden * int(experts)


def kv_bytes_per_sequence(arch: Arch, depth_tokens: float, kv_type: str) -> float:
    """KV bytes one step reads for a sequence `depth_tokens` deep (window layers: at most
    the window), by the fit's formula."""
    depth = max(int(round(depth_tokens)), 0)
    window = arch.sliding_window or depth
    cells = CacheCells(streams=1, full_per_stream=depth, swa_per_stream=min(depth, window))
    return kv_cache_bytes(arch, cells, kv_type)


@dataclass(frozen=True)
class DecodeBytes:
    """Weights read per step and the architecture that sizes the KV cache read beside them."""

    weights: DecodeWeights
    arch: Arch
    kv_type: str

    def kv_bytes(self, depth_tokens: float) -> float:
        return kv_bytes_per_sequence(self.arch, depth_tokens, self.kv_type)


def decode_bytes_per_step(
    kv_type: str,
    gguf_path: Path | None = None,
    hf_config: dict[str, Any] | None = None,
    dtype_bytes: float | None = None,
) -> DecodeBytes:
    """What one decode step reads of the weights served: a GGUF file's tensors (with
    `dtype_bytes`: dequantised to that width) or a checkpoint's config.json."""
    if gguf_path is not None:
        weights = gguf_decode_weights(gguf_path, dtype_bytes)
        return DecodeBytes(weights, arch_from_gguf(gguf_path), kv_type)
    if hf_config is not None:
        return DecodeBytes(
            hf_decode_weights(hf_config, dtype_bytes), arch_from_hf_config(hf_config), kv_type
        )
    raise FitError("decode_bytes_per_step needs a GGUF file or a config.json")
