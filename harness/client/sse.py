"""Incremental parser for server-sent events as OpenAI-compatible servers stream them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SSEEvent:
    data: str
    event: str | None = None


class SSEParser:
    """Feed raw bytes as they arrive; get back every event completed by them.

    Lines may be split across network reads at any byte (also inside a UTF-8 character),
    and may end with LF, CRLF or CR. An event ends at a blank line.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._data_lines: list[str] = []
        self._event: str | None = None
        self.invalid_utf8 = 0  # lines that were not UTF-8, decoded with U+FFFD in their place

    def _text(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.invalid_utf8 += 1
            return raw.decode("utf-8", errors="replace")

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if (
            not self._buffer
            and not self._data_lines
            and chunk.startswith(b"data: ")
            and chunk.find(b"\n") == len(chunk) - 2
            and chunk.endswith(b"\n\n")
            and b"\r" not in chunk
        ):
            # the most common read by far: exactly one single-line event, nothing pending
            return [SSEEvent(self._text(chunk[6:-2]), self._take_event())]
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" not in buffer:
            # the common case (LF only): split the read at once; a line never splits a
            # UTF-8 character, and an unfinished last line waits as bytes
            *lines, self._buffer = buffer.split(b"\n")
            events = []
            for raw in lines:
                event = self._process_line(self._text(raw))
                if event is not None:
                    events.append(event)
            return events
        self._buffer = buffer
        events = []
        while True:
            line, found = self._take_line()
            if not found:
                break
            event = self._process_line(line)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[SSEEvent]:
        """End of stream: return an event left without its closing blank line, if any."""
        events: list[SSEEvent] = []
        if self._buffer:
            # A trailing CR ends its line; anything else left is a last line without its end.
            leftover = self._text(self._buffer)
            self._buffer = b""
            for line in leftover.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
                event = self._process_line(line)
                if event is not None:
                    events.append(event)
        if self._data_lines:
            events.append(SSEEvent(data="\n".join(self._data_lines), event=self._event))
            self._data_lines, self._event = [], None
        return events

    def _take_event(self) -> str | None:
        event, self._event = self._event, None
        return event

    @property
    def pending_bytes(self) -> int:
        return len(self._buffer)

    def _take_line(self) -> tuple[str, bool]:
        lf = self._buffer.find(b"\n")
        cr = self._buffer.find(b"\r")
        ends = [i for i in (lf, cr) if i >= 0]
        if not ends:
            return "", False
        index = min(ends)
        end = index + 1
        if index == cr:
            # A CR at the very end may be the first half of a CRLF: wait for more.
            if end == len(self._buffer):
                return "", False
            if self._buffer[end : end + 1] == b"\n":
                end += 1
        line = self._text(self._buffer[:index])
        self._buffer = self._buffer[end:]
        return line, True

    def _process_line(self, line: str) -> SSEEvent | None:
        if line == "":
            if not self._data_lines:
                self._event = None
                return None
            event = SSEEvent(data="\n".join(self._data_lines), event=self._event)
            self._data_lines, self._event = [], None
            return event
        if line.startswith("data: "):
            self._data_lines.append(line[6:])
            return None
        if line.startswith(":"):
            return None  # comment / keep-alive
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data_lines.append(value)
        elif name == "event":
            self._event = value
        return None
