"""Whose an error is, and how a level says its failures: the client's own limits are the
client's; each kind of failure is named with one sample message."""

from __future__ import annotations

import errno

import aiohttp
import pytest

from harness.client.openai_api import connect_failure, refused
from harness.levels import failure_lines
from harness.records import RequestRecord


def connect_error(code: int, text: str) -> aiohttp.ClientConnectorError:
    key = aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 9, False, True, None, None, None)
    return aiohttp.ClientConnectorError(key, OSError(code, text))


@pytest.mark.parametrize("code", [errno.EMFILE, errno.ENFILE])
def test_a_connect_that_runs_out_of_descriptors_is_the_clients(code: int) -> None:
    kind, text = connect_failure(connect_error(code, "Too many open files"))
    assert kind == "client_error"
    assert text == (
        "the client could not open a connection: Too many open files (raise the limit: ulimit -n)"
    )


def test_a_refused_connect_is_the_servers_and_counts_toward_gone() -> None:
    kind, text = connect_failure(connect_error(errno.ECONNREFUSED, "Connection refused"))
    record = RequestRecord(request_id=0, concurrency=1, worker=0, error_type=kind, error_text=text)
    assert kind == "connect" and refused(record)


def failed(kind: str, text: str, status: int | None = None) -> RequestRecord:
    return RequestRecord(request_id=0, concurrency=1, worker=0, status="error",
                         error_type=kind, error_text=text, http_status=status)  # fmt: skip


def test_a_partial_level_names_each_kind_most_first_with_one_sample() -> None:
    records = [
        *[failed("http", "overloaded: try again", 503)] * 3,
        *[failed("incomplete", "stream ended without [DONE] or a finish_reason")] * 2,
        failed("idle", "no byte for 60 s (load.idle_timeout_s=60)"),
        failed("cancelled", "the level was stopped"),
    ]
    assert failure_lines(records) == [
        "3 x HTTP 503: overloaded: try again",
        "2 x incomplete: stream ended without [DONE] or a finish_reason",
        "1 x idle: no byte for 60 s (load.idle_timeout_s=60)",
    ]
