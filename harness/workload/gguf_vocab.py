"""A GGUF model's tokenizer vocabulary, read from its header with the gguf package's
constants.

gguf.GGUFReader turns every tensor and tokenizer string into numpy views (about 40 s for
a 262k-token vocabulary on a small CPU); this walks the key/value section once and keeps
only the tokenizer's strings and its model name (under a second).
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

from gguf import GGUF_MAGIC, GGUFValueType

_SIZES = {
    GGUFValueType.UINT8: 1, GGUFValueType.INT8: 1, GGUFValueType.UINT16: 2,
    GGUFValueType.INT16: 2, GGUFValueType.UINT32: 4, GGUFValueType.INT32: 4,
    GGUFValueType.FLOAT32: 4, GGUFValueType.BOOL: 1, GGUFValueType.UINT64: 8,
    GGUFValueType.INT64: 8, GGUFValueType.FLOAT64: 8,
}  # fmt: skip
TOKENS_KEY = "tokenizer.ggml.tokens"
MODEL_KEY = "tokenizer.ggml.model"


@dataclass(frozen=True)
class Vocabulary:
    """The tokenizer's pieces and its kind: `llama` (SentencePiece, "▁" for a space) or
    `gpt2` (byte-level BPE, "Ġ" for a space)."""

    tokens: tuple[str, ...]
    model: str

    @property
    def space(self) -> str:
        return "Ġ" if self.model == "gpt2" else "▁"


class _Walker:
    def __init__(self, data: mmap.mmap) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> int:
        value = struct.unpack_from("<" + fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        length = self.take("Q")
        text = bytes(self.data[self.pos : self.pos + length]).decode("utf-8", "replace")
        self.pos += length
        return text

    def skip(self, kind: GGUFValueType) -> None:
        if kind == GGUFValueType.STRING:
            length = self.take("Q")
            self.pos += length
        elif kind == GGUFValueType.ARRAY:
            item, count = GGUFValueType(self.take("I")), self.take("Q")
            if item in _SIZES:
                self.pos += _SIZES[item] * count
            else:
                for _ in range(count):
                    self.skip(item)
        else:
            self.pos += _SIZES[kind]


def read_vocabulary(path: Path) -> Vocabulary:
    """The vocabulary of a GGUF file (little-endian GGUF v2/v3)."""
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        walker = _Walker(data)
        if walker.take("I") != GGUF_MAGIC:
            raise ValueError(f"{path} is not a GGUF file")
        walker.take("I")  # version
        walker.take("Q")  # tensor count
        tokens: tuple[str, ...] = ()
        model = "llama"
        for _ in range(walker.take("Q")):
            key = walker.string()
            kind = GGUFValueType(walker.take("I"))
            if key == TOKENS_KEY and kind == GGUFValueType.ARRAY:
                walker.take("I")
                tokens = tuple(walker.string() for _ in range(walker.take("Q")))
            elif key == MODEL_KEY and kind == GGUFValueType.STRING:
                model = walker.string()
            else:
                walker.skip(kind)
    if not tokens:
        raise ValueError(f"{path} has no {TOKENS_KEY}")
    return Vocabulary(tokens, model)
