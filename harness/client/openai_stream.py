"""Folding an OpenAI-compatible server-sent event stream into a record."""

from __future__ import annotations

from typing import Any

from harness.client.errors import (
    IncompleteStream,
    MalformedStream,
)
from harness.client.messages import count_chunks_without_usage, parse_message, take_content
from harness.client.sse import SSEParser
from harness.records import RequestRecord


def content_of(choice: dict[str, Any]) -> str:
    """Generated text carried by one streamed choice (chat delta or completion text)."""
    delta = choice.get("delta")
    if isinstance(delta, dict):
        content = delta.get("content")
        if "reasoning_content" not in delta and "reasoning" not in delta:
            return content if isinstance(content, str) else ""  # the common delta, fast
        parts = [content, delta.get("reasoning_content"), delta.get("reasoning")]
        return "".join(p for p in parts if isinstance(p, str))
    text = choice.get("text")
    return text if isinstance(text, str) else ""


class StreamState:
    """Folds parsed SSE events into a record."""

    def __init__(self, record: RequestRecord, reply: list[str] | None = None) -> None:
        self.record, self.reply = record, reply
        self.done = False

    def on_event(self, data: str, arrival_ms: float) -> None:
        if data.strip() == "[DONE]":
            self.done = True
            return
        message = parse_message(data, "event")
        for choice in message.get("choices") or ():
            text = content_of(choice)
            if text:
                take_content(self.record, text, arrival_ms, self.reply)
            if choice.get("finish_reason"):
                self.record.finish_reason = choice["finish_reason"]
        usage = message.get("usage")
        if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
            self._take_usage(usage)
        if isinstance(message.get("timings"), dict):
            self.record.server_timings = message["timings"]

    def _take_usage(self, usage: dict[str, Any]) -> None:
        record = self.record
        record.output_tokens = int(usage["completion_tokens"])
        record.output_tokens_source = "usage"
        if usage.get("prompt_tokens") is not None:
            record.prompt_tokens = int(usage["prompt_tokens"])
            record.prompt_tokens_source = "usage"
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
            record.cached_prompt_tokens = details["cached_tokens"]

    def on_trailing_event(self, data: str, arrival_ms: float) -> None:
        """An event the stream ended inside (no closing blank line): a cut, if unparsable."""
        try:
            self.on_event(data, arrival_ms)
        except MalformedStream as exc:
            raise IncompleteStream(f"stream ended inside an event: {data[:120]!r}") from exc

    def finish(self) -> None:
        count_chunks_without_usage(self.record)
        if not self.done and self.record.finish_reason is None:
            raise IncompleteStream("stream ended without [DONE] or a finish_reason")


class SSEReader:
    """Bytes as they arrive -> events -> the record (and, given `reply`, the text)."""

    def __init__(self, record: RequestRecord, reply: list[str] | None = None) -> None:
        self.parser, self.state = SSEParser(), StreamState(record, reply)

    def feed(self, raw: bytes, arrival_ms: float) -> None:
        for event in self.parser.feed(raw):
            self.state.on_event(event.data, arrival_ms)

    def close(self, end_ms: float) -> None:
        for event in self.parser.flush():
            self.state.on_trailing_event(event.data, end_ms)
        self.state.record.invalid_utf8_events = self.parser.invalid_utf8
        self.state.finish()
