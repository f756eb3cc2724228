"""One level's plan and its state in one process: the prepared requests, the units they
are sent in, and sending them.

A unit is what one worker (or one open-loop arrival) sends: a single request, or the turns
of a multi-turn session one after another, each with the history so far. Only a session's
later turns are built while the level runs (their history holds the replies); every other
request's bytes are built before it starts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp

from harness.client.openai_api import (
    Endpoint,
    PreparedRequest,
    RequestSpec,
    mark_cancelled,
    refused,
    send_streaming,
    wire_tracing,
)
from harness.client.specs import session_units
from harness.records import RequestRecord

# Requests whose bytes are built before a level starts; a larger level builds each further
# one as an earlier one is sent, so its memory does not grow with its request count.
PREPARED_AHEAD = 4096
# Refused connections in a row after which the server is taken to be gone: the level stops
# sending (a server that restarts mid-level would be measured as two servers).
GONE_AFTER_REFUSED = 8


@dataclass
class LevelPlan:
    """One level. `concurrency`: workers (concurrency), wave size (burst), or the cap on
    requests in flight (rate; 0: no cap). `offsets_s`: the send times of a replayed trace
    (rate mode), instead of a generated arrival schedule."""

    concurrency: int
    num_requests: int
    max_duration_s: float | None
    request_timeout_s: float
    connect_timeout_s: float
    keep_alive: bool = True
    ramp_up_s: float = 0.0  # workers start spread evenly over this time (0: all at once)
    mode: str = "concurrency"
    rate_per_s: float | None = None
    arrival: str = "poisson"
    seed: int = 0
    level_index: int = 0
    offsets_s: list[float] | None = None
    idle_timeout_s: float | None = None  # no byte for this long: the request fails


@dataclass
class Share:
    """The part of a level one process runs: unit indices i with i % count == index."""

    index: int = 0
    count: int = 1
    t0_mono_s: float | None = None  # common start of the level across processes
    claim: Callable[[], int] | None = None  # next unit index of a closed loop (shared)


def new_session(keep_alive: bool, limit: int = 1) -> aiohttp.ClientSession:
    """A session whose connections are reused only with keep-alive.

    Without keep-alive every request opens a new connection (about 1 ms more TTFT on
    loopback): llama.cpp's server drops a kept-alive connection after a streamed response
    while the client still trusts it ("Server disconnected" on the next request).
    """
    connector = aiohttp.TCPConnector(limit=limit, force_close=not keep_alive)
    return aiohttp.ClientSession(connector=connector, trace_configs=[wire_tracing()])


async def sleep_until(deadline_mono_s: float) -> None:
    delay = deadline_mono_s - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


class Conversation:
    """One session's history: each turn's user message and the reply it got."""

    def __init__(self) -> None:
        self.history: list[dict[str, str]] = []

    def request(
        self, endpoint: Endpoint, spec: RequestSpec, first: PreparedRequest
    ) -> PreparedRequest:
        return first if not self.history else endpoint.prepare(spec, self.history)

    def add_turn(self, spec: RequestSpec, reply: list[str]) -> None:
        self.history.append({"role": "user", "content": spec.prompt})
        self.history.append({"role": "assistant", "content": "".join(reply)})


class LevelState:
    """State shared by the request tasks of one level in one process."""

    def __init__(
        self,
        endpoint: Endpoint,
        specs: Sequence[RequestSpec],
        plan: LevelPlan,
        on_record: Callable[[RequestRecord], None],
        first_request_id: int,
        share: Share,
    ) -> None:
        self.plan, self.endpoint, self.specs = plan, endpoint, specs
        self.on_record, self.first_request_id, self.share = on_record, first_request_id, share
        self.sessions = session_units(specs)
        self.unit_count = len(self.sessions) if self.sessions else plan.num_requests
        # built before the level starts: a wave of requests only hands bytes to sockets
        self.ahead = min(len(specs), max(PREPARED_AHEAD, 4 * plan.concurrency))
        self.requests = {i: self.build(i) for i in range(self.ahead)}
        self.target = endpoint.target()
        self.records: list[RequestRecord] = []
        self.timeout = aiohttp.ClientTimeout(
            total=plan.request_timeout_s,
            sock_connect=plan.connect_timeout_s,
            sock_read=plan.idle_timeout_s,
        )
        self.started = share.t0_mono_s or time.perf_counter()
        self.deadline = self.started + plan.max_duration_s if plan.max_duration_s else None
        self.stopped_by_deadline = False
        self.refused_in_a_row, self.server_gone = 0, False
        # one request of this event loop opens its connection (or, on a kept-alive one,
        # goes on the wire) at a time, in the order they were due: see `send_streaming`
        self.send_turn = asyncio.Semaphore(1)

    def build(self, slot: int) -> tuple[RequestSpec, PreparedRequest]:
        spec = self.specs[slot]
        return spec, self.endpoint.prepare(spec)

    def prepared(self, index: int) -> tuple[RequestSpec, PreparedRequest]:
        """Request `index`'s spec and bytes, built ahead where they were."""
        slot = index % len(self.specs)
        return self.requests.pop(slot, None) or self.build(slot)

    def build_ahead(self, index: int) -> None:
        """Once request `index` is done, build the one `ahead` further on; the oldest built
        ones (taken by another process of the level) go, so the window stays `ahead`."""
        later = index % len(self.specs) + self.ahead
        if later >= len(self.specs) or later in self.requests:
            return
        self.requests[later] = self.build(later)
        while len(self.requests) > self.ahead:
            del self.requests[next(iter(self.requests))]

    def past_deadline(self) -> bool:
        """Whether to send no more: the level's time is up, or its server is gone."""
        if self.server_gone:
            return True
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            self.stopped_by_deadline = True
            return True
        return False

    def note_refusal(self, record: RequestRecord) -> None:
        if not refused(record):
            self.refused_in_a_row = 0
            return
        self.refused_in_a_row += 1
        self.server_gone = self.server_gone or self.refused_in_a_row >= GONE_AFTER_REFUSED

    async def send(
        self,
        session: aiohttp.ClientSession,
        index: int,
        worker: int,
        due_mono_s: float,
        conversation: Conversation | None = None,
    ) -> RequestRecord:
        spec, request = self.prepared(index)
        record = RequestRecord(
            request_id=self.first_request_id + index,
            concurrency=self.plan.concurrency,
            worker=worker,
            level=self.plan.level_index,
            due_mono_s=due_mono_s,
            prompt_tokens_expected=spec.prompt_tokens_expected,
            prompt_tokens_expected_source=spec.prompt_tokens_expected_source,
            prefix_group=spec.prefix_group,
            session=spec.session,
            turn=spec.turn,
        )
        reply = None
        if conversation is not None:
            request, reply = conversation.request(self.endpoint, spec, request), []
        try:
            await send_streaming(
                session, self.target, request, record, self.timeout, reply, self.send_turn
            )
        except asyncio.CancelledError:
            mark_cancelled(record)
            raise
        finally:
            self.records.append(record)
            self.on_record(record)
        self.build_ahead(index)
        self.note_refusal(record)
        if conversation is not None and reply is not None:
            conversation.add_turn(spec, reply)
        return record

    async def send_unit(
        self, session: aiohttp.ClientSession, unit: int, worker: int, due_mono_s: float
    ) -> float:
        """Send one unit, a session's turns one after another (each due when the user has
        thought after the last reply); return when its last request ended."""
        if self.sessions is None:
            return (await self.send(session, unit, worker, due_mono_s)).end_mono_s
        turns, conversation = self.sessions[unit], Conversation()
        end = due_mono_s
        for index in turns:
            if index != turns.start:
                due_mono_s = end + self.specs[index].think_time_s
                await sleep_until(due_mono_s)
                if self.past_deadline():
                    break
            record = await self.send(session, index, worker, due_mono_s, conversation)
            end = record.end_mono_s
        return end
