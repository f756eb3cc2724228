"""Seeded synthetic prompts (in words, or of an exact token count) and the original
write-up's prompts, each request's distinct from the others'."""

from __future__ import annotations

import random

from harness.client.endpoint import RequestSpec
from harness.client.specs import LazySpecs
from harness.config import WorkloadConfig
from harness.workload.fit import exact_text
from harness.workload.lengths import lengths
from harness.workload.prefix import group_of, group_prefixes
from harness.workload.tokens import TokenCounter
from harness.workload.words import WORDS, opening, seeded_words


def user_budget(counter: TokenCounter, total: int, system: str | None) -> int:
    """Tokens left for the user message when the server should count `total` beyond the
    shared prefix: the chat template's share comes off."""
    return max(1, total - (counter.template_tokens[bool(system)] or 0))


class SyntheticSpec:
    """Spec i of a synthetic workload, from its own seeded draws: made when asked for, the
    same every time. With a real tokenizer each prompt counts exactly prompt_tokens (beyond
    its shared prefix, chat template included); with words, prompt_tokens words."""

    def __init__(self, cfg: WorkloadConfig, counter: TokenCounter) -> None:
        self.cfg, self.counter = cfg, counter
        self.prefixes = group_prefixes(cfg, counter)

    def __call__(self, index: int) -> RequestSpec:
        cfg, counter = self.cfg, self.counter
        rng = random.Random(f"synthetic-{cfg.seed}-{index}")
        prompt_len, output_len = lengths(rng, cfg)
        system, group = group_of(self.prefixes, index)
        if counter.source == "words":
            prompt = " ".join([opening(index), *seeded_words(rng, prompt_len - 2, WORDS)])
        else:
            prompt = exact_text(counter, index, rng, user_budget(counter, prompt_len, system))
        return spec_of(counter, prompt, output_len, system, group)


def synthetic_specs(cfg: WorkloadConfig, count: int, counter: TokenCounter) -> LazySpecs:
    """Seeded prompts and output lengths from the configured distributions, made as read."""
    return LazySpecs(SyntheticSpec(cfg, counter), count)


def spec_of(
    counter: TokenCounter,
    prompt: str,
    max_tokens: int,
    system: str | None = None,
    group: int | None = None,
    **fields: object,
) -> RequestSpec:
    """A spec with the prompt tokens the counter expects the server to count."""
    expected = counter.prompt_tokens(prompt, system)
    return RequestSpec(
        prompt=prompt,
        max_tokens=max_tokens,
        system=system,
        prompt_tokens_expected=expected,
        prompt_tokens_expected_source=counter.source if expected is not None else None,
        prefix_group=group,
        **fields,  # type: ignore[arg-type]
    )


class PromptSpec:
    """Spec i of the prompt workload: the configured prompts round-robin, each behind its
    request's own opening."""

    def __init__(self, cfg: WorkloadConfig, counter: TokenCounter) -> None:
        self.cfg, self.counter = cfg, counter
        self.prefixes = group_prefixes(cfg, counter)

    def __call__(self, index: int) -> RequestSpec:
        system, group = group_of(self.prefixes, index)
        prompt = f"{opening(index)} {self.cfg.prompts[index % len(self.cfg.prompts)]}"
        return spec_of(self.counter, prompt, self.cfg.max_tokens, system, group)


def prompt_specs(cfg: WorkloadConfig, count: int, counter: TokenCounter) -> LazySpecs:
    """The configured prompts round-robin, made as read."""
    return LazySpecs(PromptSpec(cfg, counter), count)
