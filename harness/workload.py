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


def synthetic_specs(cfg: WorkloadConfig) -> list[RequestSpec]:
    """Seeded prompts and output lengths drawn around the configured means."""
    rng = random.Random(cfg.seed)
    specs = []
    for index in range(cfg.num_prompts):
        prompt_len = max(1, round(rng.gauss(cfg.prompt_tokens, cfg.prompt_tokens_stddev)))
        output_len = max(1, round(rng.gauss(cfg.max_tokens, cfg.output_tokens_stddev)))
        # A distinct opening per request keeps servers' prefix caches from skipping the prompt.
        words = [f"Request {index}:"] + [rng.choice(_WORDS) for _ in range(prompt_len - 2)]
        specs.append(RequestSpec(prompt=" ".join(words), max_tokens=output_len))
    return specs


def build_specs(cfg: WorkloadConfig) -> list[RequestSpec]:
    """The request specs of a workload; requests take them round-robin."""
    if cfg.kind == "synthetic":
        return synthetic_specs(cfg)
    return [RequestSpec(prompt=p, max_tokens=cfg.max_tokens) for p in cfg.prompts]
