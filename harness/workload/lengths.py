"""Seeded prompt and output lengths: fixed, normal (mean, stddev) or uniform (a range)."""

from __future__ import annotations

import random

from harness.config import WorkloadConfig


def draw(rng: random.Random, distribution: str, mean: int, stddev: float, bounds: list[int]) -> int:
    """One length of at least 1."""
    if distribution == "uniform":
        return rng.randint(bounds[0], bounds[1])
    if distribution == "fixed":
        return mean
    # drawn even with stddev 0, so that a seed gives the prompts it always gave
    return max(1, round(rng.gauss(mean, stddev)))


def lengths(rng: random.Random, cfg: WorkloadConfig) -> tuple[int, int]:
    """One request's prompt and output lengths, drawn in that order."""
    kind = cfg.length_distribution
    prompt = draw(rng, kind, cfg.prompt_tokens, cfg.prompt_tokens_stddev, cfg.prompt_tokens_range)
    output = draw(rng, kind, cfg.max_tokens, cfg.output_tokens_stddev, cfg.output_tokens_range)
    return prompt, output
