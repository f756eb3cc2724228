"""SSE parsing and folding of OpenAI-style streams into records, incl. broken streams."""

from __future__ import annotations

import json

import pytest

from harness.client.openai_api import IncompleteStream, MalformedStream, StreamState
from harness.client.sse import SSEParser
from harness.records import RequestRecord


def chunk(**fields: object) -> bytes:
    return b"data: " + json.dumps(fields).encode() + b"\n\n"


ROLE_ONLY = chunk(choices=[{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}])
EMPTY_DELTA = chunk(choices=[{"index": 0, "delta": {"content": ""}, "finish_reason": None}])
HELLO = chunk(choices=[{"index": 0, "delta": {"content": "Hello"}, "finish_reason": None}])
WORLD = chunk(choices=[{"index": 0, "delta": {"content": " world"}, "finish_reason": None}])
FINISH = chunk(choices=[{"index": 0, "delta": {}, "finish_reason": "length"}])
USAGE_ONLY = chunk(choices=[], usage={"prompt_tokens": 7, "completion_tokens": 2})
DONE = b"data: [DONE]\n\n"
STREAM = ROLE_ONLY + EMPTY_DELTA + HELLO + WORLD + FINISH + USAGE_ONLY + DONE


def fold(pieces: list[tuple[bytes, float]]) -> RequestRecord:
    """Feed (bytes, arrival ms) pieces through parser and stream state, as the client does."""
    record = RequestRecord(request_id=0, concurrency=1, worker=0)
    parser, state = SSEParser(), StreamState(record)
    for data, arrival_ms in pieces:
        for event in parser.feed(data):
            state.on_event(event.data, arrival_ms)
    for event in parser.flush():
        state.on_trailing_event(event.data, pieces[-1][1])
    state.finish()
    return record


def test_parser_splits_events_at_blank_lines() -> None:
    events = SSEParser().feed(b"data: a\n\ndata: b\n\n")
    assert [e.data for e in events] == ["a", "b"]


def test_parser_joins_lines_split_across_reads_at_any_byte() -> None:
    parser = SSEParser()
    events = []
    for index in range(len(STREAM)):
        events += parser.feed(STREAM[index : index + 1])
    assert len(events) == 7
    assert events[-1].data == "[DONE]"


def test_parser_keeps_a_utf8_character_split_across_reads() -> None:
    encoded = "data: café\n\n".encode()
    cut = encoded.index(b"\xa9")  # inside the two bytes of "é"
    parser = SSEParser()
    assert parser.feed(encoded[:cut]) == []
    assert [e.data for e in parser.feed(encoded[cut:])] == ["café"]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_parser_accepts_every_line_ending(newline: bytes) -> None:
    raw = b"event: x" + newline + b"data: 1" + newline + newline
    parser = SSEParser()
    # A CR at the end of what arrived may be half of a CRLF, so it waits for more or the end.
    events = parser.feed(raw) + parser.flush()
    assert [(e.event, e.data) for e in events] == [("x", "1")]


def test_parser_ignores_comments_and_joins_multiline_data() -> None:
    events = SSEParser().feed(b": keep-alive\n\ndata: a\ndata: b\n\n")
    assert [e.data for e in events] == ["a\nb"]


def test_flush_returns_a_last_event_without_its_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: [DONE]") == []
    assert [e.data for e in parser.flush()] == ["[DONE]"]


@pytest.mark.parametrize(
    "reads",
    [
        [HELLO, WORLD, DONE],  # one event a read: the fast path
        [b"event: delta\n", HELLO, b": keep-alive\n\n", WORLD],  # a name read before
        [b"data: a\ndata: b\n\n", HELLO],  # multi-line data
        [HELLO[:9], HELLO[9:] + WORLD],  # split, then two at once
        [b"data: x\r\n\r\n", b"data: y\n\n"],  # CRLF, then LF
    ],
)
def test_one_event_a_read_parses_as_the_general_path_does(reads: list[bytes]) -> None:
    fast, general = SSEParser(), SSEParser()
    got = [(e.data, e.event) for read in reads for e in fast.feed(read)]
    # the general path, byte by byte: never the one-event-a-read case
    want = [
        (e.data, e.event)
        for read in reads
        for i in range(len(read))
        for e in general.feed(read[i : i + 1])
    ]
    assert got == want and got


def test_role_only_and_empty_deltas_do_not_start_ttft() -> None:
    record = fold(
        [
            (ROLE_ONLY, 1.0),
            (EMPTY_DELTA, 2.0),
            (HELLO, 30.0),
            (WORLD, 40.0),
            (FINISH + USAGE_ONLY + DONE, 41.0),
        ]
    )
    assert record.ttft_ms == 30.0
    assert record.chunk_times_ms == [30.0, 40.0]


def test_usage_only_last_chunk_gives_the_token_counts() -> None:
    record = fold([(STREAM, 5.0)])
    assert (record.output_tokens, record.prompt_tokens) == (2, 7)
    assert (record.output_tokens_source, record.prompt_tokens_source) == ("usage", "usage")
    assert record.finish_reason == "length"


def test_without_usage_tokens_fall_back_to_chunks_and_say_so() -> None:
    record = fold([(ROLE_ONLY + HELLO + WORLD + FINISH + DONE, 5.0)])
    assert record.output_tokens == 2
    assert record.output_tokens_source == "chunk_count"
    assert (record.prompt_tokens, record.prompt_tokens_source) == (None, "none")


def test_completions_text_chunks_count_as_content() -> None:
    text = chunk(choices=[{"index": 0, "text": "Hi", "finish_reason": None}])
    record = fold([(text, 3.0), (DONE, 4.0)])
    assert record.ttft_ms == 3.0


def test_a_stream_cut_midway_is_incomplete() -> None:
    with pytest.raises(IncompleteStream, match="inside an event"):
        fold([(ROLE_ONLY + HELLO + WORLD[:20], 5.0)])


def test_a_stream_ending_without_done_but_with_finish_reason_is_complete() -> None:
    record = fold([(HELLO + FINISH + USAGE_ONLY, 5.0)])
    assert record.output_tokens == 2


def test_a_stream_cut_between_events_is_incomplete() -> None:
    with pytest.raises(IncompleteStream, match="without"):
        fold([(ROLE_ONLY + HELLO + WORLD, 5.0)])


def test_non_json_data_is_a_malformed_stream() -> None:
    with pytest.raises(MalformedStream, match="not JSON"):
        fold([(HELLO + b"data: {oops\n\n", 5.0)])


def test_bytes_that_are_not_utf8_are_counted_on_every_path() -> None:
    """The one-event read, the LF split, the CR path and the flush all count a line that is
    not UTF-8 (its text has U+FFFD there); valid text counts nothing."""
    reads = [
        [b'data: {"a": "\xff"}\n\n'],  # one single-line event in one read
        [b'data: {"a": "\xff"}\n', b"\n"],  # split at the line end
        [b'data: {"a": "\xff"}\r\n\r\n'],  # CRLF
        [b'data: {"a": "\xff"}'],  # no end: the flush
    ]
    for chunks in reads:
        parser = SSEParser()
        events = [e for chunk in chunks for e in parser.feed(chunk)] + parser.flush()
        assert [e.data for e in events] == ['{"a": "\ufffd"}'], chunks
        assert parser.invalid_utf8 == 1, chunks
    valid = SSEParser()
    valid.feed('data: {"a": "é \ufffd"}\n\n'.encode())
    assert valid.invalid_utf8 == 0
