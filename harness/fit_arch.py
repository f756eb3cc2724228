"""What fit.py needs to know about a model: its architecture and how many bytes a weight takes.

Three sources give the same ``Arch``: a GGUF header, a Hugging Face ``config.json``, and the
``arch:`` mapping of a ``conf/model/*.yaml`` file.
"""

from __future__ import annotations

import importlib
import json
import mmap
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gguf import GGUF_MAGIC, GGUFValueType, LlamaFileType


class FitError(ValueError):
    """Input the estimator cannot use; the message names the flag or field, value and choices."""


# Effective bits per weight of a whole model file, so the embeddings and output layer that
# mixed quantizations keep at higher precision are counted. The GGUF K-quant mixes and Q4_0 /
# Q8_0 come from the sizes llama.cpp's `llama-quantize --help` prints for Llama-3-8B (e.g.
# "Q4_K_M : 4.58G"), as GiB x 2^33 / 8.03e9 parameters; IQ4_XS is the 4.25 bpw that table
# states. F32/F16/BF16 are exact; FP8 and AWQ/GPTQ int4 are 8 and 4 bits for the linear
# layers, plus scales (int4: one fp16 scale and zero per 128 weights, +0.25) and the
# embeddings and lm_head that stay 16-bit (about +0.25 on a 70B model, more on small ones).
QUANT_BITS_PER_WEIGHT: dict[str, float] = {
    "F32": 32.0,
    "F16": 16.0,
    "BF16": 16.0,
    "Q8_0": 8.52,
    "Q6_K": 6.57,
    "Q5_K_M": 5.70,
    "Q5_K_S": 5.57,
    "Q4_K_M": 4.90,
    "Q4_K_S": 4.67,
    "Q4_0": 4.64,
    "IQ4_XS": 4.25,
    "Q3_K_M": 4.00,
    "Q2_K": 3.17,
    "FP8": 8.25,
    "AWQ": 4.5,
    "GPTQ": 4.5,
}

# The bit width a quantization is named for; the original write-up's heuristic uses it.
QUANT_NOMINAL_BITS: dict[str, int] = {
    "F32": 32, "F16": 16, "BF16": 16, "Q8_0": 8, "Q6_K": 6, "Q5_K_M": 5, "Q5_K_S": 5,
    "Q4_K_M": 4, "Q4_K_S": 4, "Q4_0": 4, "IQ4_XS": 4, "Q3_K_M": 3, "Q2_K": 2, "FP8": 8,
    "AWQ": 4, "GPTQ": 4,
}  # fmt: skip


def nominal_bits(quant: str) -> int:
    """The bit width a quantization is named for (Q5_1 -> 5, IQ3_M -> 3); 16 if unnamed."""
    name = quant.upper()
    if name in QUANT_NOMINAL_BITS:
        return QUANT_NOMINAL_BITS[name]
    digits = re.match(r"I?Q(\d+)", name)
    return int(digits.group(1)) if digits else 16


def quant_name(value: str, flag: str = "--quant") -> str:
    """The table's spelling of a quantization name, or a FitError listing the known ones."""
    name = value.strip().upper().replace("-", "_")
    if name not in QUANT_BITS_PER_WEIGHT:
        choices = ", ".join(QUANT_BITS_PER_WEIGHT)
        raise FitError(f"{flag}={value!r} is not a known quantization; choose one of: {choices}")
    return name


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


def _per_layer(value: Any, n_layers: int, field: str) -> tuple[int, ...]:
    if isinstance(value, list | tuple):
        if len(value) != n_layers:
            raise FitError(f"{field} has {len(value)} entries; the model has {n_layers} layers")
        return tuple(int(v) for v in value)
    return (int(value),) * n_layers


def _swa_layers(
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


# ---------------------------------------------------------------- GGUF header

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
    """An array value that was skipped, not read; its length is what fit.py needs."""

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
        kv_heads=_per_layer(key("attention.head_count_kv", n_heads), n_layers, "head_count_kv"),
        head_dim_k=head_dim_k,
        head_dim_v=int(key("attention.value_length", head_dim_k)),
        hidden_size=hidden,
        vocab_size=vocab.length if isinstance(vocab, LongArray) else _len_or_int(vocab),
        ffn_size=_max_int(key("feed_forward_length")),
        max_ctx=_max_int(key("context_length")),
        sliding_window=int(window) if window else None,
        # llama.cpp keeps every layer dense unless it knows the pattern: an overestimate.
        swa_layers=_swa_layers(n_layers, window, pattern, default_all=False),
        quant=_file_type_name(meta.get("general.file_type")),
        source=f"gguf:{path}",
    )


