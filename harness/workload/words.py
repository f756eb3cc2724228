"""The words prompts are made of: a fixed vocabulary, seeded draws from it, and openings
that keep every prompt of a job distinct."""

from __future__ import annotations

import random
from collections.abc import Sequence

# A fixed vocabulary of common English words: most tokenizers map each to one token, so
# the prompt length in words is close to its length in tokens. The true count comes from
# the server's usage and is recorded per request.
_VOCABULARY = (
    "time year people way day man thing woman life child world school state family "
    "student group country problem hand part place case week company system program "
    "question work government number night point home water room mother area money story "
    "fact month lot right study book eye job word business issue side kind head house "
    "service friend father power hour game line end member law car city community name "
    "president team minute idea kid body information back parent face others level office "
    "door health person art war history party result change morning reason research girl "
    "guy moment air teacher force education"
)
WORDS = tuple(_VOCABULARY.split())


def opening(index: int) -> str:
    """A distinct start for request `index` of a job, so that no engine sees a prompt (or
    more than its chat template's first tokens) twice."""
    return f"Request {index}:"


def coded_opening(index: int, words: Sequence[str], first_words: Sequence[str]) -> list[str]:
    """A distinct start made of single-token words only: `index` written in base len(words),
    its lowest digit first (so consecutive requests differ from the first word on)."""
    digits = [first_words[index % len(first_words)]]
    index //= len(first_words)
    for _ in range(2):
        digits.append(words[index % len(words)])
        index //= len(words)
    while index:
        digits.append(words[index % len(words)])
        index //= len(words)
    return digits


def seeded_words(rng: random.Random, count: int, words: Sequence[str] = WORDS) -> list[str]:
    return [rng.choice(words) for _ in range(max(0, count))]
