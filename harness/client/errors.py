"""How a request fails while its response streams: each kind with its error type."""

from __future__ import annotations

ERROR_TEXT_LIMIT = 500


class MalformedStream(Exception):
    error_type = "malformed_stream"


class StreamError(Exception):
    error_type = "stream_error"


class IncompleteStream(Exception):
    error_type = "incomplete_stream"