def _len_or_int(value: Any) -> int | None:
    if value is None:
        return None
    return len(value) if isinstance(value, list) else int(value)


# ---------------------------------------------------------------- HF config.json and YAML

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
    return _swa_layers(n_layers, window, config.get("sliding_window_pattern"), default_all=True)


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
        kv_heads=_per_layer(get("n_kv_heads") or n_heads, n_layers, "model.arch.n_kv_heads"),
        head_dim_k=int(get("head_dim_k") or head_dim),
        head_dim_v=int(get("head_dim_v") or head_dim),
        hidden_size=hidden,
        vocab_size=get("vocab_size"),
        ffn_size=get("ffn_size"),
        max_ctx=get("max_ctx"),
        sliding_window=int(window) if window else None,
        swa_layers=_swa_layers(n_layers, window, pattern, default_all=True),
        tie_embeddings=bool(get("tie_embeddings")),
        source=f"yaml:{name}",
    )


# ---------------------------------------------------------------- a model config, resolved

MIB = 1024**2
VLLM_WEIGHTS = ("F32", "F16", "BF16", "FP8", "AWQ", "GPTQ")  # what vLLM serves from HF repos


def _field(model: Any, name: str) -> Any:
    return model.get(name) if isinstance(model, Mapping) else getattr(model, name, None)


def model_gguf_path(model: Any) -> Path | None:
    """The GGUF file of a packaged or local-file model config, if there is one here."""
    if _field(model, "source") == "package" and _field(model, "package"):
        return Path(importlib.import_module(_field(model, "package")).assemble())
    path = _field(model, "path")
    return Path(path).expanduser() if path and Path(path).expanduser().is_file() else None


@dataclass(frozen=True)
class ModelFacts:
    """What a prediction needs to know about the model, resolved once."""

    arch: Arch
    weights_mib: float
    weights_source: str
    quant: str | None
    params_b: float


def resolve_model(
    model: Any,
    for_vllm: bool = False,
    gguf_path: Path | None = None,
    hf_config: Path | None = None,
    quant: str | None = None,
) -> ModelFacts:
    """Architecture from, in order: a GGUF file, a config.json, the model's `arch:` mapping,
    the model's own GGUF; weights from the GGUF file size, else params x bits per weight."""
    name = str(_field(model, "name") or "model")
    if gguf_path is None and hf_config is None and not _field(model, "arch"):
        gguf_path = model_gguf_path(model)
        if gguf_path is None:
            raise FitError(
                f"model {name!r} states no architecture: add `arch:` to conf/model/{name}.yaml"
                " or give --gguf / --hf-config"
            )
    if gguf_path is not None:
        arch = arch_from_gguf(Path(gguf_path))
    elif hf_config is not None:
        arch = arch_from_hf_config(Path(hf_config))
    else:
        arch = arch_from_dict(dict(_field(model, "arch")), name)
    params_b = float(_field(model, "params_b") or estimate_params_b(arch))
    if gguf_path is not None:
        size_mib = Path(gguf_path).stat().st_size / MIB
        return ModelFacts(arch, size_mib, f"GGUF file size ({Path(gguf_path).name})",
                          arch.quant, params_b)  # fmt: skip
    weights_quant = _weights_quant(quant, _field(model, "quant") or arch.quant, for_vllm)
    bits = QUANT_BITS_PER_WEIGHT[weights_quant]
    source = f"{params_b:.2f}B params x {bits} bits/weight ({weights_quant})"
    return ModelFacts(arch, params_b * 1e9 * bits / 8 / MIB, source, weights_quant, params_b)


def _weights_quant(asked: str | None, stated: str | None, for_vllm: bool) -> str:
    if asked is not None:
        return quant_name(asked)
    if for_vllm and (stated or "").upper() not in VLLM_WEIGHTS:
        return "BF16"  # vLLM serves the HF checkpoint, not the GGUF the model file names
    if stated is None:
        raise FitError("no quantization is known for this model; give --quant (e.g. Q4_K_M)")
    return quant_name(stated, "model.quant")
