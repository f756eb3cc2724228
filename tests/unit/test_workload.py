"""Workloads: one distinct prompt per request of a job, from the original five prompts or
seeded synthetic prompts of controlled length; a shared prefix only when asked for."""

from __future__ import annotations

from harness.config import WorkloadConfig
from harness.workload import build_specs


def synthetic(**fields: object) -> WorkloadConfig:
    return WorkloadConfig(name="synthetic", kind="synthetic", **fields)  # type: ignore[arg-type]


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
    for cfg in (original, synthetic()):
        prompts = [s.prompt for s in build_specs(cfg, 500)]
        assert len(set(prompts)) == 500


def test_a_shared_prefix_workload_repeats_its_prefix_on_purpose() -> None:
    cfg = synthetic(shared_prefix_tokens=40, prompt_tokens=10)
    specs = build_specs(cfg, 6)
    prefixes = {" ".join(s.prompt.split()[:40]) for s in specs}
    assert len(prefixes) == 1
    assert len({s.prompt for s in specs}) == 6
    assert all(len(s.prompt.split()) == 50 for s in specs)


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


def test_synthetic_prompts_differ_from_the_first_word() -> None:
    specs = build_specs(synthetic(), 5)
    assert len({s.prompt.split(":")[0] for s in specs}) == 5
