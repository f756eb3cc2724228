"""What a run served: the weights' format, quantisation as the engine reports it, the file's
sha256 where there is one, and where they came from. Two rows are the same model only when
these agree (`weights_id`); the report flags rows that are compared across different ones.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gguf import LlamaFileType

from harness.gguf_meta import NotGGUF, read_gguf_metadata

log = logging.getLogger(__name__)

SOURCES = {
    "package": "packaged GGUF",
    "gguf_file": "local GGUF",
    "gguf_url": "downloaded GGUF",
    "hf_repo": "HF repository",
    "ollama": "Ollama library",
    "served": "served by the server",
}


def file_type_name(file_type: int | None) -> str | None:
    """GGUF's general.file_type as llama.cpp and Ollama spell it: 15 -> "Q4_K_M"."""
    if file_type is None:
        return None
    try:
        name = LlamaFileType(int(file_type)).name
    except ValueError:
        return f"file_type {file_type}"
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")


def gguf_file_type(path: Path) -> str | None:
    """The quantisation a GGUF file states of itself (general.file_type), or None."""
    try:
        return file_type_name(read_gguf_metadata(path).get("general.file_type"))
    except (NotGGUF, OSError, ValueError) as exc:
        log.info("no file type in %s: %s", path, exc)
        return None


def short_digest(sha256: str | None) -> str:
    return (sha256 or "")[:12]


def weights_label(weights: dict[str, Any]) -> str:
    """A short name for tables: "Q4_K_M gguf a5fd3b62230a", "Q8_0 Ollama library
    gemma3:270m 9f2e...", "BF16 from gguf a5fd3b62230a (dequantised)", "AWQ HF repository
    org/repo"."""
    quant = weights.get("quant") or "?"
    digest = short_digest(weights.get("sha256"))
    if weights.get("dequantised_from"):
        return f"{quant} from gguf {digest} (dequantised)"
    if weights.get("tag"):
        return " ".join(
            p for p in (quant, weights.get("source") or "?", weights["tag"], digest) if p
        )
    if digest:
        return f"{quant} {weights.get('format') or 'file'} {digest}"
    where = weights.get("repo") or weights.get("name") or "?"
    return f"{quant} {weights.get('source') or '?'} {where}"


def weights_id(weights: dict[str, Any]) -> str:
    """What decides "the same weights": the file's sha256 and the quantisation it was
    served in (a GGUF dequantised to bf16 is not the GGUF); without a file, the repository
    or tag and its quantisation."""
    where = weights.get("sha256") or weights.get("repo") or weights.get("tag") or "?"
    return f"{where}:{weights.get('quant') or '?'}"


def gguf_weights(
    info: dict[str, Any], quant: str | None, quant_from: str, **extra: Any
) -> dict[str, Any]:
    """The record of a GGUF file served as it is; `info` is describe_gguf's."""
    return {
        "format": "gguf",
        "quant": quant,
        "quant_from": quant_from,
        "sha256": info.get("sha256"),
        "file": Path(str(info.get("path") or "")).name or None,
        "size_bytes": info.get("size_bytes"),
        "source": SOURCES.get(str(info.get("source")), str(info.get("source"))),
        **extra,
    }


def finish(weights: dict[str, Any], asked_quant: str | None) -> dict[str, Any]:
    """Add the label, the identity and, where the config named a quantisation the engine
    did not report, that difference."""
    done = {**weights, "label": weights_label(weights), "id": weights_id(weights)}
    log.info("weights served: %s (quantisation: %s)", done["label"], done.get("quant_from"))
    if asked_quant and done.get("quant") and not same_quant(asked_quant, done["quant"]):
        done["config_quant"] = asked_quant
        log.warning(
            "model.quant=%s, but the engine serves %s: the run is labelled %s",
            asked_quant,
            done["quant"],
            done["label"],
        )
    return done


def same_quant(one: str, other: str) -> bool:
    return one.strip().upper() == other.strip().upper()
