"""The one record every request function produces and the metrics module consumes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Where an output token count came from. "chunk_count" is a fallback and is labelled so.
TOKEN_SOURCES = ("usage", "chunk_count", "none")


@dataclass
class RequestRecord:
    """One request as the client saw it; times are seconds unless the name says otherwise."""

    request_id: int
    concurrency: int
    worker: int
    level: int = 0  # index of the load level in its job
    status: str = "ok"  # ok | error
    error_type: str | None = None
    error_text: str | None = None
    http_status: int | None = None
    # Two instants: `due` (the worker was free, or the open-loop schedule said so) and
    # `start` (its bytes handed to the socket). Latencies run from `start`; the difference
    # is the client's own wait, never inside TTFT.
    due_mono_s: float = 0.0  # time.perf_counter() when the request was due
    start_wall_s: float = 0.0  # epoch seconds when the request went on the wire
    start_mono_s: float = 0.0  # time.perf_counter() when the request went on the wire
    on_wire: bool = False  # false: it failed (or was cancelled) before its bytes were sent
    # of the client's wait, the time spent opening a new connection (None: one was reused)
    connect_ms: float | None = None
    end_mono_s: float = 0.0  # last byte (or failure)
    end_wall_s: float = 0.0  # epoch seconds at the last byte (or failure)
    ttfb_ms: float | None = None  # first byte of the response body
    ttft_ms: float | None = None  # first chunk carrying generated content
    # arrival of every content chunk, in ms after the request was sent
    chunk_times_ms: list[float] = field(default_factory=list)
    prompt_tokens: int | None = None
    prompt_tokens_source: str = "none"  # usage | none (no tokenizer guess is made)
    output_tokens: int | None = None
    output_tokens_source: str = "none"
    # why the server's usage count was not used (it disagreed with what arrived)
    usage_rejected: str | None = None
    # events whose bytes were not valid UTF-8 (decoded with U+FFFD in their place)
    invalid_utf8_events: int = 0
    # prompt tokens the server says it took from its prefix cache
    # (usage.prompt_tokens_details.cached_tokens); None where it does not say
    cached_prompt_tokens: int | None = None
    max_tokens: int | None = None  # what the request asked for
    finish_reason: str | None = None
    output_chars: int = 0
    server_timings: dict[str, Any] | None = None
    # what the workload built, copied from its spec: the prompt tokens it counted with the
    # chat template (None: not counted) and how (tokenize | gguf_vocabulary | words), its
    # shared-prefix group, and its multi-turn session and turn (0 first)
    prompt_tokens_expected: int | None = None
    prompt_tokens_expected_source: str | None = None
    prefix_group: int | None = None
    session: int | None = None
    turn: int | None = None

    @property
    def e2e_ms(self) -> float:
        return (self.end_mono_s - self.start_mono_s) * 1000.0

    @property
    def client_wait_ms(self) -> float | None:
        """due -> on the wire: time the request waited on the client (None: never sent)."""
        if not self.on_wire or not self.due_mono_s:
            return None
        return (self.start_mono_s - self.due_mono_s) * 1000.0

    @property
    def queued_ms(self) -> float | None:
        """The client's wait less any new connection: time the request sat on the client."""
        wait = self.client_wait_ms
        if wait is None:
            return None
        return max(0.0, wait - (self.connect_ms or 0.0))

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["e2e_ms"] = round(self.e2e_ms, 4)
        wait = self.client_wait_ms
        data["client_wait_ms"] = None if wait is None else round(wait, 4)
        data["chunk_times_ms"] = [round(t, 4) for t in self.chunk_times_ms]
        return data

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> RequestRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)
