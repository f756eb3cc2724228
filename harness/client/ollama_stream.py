"""Folding Ollama's native stream (/api/chat, /api/generate: one JSON object a line) into
a record, with the engine's own timings from its final object."""

from __future__ import annotations

from typing import Any

from harness.client.errors import (
    IncompleteStream,
    MalformedStream,
)
from harness.client.messages import count_chunks_without_usage, parse_message, take_content
from harness.records import RequestRecord

NS_PER_MS = 1_000_000
# Ollama's final object: counts, and durations in nanoseconds
ENGINE_COUNTS = ("eval_count", "prompt_eval_count")
ENGINE_DURATIONS = ("eval_duration", "prompt_eval_duration", "load_duration", "total_duration")


def engine_timings(final: dict[str, Any]) -> dict[str, Any]:
    """The engine's own account of a request: counts, and durations in ms."""
    timings: dict[str, Any] = {k: final[k] for k in ENGINE_COUNTS if isinstance(final.get(k), int)}
    for key in ENGINE_DURATIONS:
        if isinstance(final.get(key), int | float):
            timings[f"{key}_ms"] = final[key] / NS_PER_MS
    if timings.get("eval_count") and timings.get("eval_duration_ms"):
        timings["eval_tokens_per_s"] = timings["eval_count"] / (timings["eval_duration_ms"] / 1e3)
    return timings


class NDJSONReader:
    """Bytes as they arrive -> JSON lines -> the record (and, given `reply`, the text)."""

    def __init__(self, record: RequestRecord, reply: list[str] | None = None) -> None:
        self.record, self.reply = record, reply
        self.buffer = b""
        self.done = False

    def feed(self, raw: bytes, arrival_ms: float) -> None:
        *lines, self.buffer = (self.buffer + raw).split(b"\n")
        for line in lines:
            if line.strip():
                self.on_line(line, arrival_ms)

    def on_line(self, line: bytes, arrival_ms: float) -> None:
        message = parse_message(line, "line")
        text = (message.get("message") or {}).get("content") or message.get("response") or ""
        if isinstance(text, str) and text:
            take_content(self.record, text, arrival_ms, self.reply)
        if message.get("done"):
            self.done = True
            self.take_final(message)

    def take_final(self, final: dict[str, Any]) -> None:
        record = self.record
        record.finish_reason = final.get("done_reason") or "stop"
        timings = engine_timings(final)
        record.server_timings = timings
        if "eval_count" in timings:
            # the engine's own count of generated tokens, as a server's usage would give it
            record.output_tokens, record.output_tokens_source = timings["eval_count"], "usage"
        if "prompt_eval_count" in timings:
            record.prompt_tokens = timings["prompt_eval_count"]
            record.prompt_tokens_source = "usage"

    def close(self, end_ms: float) -> None:
        if self.buffer.strip():
            try:
                self.on_line(self.buffer, end_ms)
            except MalformedStream as exc:
                raise IncompleteStream(
                    f"stream ended inside a line: {self.buffer[:120]!r}"
                ) from exc
        count_chunks_without_usage(self.record)
        if not self.done:
            raise IncompleteStream("stream ended without its final done object")
