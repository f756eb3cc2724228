"""Shared prefixes on purpose: `prefix_groups` seeded system prompts of
`shared_prefix_tokens` each; request i belongs to group i % prefix_groups."""

from __future__ import annotations

import random

from harness.config import WorkloadConfig
from harness.workload.fit import exact_text
from harness.workload.tokens import TokenCounter
from harness.workload.words import seeded_words


def group_prefixes(cfg: WorkloadConfig, counter: TokenCounter) -> list[str]:
    """Each group's prefix ([] when the workload shares none). Groups differ from their
    first word on, so a prefix cache shares nothing between them."""
    if not cfg.shared_prefix_tokens:
        return []
    prefixes = []
    for group in range(cfg.prefix_groups):
        rng = random.Random(f"shared-prefix-{cfg.seed}-{group}")
        if counter.source == "words":
            words = [f"[{group}]", *seeded_words(rng, cfg.shared_prefix_tokens - 1)]
            prefixes.append(" ".join(words))
        else:
            prefixes.append(exact_text(counter, group, rng, cfg.shared_prefix_tokens))
    return prefixes


def group_of(prefixes: list[str], index: int) -> tuple[str | None, int | None]:
    """The prefix of request `index` and its group (None, None: no prefix)."""
    if not prefixes:
        return None, None
    group = index % len(prefixes)
    return prefixes[group], group
