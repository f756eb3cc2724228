"""A GGUF file's key/value metadata, read without loading its tensors.

gguf.GGUFReader parses every tokenizer string into numpy views (about 18 s for a 262k-token
vocabulary); the estimator needs a few scalars and the workloads one vocabulary, so this
walks the key/value section itself with the gguf package's constants, keeping only the
length of long arrays unless their key is asked for whole.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gguf import GGUF_MAGIC, GGUFValueType

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
        self.whole = False  # read the next array whole, however long

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
        keep_all, self.whole = self.whole, False
        if kind == GGUFValueType.STRING:
            if length > _ARRAY_KEEP_MAX and not keep_all:
                for _ in range(length):
                    self.pos += 8 + struct.unpack_from(self.order + "Q", self.data, self.pos)[0]
                return LongArray(length)
            return [self.string() for _ in range(length)]
        if kind == GGUFValueType.ARRAY:
            return [self.array() for _ in range(length)]
        fmt = _SCALAR_FORMATS[kind]
        if length > _ARRAY_KEEP_MAX and not keep_all:
            self.pos += length * struct.calcsize(fmt)
            return LongArray(length)
        return [self.take(fmt) for _ in range(length)]


class NotGGUF(ValueError):
    """The file does not start with GGUF's magic number."""


def read_gguf_metadata(path: Path, whole: Collection[str] = ()) -> dict[str, Any]:
    """The key/value metadata of a GGUF file; tensors are not read, and long arrays only
    for the keys in `whole`. Raises NotGGUF, or OSError/ValueError/struct.error for a file
    it cannot read (truncated, or an unknown value type)."""
    with path.open("rb") as handle:
        magic = handle.read(4)
    if len(magic) < 4 or struct.unpack("<I", magic)[0] != GGUF_MAGIC:
        raise NotGGUF(f"{str(path)!r} is not a GGUF file (starts with {magic!r})")
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        version = struct.unpack_from("<I", data, 4)[0]
        cursor = _Cursor(data, ">" if version & 0xFFFF == 0 else "<")  # big-endian file
        cursor.pos = 8
        _tensor_count, kv_count = cursor.take("Q"), cursor.take("Q")
        meta: dict[str, Any] = {}
        for _ in range(kv_count):
            key = cursor.string()
            cursor.whole = key in whole
            meta[key] = cursor.value(GGUFValueType(cursor.take("I")))
        return meta
