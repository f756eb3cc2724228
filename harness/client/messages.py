"""What both stream readers do with a message: parse it, take its content, and fall back
to counting chunks where the server gave no token count."""

from __future__ import annotations

import json
from typing import Any

import orjson

from harness.client.errors import ERROR_TEXT_LIMIT, MalformedStream, StreamError
from harness.records import RequestRecord


def parse_message(data: str | bytes, unit: str) -> dict[str, Any]:
    """One streamed JSON object (an SSE event's data, or an NDJSON line); `unit` names it
    in errors. orjson: the client parses every chunk of every stream on one event loop."""
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedStream(f"{unit} is not JSON ({exc}): {data[:120]!r}") from exc
    if not isinstance(message, dict):
        raise MalformedStream(f"{unit} is not a JSON object: {data[:120]!r}")
    if "error" in message:
        raise StreamError(json.dumps(message["error"])[:ERROR_TEXT_LIMIT])
    return message


def take_content(
    record: RequestRecord, text: str, arrival_ms: float, reply: list[str] | None
) -> None:
    """A content chunk arrived: its time, the first one's as TTFT, and its text where the
    request keeps its reply (`reply` given: a multi-turn session's next turn sends it)."""
    if reply is not None:
        reply.append(text)
    record.output_chars += len(text)
    record.chunk_times_ms.append(arrival_ms)
    if record.ttft_ms is None:
        record.ttft_ms = arrival_ms


def count_chunks_without_usage(record: RequestRecord) -> None:
    """The server sent no token count: fall back to chunks, and say so in the record."""
    if record.output_tokens_source != "usage" and record.chunk_times_ms:
        record.output_tokens = len(record.chunk_times_ms)
        record.output_tokens_source = "chunk_count"
