"""Workloads: one distinct prompt per request of a job, from the original five prompts,
seeded synthetic prompts (in words or of an exact token count), multi-turn sessions; a
shared prefix only when asked for, in groups."""

from __future__ import annotations

from typing import Any

import pytest

from harness.config import ConfigError, WorkloadConfig
from harness.workload import build_specs, whole_units
from harness.workload.tokens import TokenCounter
from harness.workload.words import WORDS


def synthetic(**fields: Any) -> WorkloadConfig:
    return WorkloadConfig(**{"name": "synthetic", "kind": "synthetic", **fields})


class DigitCounter(TokenCounter):
    """A stand-in tokenizer: a word is a token, and so is every digit in it beyond the
    first; the chat template adds 5 tokens (7 with a system message)."""

    source = "tokenize"

    def __init__(self) -> None:
        super().__init__()
        self.template_tokens = {False: 5, True: 7}

    def count(self, text: str) -> int:
        return sum(1 + max(0, sum(c.isdigit() for c in word) - 1) for word in text.split())


def test_prompt_workload_cycles_its_prompts_behind_distinct_openings() -> None:
    specs = build_specs(WorkloadConfig(prompts=["a", "b"], max_tokens=7), 4)
    assert [(s.prompt, s.max_tokens) for s in specs] == [
        ("Request 0: a", 7),
        ("Request 1: b", 7),
        ("Request 2: a", 7),
        ("Request 3: b", 7),
    ]


def test_no_prompt_repeats_across_a_whole_job() -> None:
    original = WorkloadConfig(prompts=["p1", "p2", "p3", "p4", "p5"])
    multi = synthetic(kind="multi_turn", turns=3, prompt_tokens=12)
    for cfg in (original, synthetic(), multi):
        for counter in (TokenCounter(), DigitCounter()):
            prompts = [s.prompt for s in build_specs(cfg, 500, counter)]
            assert len(set(prompts)) == 500


def test_groups_share_their_prefix_and_nothing_else() -> None:
    cfg = synthetic(shared_prefix_tokens=40, prefix_groups=3, prompt_tokens=10)
    specs = build_specs(cfg, 9)
    assert [s.prefix_group for s in specs] == [0, 1, 2] * 3
    prefixes = [s.system for s in specs]
    assert len(set(prefixes)) == 3
    assert all(prefixes[i] == prefixes[i % 3] for i in range(9))
    assert all(len(p.split()) == 40 for p in prefixes)  # type: ignore[union-attr]
    assert len({p.split()[0] for p in prefixes}) == 3  # groups differ from the first word
    assert len({s.prompt for s in specs}) == 9
    assert all(len(s.prompt.split()) == 10 for s in specs)


def test_prefixes_of_an_exact_workload_count_exactly() -> None:
    cfg = synthetic(shared_prefix_tokens=64, prefix_groups=2, prompt_tokens=20)
    counter = DigitCounter()
    for spec in build_specs(cfg, 6, counter):
        assert counter.count(spec.system) == 64  # type: ignore[arg-type]
        # the request's own part counts prompt_tokens with the template's share
        assert spec.prompt_tokens_expected == 64 + 20
        assert spec.prompt_tokens_expected_source == "tokenize"


def test_exact_prompts_count_their_length_with_the_chat_template() -> None:
    counter = DigitCounter()
    specs = build_specs(synthetic(length_distribution="fixed", prompt_tokens=128), 64, counter)
    for spec in specs:
        assert counter.count(spec.prompt) + 5 == 128
        assert spec.prompt_tokens_expected == 128
        assert set(spec.prompt.split()) <= set(WORDS)
    assert len({s.prompt.split()[0] for s in specs}) == 64  # distinct from the first word


def test_words_prompts_record_no_expected_count() -> None:
    spec = build_specs(synthetic(), 1)[0]
    assert spec.prompt_tokens_expected is None and spec.prompt_tokens_expected_source is None


def test_synthetic_prompts_are_reproducible_for_a_seed() -> None:
    assert build_specs(synthetic(seed=3), 8) == build_specs(synthetic(seed=3), 8)
    assert build_specs(synthetic(seed=3), 8) != build_specs(synthetic(seed=4), 8)


def test_synthetic_lengths_are_exact_without_spread() -> None:
    specs = build_specs(synthetic(prompt_tokens=50, max_tokens=20), 10)
    assert len(specs) == 10
    assert all(len(s.prompt.split()) == 50 for s in specs)
    assert all(s.max_tokens == 20 for s in specs)


def test_synthetic_lengths_spread_around_the_mean() -> None:
    cfg = synthetic(
        prompt_tokens=100, prompt_tokens_stddev=20, max_tokens=64, output_tokens_stddev=16
    )
    specs = build_specs(cfg, 400)
    prompt_lengths = [len(s.prompt.split()) for s in specs]
    outputs = [s.max_tokens for s in specs]
    assert 95 < sum(prompt_lengths) / len(specs) < 105
    assert 60 < sum(outputs) / len(specs) < 68
    assert len(set(outputs)) > 10
    assert min(outputs) >= 1


def test_uniform_lengths_cover_their_range_and_no_more() -> None:
    cfg = synthetic(
        length_distribution="uniform", prompt_tokens_range=[20, 40], output_tokens_range=[5, 9]
    )
    specs = build_specs(cfg, 300, DigitCounter())
    prompts = {s.prompt_tokens_expected for s in specs}
    assert min(prompts) == 20 and max(prompts) == 40  # type: ignore[type-var]
    assert {s.max_tokens for s in specs} == {5, 6, 7, 8, 9}


def test_fixed_lengths_ignore_the_stddev() -> None:
    cfg = synthetic(length_distribution="fixed", prompt_tokens_stddev=30, output_tokens_stddev=9)
    assert {s.max_tokens for s in build_specs(cfg, 50)} == {64}


def test_uniform_lengths_need_a_range() -> None:
    with pytest.raises(ConfigError, match="prompt_tokens_range"):
        synthetic(length_distribution="uniform").validate()


def test_synthetic_prompts_differ_from_the_first_word() -> None:
    specs = build_specs(synthetic(), 5)
    assert len({s.prompt.split(":")[0] for s in specs}) == 5


def test_sessions_have_turns_in_order_and_think_between_them() -> None:
    cfg = synthetic(kind="multi_turn", turns=3, think_time_s=0.5, prompt_tokens=16)
    specs = build_specs(cfg, 6, DigitCounter())
    assert [(s.session, s.turn) for s in specs] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert [s.think_time_s for s in specs] == [0.0, 0.5, 0.5] * 2
    # only a first turn's prompt tokens are known before its history exists
    assert [s.prompt_tokens_expected for s in specs] == [16, None, None] * 2


def test_request_counts_are_whole_sessions() -> None:
    assert whole_units(synthetic(kind="multi_turn", turns=4), 10) == 12
    assert whole_units(synthetic(), 10) == 10


def test_multi_turn_needs_the_chat_api() -> None:
    with pytest.raises(ConfigError, match="multi_turn"):
        synthetic(kind="multi_turn", api="completions").validate()
