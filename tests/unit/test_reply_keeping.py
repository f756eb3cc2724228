"""Only a multi-turn session's requests keep their reply text; the others keep nothing."""

from __future__ import annotations

import orjson

from harness.client.ollama_stream import NDJSONReader
from harness.client.openai_stream import SSEReader
from harness.records import RequestRecord


def sse(*texts: str) -> bytes:
    events = [{"choices": [{"delta": {"role": "assistant", "content": ""}}]}]
    events += [{"choices": [{"delta": {"content": t}}]} for t in texts]
    events.append({"choices": [{"delta": {}, "finish_reason": "length"}]})
    return b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def test_an_sse_reader_given_a_reply_keeps_the_generated_text() -> None:
    reply: list[str] = []
    reader = SSEReader(RequestRecord(0, 1, 0), reply)
    reader.feed(sse("Hello", ", ", "world"), 1.0)
    reader.close(2.0)
    assert "".join(reply) == "Hello, world"
    assert reader.state.record.output_chars == 12


def test_an_sse_reader_keeps_no_text_by_default() -> None:
    reader = SSEReader(RequestRecord(0, 1, 0))
    reader.feed(sse("Hello"), 1.0)
    assert reader.state.reply is None
    assert reader.state.record.output_chars == 5


def test_an_ollama_reader_given_a_reply_keeps_the_generated_text() -> None:
    lines = [
        {"message": {"role": "assistant", "content": "Hi"}, "done": False},
        {"message": {"role": "assistant", "content": " there"}, "done": False},
        {"done": True, "done_reason": "length", "eval_count": 2, "prompt_eval_count": 3},
    ]
    raw = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    reply: list[str] = []
    reader = NDJSONReader(RequestRecord(0, 1, 0), reply)
    reader.feed(raw, 1.0)
    reader.close(2.0)
    assert "".join(reply) == "Hi there"
    plain = NDJSONReader(RequestRecord(0, 1, 0))
    plain.feed(raw, 1.0)
    assert plain.reply is None and plain.record.output_chars == 8
