"""Text of an exact token count, made of words that are one token each."""

from __future__ import annotations

import random

from harness.workload.tokens import TokenCounter
from harness.workload.words import coded_opening, seeded_words

FIT_ROUNDS = 8


def fit_words(counter: TokenCounter, head: list[str], rng: random.Random, target: int) -> str:
    """`head` and seeded words after it, until the counter counts `target` tokens (or as
    close as a head longer than the target allows)."""
    words = head + seeded_words(rng, target - len(head), counter.words)
    for _ in range(FIT_ROUNDS):
        tokens = counter.count(" ".join(words))
        if tokens == target:
            break
        if tokens < target:
            words += seeded_words(rng, target - tokens, counter.words)
        elif len(words) > len(head):
            del words[max(len(head), len(words) - (tokens - target)) :]
        else:
            break
    return " ".join(words)


def exact_text(counter: TokenCounter, index: int, rng: random.Random, target: int) -> str:
    """Text number `index` of `target` tokens, distinct from every other index's from its
    first word on."""
    head = coded_opening(index, counter.words, counter.first_words)
    return fit_words(counter, head, rng, target)
