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


# A usage count is taken when it could be true of what arrived: at least 0.9 tokens per
# content chunk (an engine may split one token's bytes over two chunks) and at most one
# token per character plus one per chunk (a token may decode to nothing), beside a small
# allowance; otherwise the chunks are counted and the record says why.
USAGE_MIN_PER_CHUNK = 0.9
USAGE_SLACK_TOKENS = 16
USAGE_REJECTED = "chunk_count_usage_rejected"


def usage_plausible(tokens: int, chunks: int, chars: int) -> bool:
    return chunks * USAGE_MIN_PER_CHUNK <= tokens <= chars + chunks + USAGE_SLACK_TOKENS


def check_usage(record: RequestRecord) -> None:
    """Impossible usage counts are never used: a negative prompt count is dropped, an output
    count that disagrees with the content received gives way to the chunk count."""
    if record.prompt_tokens is not None and record.prompt_tokens < 0:
        record.prompt_tokens, record.prompt_tokens_source = None, "none"
    tokens, chunks = record.output_tokens, len(record.chunk_times_ms)
    if record.output_tokens_source != "usage" or tokens is None:
        return
    if not usage_plausible(tokens, chunks, record.output_chars):
        record.usage_rejected = (
            f"usage completion_tokens={tokens} against {chunks} content chunks, "
            f"{record.output_chars} characters"
        )
        record.output_tokens, record.output_tokens_source = chunks, USAGE_REJECTED


def count_chunks_without_usage(record: RequestRecord) -> None:
    """The server sent no token count: fall back to chunks, and say so in the record."""
    check_usage(record)
    if record.output_tokens_source not in ("usage", USAGE_REJECTED) and record.chunk_times_ms:
        record.output_tokens = len(record.chunk_times_ms)
        record.output_tokens_source = "chunk_count"
