"""Multi-turn chat sessions: `turns` user messages per session, each sent with the history
so far (the earlier messages and the replies they got, filled in while the level runs)."""

from __future__ import annotations

import random

from harness.client.endpoint import RequestSpec
from harness.client.specs import LazySpecs
from harness.config import WorkloadConfig
from harness.workload.fit import exact_text
from harness.workload.lengths import lengths
from harness.workload.synthetic import spec_of, user_budget
from harness.workload.tokens import TokenCounter
from harness.workload.words import WORDS, opening, seeded_words


class SessionSpec:
    """Request i is turn i % turns of session i // turns, from its own seeded draws. Only a
    first turn's prompt tokens are known in advance; a later turn's depend on the replies
    before it."""

    def __init__(self, cfg: WorkloadConfig, counter: TokenCounter) -> None:
        self.cfg, self.counter = cfg, counter

    def __call__(self, index: int) -> RequestSpec:
        cfg, counter = self.cfg, self.counter
        rng = random.Random(f"multi-turn-{cfg.seed}-{index}")
        session, turn = divmod(index, cfg.turns)
        prompt_len, output_len = lengths(rng, cfg)
        if counter.source == "words":
            prompt = " ".join([opening(index), *seeded_words(rng, prompt_len - 2, WORDS)])
        else:
            budget = user_budget(counter, prompt_len, None) if turn == 0 else prompt_len
            prompt = exact_text(counter, index, rng, budget)
        spec = spec_of(
            counter,
            prompt,
            output_len,
            session=session,
            turn=turn,
            think_time_s=cfg.think_time_s if turn else 0.0,
        )
        if turn:
            spec.prompt_tokens_expected = spec.prompt_tokens_expected_source = None
        return spec


def session_specs(cfg: WorkloadConfig, count: int, counter: TokenCounter) -> LazySpecs:
    """Whole sessions of `turns` requests each, made as read."""
    return LazySpecs(SessionSpec(cfg, counter), count, turns=cfg.turns)
