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


def prompt_length(rng: random.Random, cfg: WorkloadConfig) -> int:
    return draw(
        rng,
        cfg.length_distribution,
        cfg.prompt_tokens,
        cfg.prompt_tokens_stddev,
        cfg.prompt_tokens_range,
    )


def output_length(rng: random.Random, cfg: WorkloadConfig) -> int:
    return draw(
        rng,
        cfg.length_distribution,
        cfg.max_tokens,
        cfg.output_tokens_stddev,
        cfg.output_tokens_range,
    )
