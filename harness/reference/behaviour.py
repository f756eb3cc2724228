"""What the reference server does, set per run: timing, chunking, faults, and what it has
seen (its timers' lateness, the prompts it was sent)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from harness.reference.slots import Slots

FAULTS = (
    "none",  # a well-formed stream
    "http_500",  # HTTP 500 with a JSON error body
    "http_429",  # HTTP 429 (rate limited)
    "cut_stream",  # the connection is closed after `fault_after_tokens` tokens
    "malformed",  # a non-JSON data line after `fault_after_tokens` tokens
    "no_done",  # all tokens, no finish_reason, no [DONE], then the stream ends
    "no_usage",  # no usage chunk (the client must fall back to counting chunks, and say so)
    "error_event",  # an {"error": ...} event mid-stream
    "stall",  # stops sending after `fault_after_tokens` tokens (for read timeouts)
    "stop_early",  # stops at half of max_tokens with finish_reason "stop" (ignores ignore_eos)
    "retry_after",  # HTTP 429 with "Retry-After: 2"
    "not_streamed",  # a stream asked for, one 200 application/json completion answered
    "silent",  # accepts connections, reads requests, never answers anything
    "bad_usage",  # usage counts completion_tokens 10^12 (and prompt_tokens -5)
    "bad_utf8",  # one content event whose bytes are not UTF-8, after `fault_after_tokens`
)


@dataclass
class Behaviour:
    """How the server answers. `output_tokens` is used when a request sets no max_tokens."""

    ttft_ms: float = 50.0
    itl_ms: float = 10.0
    output_tokens: int = 16
    # tokens carried by one content event (1: one event per token, as most engines send)
    tokens_per_event: int = 1
    fault: str = "none"
    fault_after_tokens: int = 3
    model: str = "reference"
    api_key: str | None = None  # when set, requests must carry "Authorization: Bearer <key>"
    # at most this many streams served at once, the rest wait in arrival order (0: no limit)
    slots: int = 0
    # How late each content chunk left the server versus its schedule (ms): the server's
    # own share of any timing error, served at GET /stats.
    lateness_ms: deque[float] = field(default_factory=lambda: deque(maxlen=1_000_000))
    prompts: PromptLog = field(default_factory=lambda: PromptLog())
    queue: Slots = field(init=False)

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise ValueError(f"fault={self.fault!r} is not one of {', '.join(FAULTS)}")
        if self.ttft_ms < 0 or self.itl_ms < 0:
            raise ValueError(
                f"ttft_ms={self.ttft_ms!r}, itl_ms={self.itl_ms!r} are not valid; each must be >= 0"
            )
        if self.tokens_per_event < 1:
            raise ValueError(f"tokens_per_event={self.tokens_per_event!r} must be >= 1")
        if self.slots < 0:
            raise ValueError(f"slots={self.slots!r} must be >= 0 (0: no limit)")
        self.queue = Slots(self.slots)


class PromptLog:
    """The prompts the server was sent, in words, as a prefix cache would see them: a new
    prompt's cached words are its longest common prefix with any earlier prompt (a trie)."""

    def __init__(self) -> None:
        self.trie: dict[str, dict] = {}
        self.seen: set[int] = set()
        self.requests = 0
        self.repeated = 0

    def add(self, words: list[str]) -> int:
        """Record a prompt; return how many of its leading words an earlier prompt shared."""
        self.requests += 1
        key = hash(tuple(words))
        self.repeated += key in self.seen
        self.seen.add(key)
        node, cached, matching = self.trie, 0, True
        for word in words:
            child = node.get(word)
            if child is None:
                matching = False
                child = node[word] = {}
            elif matching:
                cached += 1
            node = child
        return cached

    def stats(self) -> dict[str, int]:
        return {"requests": self.requests, "distinct": len(self.seen), "repeated": self.repeated}
