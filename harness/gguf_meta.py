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

from gguf import GGML_QUANT_SIZES, GGUF_MAGIC, GGMLQuantizationType, GGUFValueType

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


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the GGUF header states it: name, shape, storage type and exact size."""

    name: str
    shape: tuple[int, ...]
    ggml_type: str
    n_bytes: int

    @property
    def n_elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


def _tensor_info(cursor: _Cursor) -> TensorInfo:
    name = cursor.string()
    shape = tuple(int(cursor.take("Q")) for _ in range(cursor.take("I")))
    kind = GGMLQuantizationType(cursor.take("I"))
    cursor.take("Q")  # the data offset: not needed to size it
    block_size, type_size = GGML_QUANT_SIZES[kind]
    elements = 1
    for dim in shape:
        elements *= dim
    return TensorInfo(name, shape, kind.name, elements // block_size * type_size)


class NotGGUF(ValueError):
    """The file does not start with GGUF's magic number."""


def _read(
    path: Path, whole: Collection[str], tensors: bool
) -> tuple[dict[str, Any], list[TensorInfo]]:
    with path.open("rb") as handle:
        magic = handle.read(4)
    if len(magic) < 4 or struct.unpack("<I", magic)[0] != GGUF_MAGIC:
        raise NotGGUF(f"{str(path)!r} is not a GGUF file (starts with {magic!r})")
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        version = struct.unpack_from("<I", data, 4)[0]
        cursor = _Cursor(data, ">" if version & 0xFFFF == 0 else "<")  # big-endian file
        cursor.pos = 8
        tensor_count, kv_count = cursor.take("Q"), cursor.take("Q")
        meta: dict[str, Any] = {}
        for _ in range(kv_count):
            key = cursor.string()
            cursor.whole = key in whole
            meta[key] = cursor.value(GGUFValueType(cursor.take("I")))
        infos = [_tensor_info(cursor) for _ in range(tensor_count)] if tensors else []
        return meta, infos


def read_gguf_metadata(path: Path, whole: Collection[str] = ()) -> dict[str, Any]:
    """The key/value metadata of a GGUF file; tensors are not read, and long arrays only
    for the keys in `whole`. Raises NotGGUF, or OSError/ValueError/struct.error for a file
    it cannot read (truncated, or an unknown value type)."""
    return _read(path, whole, tensors=False)[0]


def read_gguf_tensors(path: Path) -> tuple[dict[str, Any], list[TensorInfo]]:
    """The metadata and every tensor's header (name, shape, type, bytes); no tensor data
    is read. Raises as read_gguf_metadata does."""
    return _read(path, (), tensors=True)
