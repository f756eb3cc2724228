"""What vLLM loaded, read from its own engine-config line, and the weights it is given.

vLLM's HTTP API says nothing of its weights (/v1/models has the model's root, /metrics only
the cache config); every build logs its resolved config once at start:
  Initializing a V1 LLM engine (v0.10.0) with config: model='org/m', ...,
  dtype=torch.bfloat16, ..., load_format=auto, ..., quantization=awq_marlin, ...
(vllm/v1/engine/core.py; VllmConfig.__str__). The keys have been stable from 0.10 to 0.32.
"""

from __future__ import annotations

import re
from typing import Any

CONFIG_LINE = re.compile(
    r"Initializing a V[01] LLM engine \(v(?P<version>[^)\s]+)\) with config: (?P<cfg>.*)"
)
FIELDS = {
    "model": re.compile(r"""^model=(?P<q>['"])(?P<v>.*?)(?P=q), """),
    "dtype": re.compile(r", dtype=(?:torch\.)?(?P<v>\w+)"),
    "quantization": re.compile(r", quantization=(?P<v>[\w.-]+)"),
    "load_format": re.compile(r", load_format=(?:LoadFormat\.)?(?P<v>[\w-]+)"),
}
DTYPE_NAMES = {"bfloat16": "BF16", "float16": "F16", "half": "F16", "float32": "F32"}
# What each choice of engine.vllm_weights must show as its quantization method.
EXPECTED_METHOD = {"gguf": "gguf", "awq": "awq", "gptq": "gptq"}


def loaded_config(log_text: str) -> dict[str, str]:
    """model, dtype, quantization and load_format from the last engine-config line ({}:
    no such line)."""
    lines = CONFIG_LINE.findall(log_text)
    if not lines:
        return {}
    version, cfg = lines[-1]
    found = {"version": version}
    for key, pattern in FIELDS.items():
        match = pattern.search(cfg)
        if match:
            found[key] = match["v"].lower() if key != "model" else match["v"]
    return found


def dtype_name(dtype: str | None) -> str | None:
    return DTYPE_NAMES.get(dtype or "", dtype.upper() if dtype else None)


def method_mismatch(choice: str, loaded: dict[str, str]) -> str | None:
    """Why what vLLM loaded is not what engine.vllm_weights asked for (None: it is)."""
    expected = EXPECTED_METHOD.get(choice)
    method = loaded.get("quantization") or "none"
    if not loaded or expected is None or expected in method:
        return None
    return (
        f"engine.vllm_weights={choice} asks for {expected}, but vLLM loaded quantization={method}"
    )


def quant_of(choice: str, loaded: dict[str, str], gguf_type: str | None) -> str | None:
    """The quantisation a row is labelled with: the GGUF's type for gguf, the method
    (awq_marlin, gptq_marlin, fp8...) for a quantised checkpoint, else the dtype."""
    if not loaded:
        return None
    method = loaded.get("quantization")
    if choice == "gguf" and method == "gguf":
        return gguf_type or "GGUF"
    if method and method != "none":
        return method.upper()
    return dtype_name(loaded.get("dtype"))


def read_back(choice: str, loaded: dict[str, str], gguf_type: str | None) -> dict[str, Any]:
    """The fields of a vLLM run's weights record that come from its engine-config line
    (`loaded`, as loaded_config read it)."""
    return {
        "quant": quant_of(choice, loaded, gguf_type),
        "quant_from": "vLLM's engine config line (quantization, dtype)"
        if loaded
        else "not read back: no engine config line in the server's log",
        "dtype": dtype_name(loaded.get("dtype")),
        "quantization_method": loaded.get("quantization"),
        "load_format": loaded.get("load_format"),
        "loaded_model": loaded.get("model"),
    }
