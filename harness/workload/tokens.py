"""Counting prompt tokens as the engine will: its own tokenize endpoint (llama.cpp, vLLM),
the GGUF model's vocabulary, or words (an estimate, and labelled so).

A counter also knows which words of the fixed vocabulary are one token each, so that a
prompt of exactly N tokens can be made of them, and how many tokens the chat template adds
around a prompt: that it measures from the server's own usage, with two probe requests
(the difference between their counts checks the counter, too).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from harness.client.openai_api import Endpoint, RequestSpec
from harness.client.scheduler import warm_up
from harness.config import WorkloadConfig
from harness.workload.gguf_vocab import Vocabulary, read_vocabulary
from harness.workload.words import WORDS, seeded_words

log = logging.getLogger(__name__)
HTTP_TIMEOUT_S = 30.0
_CHUNKS = re.compile(r" ?[^ ]+| +")


class WorkloadError(RuntimeError):
    """The workload cannot be built as configured (no tokenizer, no data set, a bad trace)."""


class TokenCounter:
    """Words as tokens: the fallback when nothing better answers; its counts are estimates."""

    source = "words"

    def __init__(self) -> None:
        self.words: tuple[str, ...] = WORDS  # one token each after a space
        self.first_words: tuple[str, ...] = WORDS  # one token each at a prompt's start
        # tokens the chat template adds around a prompt, without and with a system message
        self.template_tokens: dict[bool, int | None] = {False: None, True: None}

    def count(self, text: str) -> int:
        return len(text.split())

    def keep_single_token_words(self, is_one: Callable[[str], bool]) -> None:
        words = tuple(w for w in WORDS if is_one(" " + w))
        first = tuple(w for w in words if is_one(w))
        if len(words) < 16 or len(first) < 4:
            raise WorkloadError(f"only {len(words)} of the vocabulary's words are one token")
        self.words, self.first_words = words, first

    def prompt_tokens(self, user: str, system: str | None = None) -> int | None:
        """All prompt tokens the server will count for this prompt (None: not known)."""
        template = self.template_tokens[bool(system)]
        if template is None:
            return None
        return template + self.count(user) + (self.count(system) if system else 0)


class EndpointCounter(TokenCounter):
    """The engine's own tokenizer, through its tokenize endpoint."""

    source = "tokenize"

    def __init__(self, url: str, body: Callable[[str], dict[str, Any]], headers: dict) -> None:
        super().__init__()
        self.url, self.body, self.headers = url, body, headers
        self.keep_single_token_words(lambda text: self.count(text) == 1)

    def count(self, text: str) -> int:
        tokens = _post(self.url, self.body(text), self.headers)
        if isinstance(tokens.get("count"), int):
            return tokens["count"]
        return len(tokens["tokens"])


class VocabularyCounter(TokenCounter):
    """A GGUF vocabulary: a word is one token when its piece is in it; other text is
    counted by greedy longest match (close to, not exactly, the engine's count)."""

    source = "gguf_vocabulary"

    def __init__(self, vocabulary: Vocabulary) -> None:
        super().__init__()
        self.pieces = frozenset(vocabulary.tokens)
        self.longest = max(len(piece) for piece in vocabulary.tokens)
        self.space, self.byte_level = vocabulary.space, vocabulary.model == "gpt2"
        self.keep_single_token_words(lambda text: self.count(text) == 1)

    def count(self, text: str) -> int:
        total = 0
        for chunk in _CHUNKS.findall(text):
            piece = _byte_chars(chunk) if self.byte_level else chunk.replace(" ", self.space)
            total += self._greedy(piece)
        return total

    def _greedy(self, piece: str) -> int:
        tokens, start = 0, 0
        while start < len(piece):
            for end in range(min(len(piece), start + self.longest), start, -1):
                if piece[start:end] in self.pieces:
                    break
            else:
                end = start + 1
                tokens += len(piece[start].encode()) - 1  # byte fallback
            tokens, start = tokens + 1, end
        return tokens


