"""The architecture stated in a GGUF file's header, read without loading its tensors."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from gguf import LlamaFileType

from harness.fit.arch import Arch, FitError, per_layer, swa_layer_flags
from harness.gguf_meta import LongArray, NotGGUF
from harness.gguf_meta import read_gguf_metadata as read_metadata


def read_gguf_metadata(path: Path) -> dict[str, Any]:
    """The key/value metadata of a GGUF file; tensors are not read."""
    try:
        return read_metadata(path)
    except NotGGUF as exc:
        raise FitError(f"--gguf={exc}") from exc
    except (OSError, ValueError, struct.error) as exc:  # truncated, or an unknown value type
        raise FitError(f"--gguf={str(path)!r} cannot be read as GGUF: {exc}") from exc


# llama.cpp hard-codes the layer pattern of some architectures instead of storing it
# (src/llama-model.cpp, set_swa_pattern); Gemma 3 has 5 local layers to 1 global.
_LLAMA_CPP_SWA_PERIOD = {"gemma2": 2, "gemma3": 6, "gemma3n": 5, "cohere2": 4, "gpt-oss": 2}


def _file_type_name(value: Any) -> str | None:
    try:
        name = LlamaFileType(int(value)).name
    except (TypeError, ValueError):
        return None
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")


def _max_int(value: Any) -> int | None:
    if value is None:
        return None
    return max(int(v) for v in value) if isinstance(value, list) else int(value)


def arch_from_gguf(path: Path) -> Arch:
    """The architecture stated in a GGUF header (`{arch}.block_count`, ...)."""
    meta = read_gguf_metadata(path)
    name = str(meta.get("general.architecture", ""))

    def key(suffix: str, default: Any = None) -> Any:
        return meta.get(f"{name}.{suffix}", default)

    if key("block_count") is None or key("attention.head_count") is None:
        raise FitError(f"--gguf={str(path)!r} has no {name or '?'}.block_count/head_count keys")
    n_layers = int(key("block_count"))
    n_heads = _max_int(key("attention.head_count")) or 1
    hidden = int(key("embedding_length"))
    head_dim_k = int(key("attention.key_length", hidden // n_heads))
    window = key("attention.sliding_window")
    vocab = key("vocab_size") or meta.get("tokenizer.ggml.tokens")
    pattern = key("attention.sliding_window_pattern", _LLAMA_CPP_SWA_PERIOD.get(name))
    return Arch(
        name=name,
        n_layers=n_layers,
        n_heads=n_heads,
        kv_heads=per_layer(key("attention.head_count_kv", n_heads), n_layers, "head_count_kv"),
        head_dim_k=head_dim_k,
        head_dim_v=int(key("attention.value_length", head_dim_k)),
        hidden_size=hidden,
        vocab_size=vocab.length if isinstance(vocab, LongArray) else _len_or_int(vocab),
        ffn_size=_max_int(key("feed_forward_length")),
        max_ctx=_max_int(key("context_length")),
        sliding_window=int(window) if window else None,
        # llama.cpp keeps every layer dense unless it knows the pattern: an overestimate.
        swa_layers=swa_layer_flags(n_layers, window, pattern, default_all=False),
        quant=_file_type_name(meta.get("general.file_type")),
        source=f"gguf:{path}",
    )


def _len_or_int(value: Any) -> int | None:
    if value is None:
        return None
    return len(value) if isinstance(value, list) else int(value)
