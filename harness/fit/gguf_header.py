"""The architecture stated in a GGUF file's header, read without loading its tensors."""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gguf import GGUF_MAGIC, GGUFValueType, LlamaFileType

from harness.fit.arch import Arch, FitError, per_layer, swa_layer_flags

# gguf.GGUFReader parses every tokenizer string into numpy views (about 18 s for a 262k-token
# vocabulary); the estimator needs a few scalars, so it walks the key/value section itself with
# the gguf package's constants and keeps only the length of long arrays.
_SCALAR_FORMATS: dict[GGUFValueType, str] = {
    GGUFValueType.UINT8: "B", GGUFValueType.INT8: "b", GGUFValueType.UINT16: "H",
    GGUFValueType.INT16: "h", GGUFValueType.UINT32: "I", GGUFValueType.INT32: "i",
    GGUFValueType.FLOAT32: "f", GGUFValueType.BOOL: "?", GGUFValueType.UINT64: "Q",
    GGUFValueType.INT64: "q", GGUFValueType.FLOAT64: "d",
}  # fmt: skip
_ARRAY_KEEP_MAX = 4096


@dataclass(frozen=True)
class LongArray:
    """An array value that was skipped, not read; its length is what the estimator needs."""

    length: int


class _Cursor:
    def __init__(self, data: mmap.mmap, order: str) -> None:
        self.data, self.order, self.pos = data, order, 0

    def take(self, fmt: str) -> Any:
        value = struct.unpack_from(self.order + fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        length = self.take("Q")
        text = bytes(self.data[self.pos : self.pos + length]).decode("utf-8", "replace")
        self.pos += length
        return text

    def value(self, kind: GGUFValueType) -> Any:
        if kind == GGUFValueType.STRING:
            return self.string()
        if kind == GGUFValueType.ARRAY:
            return self.array()
        return self.take(_SCALAR_FORMATS[kind])

    def array(self) -> list[Any] | LongArray:
        kind = GGUFValueType(self.take("I"))
        length = self.take("Q")
        if kind == GGUFValueType.STRING:
            if length > _ARRAY_KEEP_MAX:
                for _ in range(length):
                    self.pos += 8 + struct.unpack_from(self.order + "Q", self.data, self.pos)[0]
                return LongArray(length)
            return [self.string() for _ in range(length)]
        if kind == GGUFValueType.ARRAY:
            return [self.array() for _ in range(length)]
        fmt = _SCALAR_FORMATS[kind]
        if length > _ARRAY_KEEP_MAX:
            self.pos += length * struct.calcsize(fmt)
            return LongArray(length)
        return [self.take(fmt) for _ in range(length)]


def read_gguf_metadata(path: Path) -> dict[str, Any]:
    """The key/value metadata of a GGUF file; tensors are not read."""
    with path.open("rb") as handle:
        magic = handle.read(4)
    if len(magic) < 4 or struct.unpack("<I", magic)[0] != GGUF_MAGIC:
        raise FitError(f"--gguf={str(path)!r} is not a GGUF file (starts with {magic!r})")
    try:
        with (
            path.open("rb") as handle,
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data,
        ):
            version = struct.unpack_from("<I", data, 4)[0]
            cursor = _Cursor(data, ">" if version & 0xFFFF == 0 else "<")  # big-endian file
            cursor.pos = 8
            _tensor_count, kv_count = cursor.take("Q"), cursor.take("Q")
            meta: dict[str, Any] = {}
            for _ in range(kv_count):
                key = cursor.string()
                meta[key] = cursor.value(GGUFValueType(cursor.take("I")))
            return meta
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
