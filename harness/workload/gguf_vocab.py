"""A GGUF model's tokenizer vocabulary, read from its header (harness.gguf_meta, which
says why not gguf.GGUFReader)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.gguf_meta import read_gguf_metadata

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


def read_vocabulary(path: Path) -> Vocabulary:
    """The vocabulary of a GGUF file; ValueError (NotGGUF) for another kind of file."""
    meta = read_gguf_metadata(path, whole=(TOKENS_KEY,))
    tokens = meta.get(TOKENS_KEY)
    if not isinstance(tokens, list) or not tokens:
        raise ValueError(f"{path} has no {TOKENS_KEY}")
    model = meta.get(MODEL_KEY)
    return Vocabulary(tuple(tokens), model if isinstance(model, str) else "llama")
