"""Turn a workload config into the request specs a level sends, reproducibly."""

from __future__ import annotations

import random

from harness.client.openai_api import RequestSpec
from harness.config import WorkloadConfig

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
_WORDS = tuple(_VOCABULARY.split())


def opening(index: int) -> str:
    """A distinct start for request `index` of a job, so that no engine sees a prompt (or
    more than its chat template's first tokens) twice."""
    return f"Request {index}:"


def shared_prefix(cfg: WorkloadConfig) -> str:
    """The seeded words every prompt of the workload starts with ("" when it shares none)."""
    if not cfg.shared_prefix_tokens:
        return ""
    rng = random.Random(f"shared-prefix-{cfg.seed}")
    return " ".join(rng.choice(_WORDS) for _ in range(cfg.shared_prefix_tokens)) + " "


def synthetic_specs(cfg: WorkloadConfig, count: int) -> list[RequestSpec]:
    """Seeded prompts and output lengths drawn around the configured means."""
    rng = random.Random(cfg.seed)
    prefix = shared_prefix(cfg)
    specs = []
    for index in range(count):
        prompt_len = max(1, round(rng.gauss(cfg.prompt_tokens, cfg.prompt_tokens_stddev)))
        output_len = max(1, round(rng.gauss(cfg.max_tokens, cfg.output_tokens_stddev)))
        words = [opening(index)] + [rng.choice(_WORDS) for _ in range(prompt_len - 2)]
        specs.append(RequestSpec(prompt=prefix + " ".join(words), max_tokens=output_len))
    return specs


def build_specs(cfg: WorkloadConfig, count: int) -> list[RequestSpec]:
    """One spec for each of a job's `count` requests, in the order they are sent (warm-up
    first). No two prompts are alike: each opens with its own index, and the prompts
    workload cycles its prompts behind those openings. Only `shared_prefix_tokens` makes
    prompts share a start, on purpose."""
    if cfg.kind == "synthetic":
        return synthetic_specs(cfg, count)
    prefix = shared_prefix(cfg)
    return [
        RequestSpec(
            prompt=f"{prefix}{opening(i)} {cfg.prompts[i % len(cfg.prompts)]}",
            max_tokens=cfg.max_tokens,
        )
        for i in range(count)
    ]
