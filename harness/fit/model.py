"""A model config resolved into what a prediction needs: architecture, weights size, quant."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.constants import MIB
from harness.fit.arch import Arch, FitError, arch_from_dict, estimate_params_b
from harness.fit.gguf_header import arch_from_gguf
from harness.fit.hf_config import arch_from_hf_config
from harness.fit.quant import QUANT_BITS_PER_WEIGHT, quant_name

MODEL_DIR = Path(__file__).resolve().parents[2] / "conf" / "model"


def available_models(model_dir: Path = MODEL_DIR) -> list[str]:
    return sorted(path.stem for path in model_dir.glob("*.yaml"))


def load_model_yaml(name: str, model_dir: Path = MODEL_DIR) -> dict[str, Any]:
    """The fields of conf/model/<name>.yaml, or a FitError listing the known names."""
    path = model_dir / f"{name}.yaml"
    if not path.is_file():
        raise FitError(
            f"--model={name!r} is not a known model; choose one of: "
            + ", ".join(available_models(model_dir))
        )
    values = yaml.safe_load(path.read_text()) or {}
    return {"name": name, **values}


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
    vllm_weights: str | None = None,
) -> ModelFacts:
    """Architecture from, in order: a GGUF file, a config.json, the model's `arch:` mapping,
    the model's own GGUF; weights from the GGUF file size (for vLLM only with
    vllm_weights=gguf: else it serves the checkpoint, its 4-bit copy, or the GGUF
    dequantised), else params x bits per weight."""
    choice = vllm_weights or "hf"
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
    if gguf_path is not None and (not for_vllm or choice == "gguf"):
        size_mib = Path(gguf_path).stat().st_size / MIB
        return ModelFacts(arch, size_mib, f"GGUF file size ({Path(gguf_path).name})",
                          arch.quant, params_b)  # fmt: skip
    stated = _field(model, "quant") or arch.quant
    if for_vllm and choice in ("awq", "gptq"):
        weights_quant, why = choice.upper(), f" (engine.vllm_weights={choice})"
    elif for_vllm and choice == "hf" and quant and quant_name(quant) not in VLLM_WEIGHTS:
        weights_quant = "BF16"
        why = f" (vLLM serves the checkpoint; {quant} is served only with vllm_weights=gguf)"
    else:
        weights_quant, why = _weights_quant(quant, stated, for_vllm and choice != "gguf"), ""
    bits = QUANT_BITS_PER_WEIGHT[weights_quant]
    source = f"{params_b:.2f}B params x {bits} bits/weight ({weights_quant}){why}"
    return ModelFacts(arch, params_b * 1e9 * bits / 8 / MIB, source, weights_quant, params_b)


def _weights_quant(asked: str | None, stated: str | None, for_vllm: bool) -> str:
    if asked is not None:
        return quant_name(asked)
    if for_vllm and (stated or "").upper() not in VLLM_WEIGHTS:
        # vLLM serves the HF checkpoint, or the GGUF dequantised, not the GGUF's own blocks
        return "BF16"
    if stated is None:
        raise FitError("no quantization is known for this model; give --quant (e.g. Q4_K_M)")
    return quant_name(stated, "model.quant")
