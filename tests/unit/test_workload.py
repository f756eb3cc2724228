"""Workloads: the original five prompts, and seeded synthetic prompts of controlled length."""

from __future__ import annotations

from harness.config import WorkloadConfig
from harness.workload import build_specs


def synthetic(**fields: object) -> WorkloadConfig:
    return WorkloadConfig(name="synthetic", kind="synthetic", **fields)  # type: ignore[arg-type]


def test_prompt_workload_sends_its_prompts_with_max_tokens() -> None:
    specs = build_specs(WorkloadConfig(prompts=["a", "b"], max_tokens=7))
    assert [(s.prompt, s.max_tokens) for s in specs] == [("a", 7), ("b", 7)]


def test_synthetic_prompts_are_reproducible_for_a_seed() -> None:
    assert build_specs(synthetic(seed=3)) == build_specs(synthetic(seed=3))
    assert build_specs(synthetic(seed=3)) != build_specs(synthetic(seed=4))


def test_synthetic_lengths_are_exact_without_spread() -> None:
    specs = build_specs(synthetic(prompt_tokens=50, max_tokens=20, num_prompts=10))
    assert len(specs) == 10
    assert all(len(s.prompt.split()) == 50 for s in specs)
    assert all(s.max_tokens == 20 for s in specs)


def test_synthetic_lengths_spread_around_the_mean() -> None:
    specs = build_specs(
        synthetic(
            prompt_tokens=100,
            prompt_tokens_stddev=20,
            max_tokens=64,
            output_tokens_stddev=16,
            num_prompts=400,
        )
    )
    prompt_lengths = [len(s.prompt.split()) for s in specs]
    outputs = [s.max_tokens for s in specs]
    assert 95 < sum(prompt_lengths) / len(specs) < 105
    assert 60 < sum(outputs) / len(specs) < 68
    assert len(set(outputs)) > 10
    assert min(outputs) >= 1


def test_synthetic_prompts_differ_from_the_first_word() -> None:
    specs = build_specs(synthetic(num_prompts=5))
    assert len({s.prompt.split(":")[0] for s in specs}) == 5