def _byte_chars(text: str) -> str:
    """GPT-2's byte-to-character map: what a byte-level BPE vocabulary's pieces are made of."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    extra = iter(range(256, 512))
    table = {b: chr(b) if b in printable else chr(next(extra)) for b in range(256)}
    return "".join(table[b] for b in text.encode())


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=orjson.dumps(body), headers=headers)
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
        return orjson.loads(response.read())


class TokenizeBody:
    """A tokenize request's body: llama.cpp's form, or vLLM's (which names the model).
    A class, not a lambda, so that a counter travels to client processes."""

    def __init__(self, model: str | None) -> None:
        self.model = model

    def __call__(self, text: str) -> dict[str, Any]:
        if self.model is None:
            return {"content": text, "add_special": False}
        return {"model": self.model, "prompt": text, "add_special_tokens": False}


def endpoint_counter(endpoint: Endpoint) -> EndpointCounter | None:
    """The engine's tokenize endpoint (llama.cpp's, else vLLM's), or None if it has none."""
    root = endpoint.base_url.rstrip("/").removesuffix("/v1")
    headers = {"Content-Type": "application/json", **_auth(endpoint)}
    forms = [TokenizeBody(None), TokenizeBody(endpoint.model)]
    for body in forms:
        try:
            answer = _post(f"{root}/tokenize", body("probe"), headers)
        except (urllib.error.URLError, OSError, ValueError):
            continue
        if isinstance(answer, dict) and isinstance(answer.get("tokens"), list):
            return EndpointCounter(f"{root}/tokenize", body, headers)
    return None


def _auth(endpoint: Endpoint) -> dict[str, str]:
    return {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}


def make_counter(
    cfg: WorkloadConfig, endpoint: Endpoint | None, gguf_path: str | None
) -> TokenCounter:
    """The counter `workload.tokenizer` asks for, its template measured on the engine."""
    if cfg.tokenizer == "words" or endpoint is None:
        return TokenCounter()
    counter: TokenCounter | None = None
    if cfg.tokenizer in ("auto", "tokenize"):
        counter = endpoint_counter(endpoint)
        if counter is None and cfg.tokenizer == "tokenize":
            raise WorkloadError(
                "workload.tokenizer=tokenize: the engine answers no POST /tokenize (llama.cpp and "
                "vLLM do); use workload.tokenizer=gguf for a GGUF model, or auto"
            )
    if counter is None and cfg.tokenizer in ("auto", "gguf"):
        if gguf_path and Path(gguf_path).is_file():
            counter = VocabularyCounter(read_vocabulary(Path(gguf_path)))
        elif cfg.tokenizer == "gguf":
            raise WorkloadError("workload.tokenizer=gguf needs a GGUF model file (model.path)")
    if counter is None:
        log.warning("no tokenizer answers: prompt lengths are in words, and not checked")
        return TokenCounter()
    for with_system in (False, True) if cfg.shared_prefix_tokens else (False,):
        counter.template_tokens[with_system] = measure_template(counter, endpoint, with_system)
    log.info(
        "prompt tokens counted by %s; the chat template adds %s", counter.source,
        counter.template_tokens,
    )  # fmt: skip
    return counter


def measure_template(counter: TokenCounter, endpoint: Endpoint, with_system: bool) -> int | None:
    """Tokens the server counts beyond the prompt's own: usage.prompt_tokens of two probes
    of different length, less what the counter counts in them."""
    found = []
    for length in (8, 24):
        rng = random.Random(f"template-probe-{length}-{with_system}")
        user = " ".join(["Probe", *seeded_words(rng, length, counter.words)])
        system = " ".join(seeded_words(rng, 8, counter.words)) if with_system else None
        spec = RequestSpec(prompt=user, max_tokens=1, system=system)
        record = asyncio.run(warm_up(endpoint, [spec], 1, HTTP_TIMEOUT_S))[0]
        if record.prompt_tokens is None:
            log.warning("the server reports no prompt tokens: the chat template is not counted")
            return None
        found.append(record.prompt_tokens - counter.count(user) - counter.count(system or ""))
    if found[0] != found[1]:
        log.warning("the tokenizer's counts and the server's differ by length: %s", found)
    return found[-1]
