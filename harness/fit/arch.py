"""A model's architecture as the estimator sees it, and the ``arch:`` mapping of a model YAML.

Three sources give the same ``Arch``: a GGUF header (``gguf_header``), a Hugging Face
``config.json`` (``hf_config``), and the ``arch:`` mapping of a ``conf/model/*.yaml`` file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class FitError(ValueError):
    """Input the estimator cannot use; the message names the flag or field, value and choices."""


@dataclass(frozen=True)
class Arch:
    """The shapes that size the KV cache and compute buffers; per-layer tuples where they vary."""

    name: str
    n_layers: int
    n_heads: int
    kv_heads: tuple[int, ...]  # KV heads of each layer (GQA/MQA: fewer than n_heads)
    head_dim_k: int
    head_dim_v: int
    hidden_size: int
    vocab_size: int | None = None
    ffn_size: int | None = None
    max_ctx: int | None = None
    sliding_window: int | None = None
    swa_layers: tuple[bool, ...] = ()  # True where a layer attends to the window only
    tie_embeddings: bool = False
    quant: str | None = None  # the weights' storage type, where the source says
    source: str = ""

    def is_swa(self, layer: int) -> bool:
        return bool(self.swa_layers) and self.swa_layers[layer]

    @property
    def has_swa(self) -> bool:
        return self.sliding_window is not None and any(self.swa_layers)


def estimate_params_b(arch: Arch) -> float:
    """Parameters (billions) of a dense decoder with a gated MLP, counted from its shapes."""
    q_dim = arch.n_heads * arch.head_dim_k
    ffn = arch.ffn_size or 4 * arch.hidden_size
    per_layer = [
        arch.hidden_size * (2 * q_dim + heads * (arch.head_dim_k + arch.head_dim_v))
        + 3 * arch.hidden_size * ffn
        for heads in arch.kv_heads
    ]
    embeddings = (arch.vocab_size or 0) * arch.hidden_size * (1 if arch.tie_embeddings else 2)
    return (sum(per_layer) + embeddings) / 1e9


def swa_pattern_layers(n_layers: int, period: int) -> tuple[bool, ...]:
    """llama.cpp's set_swa_pattern(period): a layer slides when il % period < period - 1."""
    if period <= 0:
        return (True,) * n_layers
    return tuple(layer % period < period - 1 for layer in range(n_layers))


def per_layer(value: Any, n_layers: int, field: str) -> tuple[int, ...]:
    """One value per layer: a list of exactly n_layers entries, or one value for every layer."""
    if isinstance(value, list | tuple):
        if len(value) != n_layers:
            raise FitError(f"{field} has {len(value)} entries; the model has {n_layers} layers")
        return tuple(int(v) for v in value)
    return (int(value),) * n_layers


def swa_layer_flags(
    n_layers: int, window: int | None, pattern: Any, default_all: bool
) -> tuple[bool, ...]:
    """Which layers slide: an explicit per-layer list, a llama.cpp period, or all/none."""
    if not window:
        return (False,) * n_layers
    if isinstance(pattern, list | tuple):
        flags = [bool(v) for v in pattern]
        return tuple(flags[layer % len(flags)] for layer in range(n_layers))
    if pattern is not None:
        return swa_pattern_layers(n_layers, int(pattern))
    return (default_all,) * n_layers


_YAML_ARCH_KEYS = (
    "n_layers", "n_heads", "n_kv_heads", "head_dim", "head_dim_k", "head_dim_v", "hidden_size",
    "vocab_size", "ffn_size", "max_ctx", "sliding_window", "swa_pattern", "swa_layers",
    "tie_embeddings",
)  # fmt: skip


def arch_from_dict(values: Mapping[str, Any], name: str = "model") -> Arch:
    """The architecture from a model YAML's ``arch:`` mapping (keys in _YAML_ARCH_KEYS)."""
    unknown = sorted(set(values) - set(_YAML_ARCH_KEYS))
    if unknown:
        raise FitError(
            f"model.arch has unknown keys {unknown}; allowed: {', '.join(_YAML_ARCH_KEYS)}"
        )
    get: Callable[[str], Any] = values.get
    missing = [k for k in ("n_layers", "n_heads", "hidden_size") if get(k) is None]
    if missing:
        raise FitError(f"model.arch of {name!r} lacks {', '.join(missing)}")
    n_layers, n_heads, hidden = int(get("n_layers")), int(get("n_heads")), int(get("hidden_size"))
    head_dim = int(get("head_dim") or hidden // n_heads)
    window = get("sliding_window")
    pattern = get("swa_layers") if get("swa_layers") is not None else get("swa_pattern")
    return Arch(
        name=name,
        n_layers=n_layers,
        n_heads=n_heads,
        kv_heads=per_layer(get("n_kv_heads") or n_heads, n_layers, "model.arch.n_kv_heads"),
        head_dim_k=int(get("head_dim_k") or head_dim),
        head_dim_v=int(get("head_dim_v") or head_dim),
        hidden_size=hidden,
        vocab_size=get("vocab_size"),
        ffn_size=get("ffn_size"),
        max_ctx=get("max_ctx"),
        sliding_window=int(window) if window else None,
        swa_layers=swa_layer_flags(n_layers, window, pattern, default_all=True),
        tie_embeddings=bool(get("tie_embeddings")),
        source=f"yaml:{name}",
    )
