"""Waiting on the jobs of one launched batch, and cancelling the rest when one fails."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Protocol

from hydra.core.utils import JobReturn, JobStatus

log = logging.getLogger(__name__)

POLL_S = 1.0
# After a cancel, how long to wait for jobs to stop their engines and close their runs.
CANCEL_WAIT_S = 120.0


class JobCancelled(RuntimeError):
    """A job of the sweep was cancelled before it finished, and why."""


class LaunchedJob(Protocol):
    """One submitted job as a launcher's backend sees it."""

    def done(self) -> bool: ...

    def result(self) -> JobReturn: ...

    def cancel(self) -> None: ...


def collect(
    jobs: Sequence[LaunchedJob],
    overrides: Sequence[Sequence[str]],
    poll_s: float = POLL_S,
) -> list[JobReturn]:
    """Wait for every job; the first failed one cancels the others. Results in job order.

    On Ctrl-C every unfinished job is cancelled and given CANCEL_WAIT_S to stop before
    KeyboardInterrupt goes on up (a second Ctrl-C stops waiting).
    """
    returns: dict[int, JobReturn] = {}
    cause: str | None = None
    try:
        while len(returns) < len(jobs):
            finished = _gather_finished(jobs, overrides, returns, cause)
            for index in finished:
                if cause is None and returns[index].status == JobStatus.FAILED:
                    cause = f"job #{index} ({' '.join(overrides[index])}) failed"
                    log.error("%s: cancelling the jobs still waiting or running", cause)
                    _cancel_unfinished(jobs, returns)
            if len(returns) < len(jobs) and not finished:
                time.sleep(poll_s)
    except KeyboardInterrupt:
        log.warning("interrupted: cancelling %d unfinished job(s)", len(jobs) - len(returns))
        _cancel_unfinished(jobs, returns)
        _wait_stopped(jobs, returns, CANCEL_WAIT_S, poll_s)
        raise
    return [returns[index] for index in range(len(jobs))]


def _gather_finished(
    jobs: Sequence[LaunchedJob],
    overrides: Sequence[Sequence[str]],
    returns: dict[int, JobReturn],
    cause: str | None,
) -> list[int]:
    finished = []
    for index, job in enumerate(jobs):
        if index in returns or not job.done():
            continue
        returns[index] = _result(job, overrides[index], cause)
        finished.append(index)
    return finished


def _result(job: LaunchedJob, overrides: Sequence[str], cause: str | None) -> JobReturn:
    """The job's own JobReturn; a job that left none (cancelled, killed, lost) is FAILED."""
    try:
        return job.result()
    except Exception as exc:  # submitit's UncompletedJobError, Ray's TaskCancelledError, ...
        reason = f"cancelled after {cause}" if cause else f"{type(exc).__name__}: {exc}"
        return JobReturn(
            overrides=list(overrides),
            status=JobStatus.FAILED,
            _return_value=JobCancelled(f"job ({' '.join(overrides)}) {reason}"),
        )


def _cancel_unfinished(jobs: Sequence[LaunchedJob], returns: dict[int, JobReturn]) -> None:
    for index, job in enumerate(jobs):
        if index not in returns:
            try:
                job.cancel()
            except Exception as exc:  # a job that ended meanwhile, a scheduler hiccup
                log.warning("could not cancel job #%d: %s", index, exc)


def _wait_stopped(
    jobs: Sequence[LaunchedJob], returns: dict[int, JobReturn], wait_s: float, poll_s: float
) -> None:
    deadline = time.monotonic() + wait_s
    try:
        while time.monotonic() < deadline:
            if all(index in returns or job.done() for index, job in enumerate(jobs)):
                return
            time.sleep(poll_s)
        log.warning("some cancelled jobs were still running after %.0f s", wait_s)
    except KeyboardInterrupt:
        log.warning("not waiting for the cancelled jobs to stop")
