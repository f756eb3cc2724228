"""The model group's schema (conf/model/*.yaml): which model and where it comes from."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from harness.config.checks import ConfigError, require_choice
from harness.config.secrets import refuse_secret_in_url
from harness.constants import HF_TOKEN_ENV

MODEL_SOURCES = ("package", "gguf_file", "gguf_url", "hf_repo", "ollama", "served")


@dataclass
class ModelConfig:
    """Which model, where it comes from, and (for harness.fit) its architecture."""

    name: str = "gemma3-270m"
    source: str = "package"
    package: str | None = None  # python package with assemble() -> GGUF path
    path: str | None = None  # local GGUF file
    url: str | None = None  # GGUF download address
    sha256: str | None = None
    hf_repo: str | None = None
    ollama_tag: str | None = None
    served_name: str | None = None  # the name the server knows the model by
    quant: str | None = None
    # A 4-bit (AWQ or GPTQ) repository of this model, for vLLM with engine.vllm_weights=awq|gptq
    vllm_quant_repo: str | None = None
    params_b: float | None = None  # parameters, in billions
    arch: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        require_choice("model.source", self.source, MODEL_SOURCES)
        needs = {
            "package": "package",
            "gguf_file": "path",
            "gguf_url": "url",
            "hf_repo": "hf_repo",
            "ollama": "ollama_tag",
            "served": "served_name",
        }[self.source]
        if not getattr(self, needs):
            raise ConfigError(f"model.{needs} is required when model.source={self.source!r}")
        refuse_secret_in_url(
            "model.url",
            self.url,
            "a secret in the config would be stored with every run; a download that needs a "
            f"Hugging Face token reads it from the {HF_TOKEN_ENV} environment variable",
        )
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ConfigError(
                f"model.sha256={self.sha256!r} is not valid; it must be 64 lowercase hex digits"
            )
