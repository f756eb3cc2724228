"""The sweep rules the cluster launchers add: a failed job or Ctrl-C stops the rest, the
sweeper hands a cluster launcher the whole sweep, impossible Ray requests are refused."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hydra.core.utils import JobReturn, JobStatus

from harness.cluster import extras, jobs
from harness.cluster.jobs import JobCancelled, collect
from harness.cluster.ray_rules import check_resources
from harness.cluster.sweep_batch import WHOLE_SWEEP_LAUNCHERS, sweep_batch_size
from tests.support.runs import REPO


class FakeJob:
    """Finishes after `polls` calls of done(), with `status`; records a cancel."""

    def __init__(self, polls: int, status: JobStatus = JobStatus.COMPLETED) -> None:
        self.polls = polls
        self.status = status
        self.cancelled = False

    def done(self) -> bool:
        self.polls -= 1
        return self.polls <= 0 or self.cancelled

    def result(self) -> JobReturn:
        if self.cancelled:
            raise RuntimeError("no result: cancelled")
        return JobReturn(status=self.status, _return_value="complete")

    def cancel(self) -> None:
        self.cancelled = True


OVERRIDES = [["engine.parallel=1"], ["engine.parallel=4"], ["engine.parallel=8"]]


def test_results_come_back_in_job_order_whatever_finishes_first() -> None:
    fakes = [FakeJob(polls=3), FakeJob(polls=1), FakeJob(polls=2)]
    returns = collect(fakes, OVERRIDES, poll_s=0)
    assert [r.status for r in returns] == [JobStatus.COMPLETED] * 3
    assert not any(fake.cancelled for fake in fakes)


def test_a_failed_job_cancels_the_unfinished_ones_and_names_itself_in_theirs() -> None:
    failing = FakeJob(polls=1, status=JobStatus.FAILED)
    finished, running = FakeJob(polls=1), FakeJob(polls=100)
    returns = collect([finished, failing, running], OVERRIDES, poll_s=0)
    assert running.cancelled and not finished.cancelled
    assert [r.status for r in returns] == [
        JobStatus.COMPLETED,
        JobStatus.FAILED,
        JobStatus.FAILED,
    ]
    with pytest.raises(JobCancelled, match=r"cancelled after job #1 \(engine.parallel=4\) failed"):
        _ = returns[2].return_value


def test_ctrl_c_while_waiting_cancels_every_unfinished_job_and_goes_on_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running = [FakeJob(polls=100), FakeJob(polls=100)]
    sleeps = iter([KeyboardInterrupt()])

    def sleep(_: float) -> None:
        error = next(sleeps, None)
        if error:
            raise error

    monkeypatch.setattr(jobs.time, "sleep", sleep)
    with pytest.raises(KeyboardInterrupt):
        collect(running, OVERRIDES[:2], poll_s=0)
    assert all(fake.cancelled for fake in running)


@pytest.mark.parametrize("target", WHOLE_SWEEP_LAUNCHERS)
def test_a_cluster_launcher_gets_the_whole_sweep_at_once(target: str) -> None:
    assert sweep_batch_size(target) is None


def test_the_basic_launcher_gets_one_job_at_a_time() -> None:
    assert sweep_batch_size("hydra._internal.core_plugins.basic_launcher.BasicLauncher") == 1


def _composed_batch_size(*overrides: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "harness.bench", *overrides, "--cfg", "hydra", "--resolve"]
        + ["--package", "hydra.sweeper"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "validated against ConfigStore schema" not in result.stderr
    return next(x for x in result.stdout.splitlines() if x.startswith("max_batch_size:"))


@pytest.mark.parametrize(
    ("launcher", "expected"),
    [("basic", "1"), ("submitit_local", "1"), ("submitit_slurm", "null"), ("ray", "null")],
)
def test_conf_gives_each_launcher_its_batch_size(launcher: str, expected: str) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    assert _composed_batch_size(f"hydra/launcher={launcher}") == f"max_batch_size: {expected}"


def test_a_ray_sweep_asking_for_more_gpus_than_the_cluster_has_is_refused() -> None:
    with pytest.raises(ValueError, match=r"num_gpus=1 but the Ray cluster has 0 GPU"):
        check_resources({"num_gpus": 1, "num_cpus": 1}, {"CPU": 2.0})
    check_resources({"num_gpus": 0, "num_cpus": 2}, {"CPU": 2.0})


def test_a_launcher_without_its_extra_says_how_to_install_it() -> None:
    class Missing(extras.MissingExtra):
        launcher, extra = "ray", "ray"

    with pytest.raises(ImportError, match=r"hydra/launcher=ray needs the `ray` extra: .*\[ray\]"):
        Missing()
