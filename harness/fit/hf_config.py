"""The architecture in a Hugging Face ``config.json``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.fit.arch import Arch, FitError, swa_layer_flags

_TORCH_DTYPES = {"bfloat16": "BF16", "float16": "F16", "float32": "F32"}
_QUANT_METHODS = {"awq": "AWQ", "gptq": "GPTQ", "fp8": "FP8"}


def _hf_quant(config: Mapping[str, Any], top: Mapping[str, Any]) -> str | None:
    method = (top.get("quantization_config") or {}).get("quant_method")
    if method:
        return _QUANT_METHODS.get(str(method).lower())
    dtype = top.get("torch_dtype") or top.get("dtype") or config.get("torch_dtype")
    return _TORCH_DTYPES.get(str(dtype)) if dtype else None


def _hf_swa_layers(config: Mapping[str, Any], n_layers: int) -> tuple[bool, ...]:
    window = config.get("sliding_window")
    if config.get("use_sliding_window") is False:
        window = None
    layer_types = config.get("layer_types")
    if window and layer_types:
        return tuple(kind == "sliding_attention" for kind in layer_types)
    # HF's sliding_window_pattern N: every Nth layer is global, as llama.cpp's period N.
    return swa_layer_flags(n_layers, window, config.get("sliding_window_pattern"), default_all=True)


def arch_from_hf_config(source: Path | Mapping[str, Any]) -> Arch:
    """The architecture in a Hugging Face config.json (multimodal: its text_config)."""
    try:
        top = json.loads(source.read_text()) if isinstance(source, Path) else source
    except (OSError, json.JSONDecodeError) as exc:
        raise FitError(f"--hf-config={str(source)!r} cannot be read as JSON: {exc}") from exc
    config = top.get("text_config") or top
    try:
        n_layers = int(config["num_hidden_layers"])
        n_heads = int(config["num_attention_heads"])
        hidden = int(config["hidden_size"])
    except KeyError as exc:
        raise FitError(f"--hf-config has no {exc.args[0]!r}; is it a decoder model?") from exc
    head_dim = int(config.get("head_dim") or hidden // n_heads)
    swa_layers = _hf_swa_layers(config, n_layers)
    return Arch(
        name=str(config.get("model_type") or top.get("model_type") or "hf"),
        n_layers=n_layers,
        n_heads=n_heads,
        kv_heads=(int(config.get("num_key_value_heads") or n_heads),) * n_layers,
        head_dim_k=head_dim,
        head_dim_v=head_dim,
        hidden_size=hidden,
        vocab_size=config.get("vocab_size"),
        ffn_size=config.get("intermediate_size"),
        max_ctx=config.get("max_position_embeddings"),
        sliding_window=int(config["sliding_window"]) if any(swa_layers) else None,
        swa_layers=swa_layers,
        tie_embeddings=bool(top.get("tie_word_embeddings", config.get("tie_word_embeddings"))),
        quant=_hf_quant(config, top),
        source=f"hf:{source}" if isinstance(source, Path) else "hf:dict",
    )
