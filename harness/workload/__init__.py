"""Turn a workload config into the request specs a job sends, reproducibly.

One interface over many sources (`workload.kind`): the original write-up's prompts,
seeded synthetic prompts (in words, or of an exact token count for the engine's
tokenizer), real ShareGPT conversations, multi-turn sessions and trace replay; any of
them may share prefixes in groups on purpose (`shared_prefix_tokens`, `prefix_groups`).
"""

from __future__ import annotations

import math

from harness.client.endpoint import RequestSpec
from harness.config import WorkloadConfig
from harness.workload.multi_turn import session_specs
from harness.workload.sharegpt import sharegpt_specs
from harness.workload.synthetic import prompt_specs, synthetic_specs
from harness.workload.tokens import TokenCounter, WorkloadError, make_counter
from harness.workload.trace import trace_specs
from harness.workload.words import opening

__all__ = [
    "TokenCounter",
    "WorkloadError",
    "build_specs",
    "make_counter",
    "opening",
    "whole_units",
]

_BUILDERS = {
    "prompts": prompt_specs,
    "synthetic": synthetic_specs,
    "sharegpt": sharegpt_specs,
    "multi_turn": session_specs,
    "trace": trace_specs,
}


def build_specs(
    cfg: WorkloadConfig, count: int, counter: TokenCounter | None = None
) -> list[RequestSpec]:
    """One spec for each of a job's `count` requests, in the order they are sent (warm-up
    first). No two prompts are alike: each has its request's own opening (or, made of
    single-token words, its own first words). Only shared prefixes and a session's history
    repeat text, on purpose."""
    return _BUILDERS[cfg.kind](cfg, count, counter or TokenCounter())


def whole_units(cfg: WorkloadConfig, count: int) -> int:
    """`count` raised to whole multi-turn sessions (a session is never split)."""
    unit = cfg.turns if cfg.kind == "multi_turn" else 1
    return math.ceil(count / unit) * unit
