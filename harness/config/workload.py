"""The workload group's schema (conf/workload/*.yaml): what each request asks for."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.config.checks import ConfigError, require_choice, require_positive

WORKLOAD_KINDS = ("prompts", "synthetic")
API_FLAVOURS = ("chat", "completions")


@dataclass
class WorkloadConfig:
    """What each request asks for."""

    name: str = "original"
    kind: str = "prompts"
    api: str = "chat"
    prompts: list[str] = field(default_factory=list)
    max_tokens: int = 64
    # Ask the server to generate exactly max_tokens (llama.cpp, vLLM honour it).
    ignore_eos: bool = True
    temperature: float = 0.0
    # synthetic workload: prompt and output lengths drawn from seeded distributions
    prompt_tokens: int = 128
    prompt_tokens_stddev: float = 0.0
    output_tokens_stddev: float = 0.0
    # Words of a seeded opening shared by every prompt, so that prefix caches hit on
    # purpose (0: none; every prompt of a job is distinct).
    shared_prefix_tokens: int = 0
    seed: int = 0

    def validate(self) -> None:
        require_choice("workload.kind", self.kind, WORKLOAD_KINDS)
        require_choice("workload.api", self.api, API_FLAVOURS)
        require_positive("workload.max_tokens", self.max_tokens)
        require_positive("workload.temperature", self.temperature, allow_zero=True)
        require_positive("workload.prompt_tokens", self.prompt_tokens)
        require_positive("workload.prompt_tokens_stddev", self.prompt_tokens_stddev, True)
        require_positive("workload.output_tokens_stddev", self.output_tokens_stddev, True)
        require_positive("workload.shared_prefix_tokens", self.shared_prefix_tokens, True)
        if self.kind == "prompts" and not self.prompts:
            raise ConfigError("workload.prompts is empty; give at least one prompt")
