"""The sweep rules for hydra-submitit-launcher's SLURM and local launchers.

Submission, the job array and the job script are the plugin's and submitit's; only the
wait at the end differs: jobs are collected as they finish, and a failed one (or Ctrl-C)
cancels the rest (harness/cluster/jobs.py) instead of waiting on every job in turn.
The launcher classes Hydra finds are in hydra_plugins/harness_launchers/.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides
from omegaconf import DictConfig, OmegaConf

from harness.cluster.jobs import collect
from harness.cluster.placement import forget_host_values

log = logging.getLogger(__name__)

# The local executor's controller would kill a job 1 s after Ctrl-C, before its engine is
# stopped: it ignores SIGINT instead, and the launcher stops each job with SIGTERM, as
# scancel does on SLURM.
LOCAL_SETUP = ["trap '' INT"]


class SubmititSweepRules:
    """Mixed into the plugin's SlurmLauncher / LocalLauncher (which set _EXECUTOR)."""

    _EXECUTOR: str
    params: dict[str, Any]
    config: DictConfig | None

    def __init__(self, **params: Any) -> None:
        if self._EXECUTOR == "local":
            params["setup"] = LOCAL_SETUP + list(params.get("setup") or [])
        super().__init__(**params)  # type: ignore[call-arg]

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        assert self.config is not None
        executor = self._executor()
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        forget_host_values(self.config)
        job_params = []
        for offset, overrides in enumerate(job_overrides):
            idx = initial_job_idx + offset
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            job_params.append(
                (
                    list(overrides),
                    "hydra.sweep.dir",
                    idx,
                    f"job_id_for_{idx}",
                    Singleton.get_state(),
                )
            )
        jobs = executor.map_array(self, *zip(*job_params, strict=True))
        log.info("submitit %s: %d job(s), output in %s", self._EXECUTOR, len(jobs), sweep_dir)
        return collect([SubmititJob(job, self._EXECUTOR) for job in jobs], job_overrides)

    def _executor(self) -> Any:
        """The executor hydra-submitit-launcher builds, from the same parameters."""
        import submitit
        from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

        init_keys = {"submitit_folder", "max_num_timeout"}
        init = {
            f"{self._EXECUTOR}_{k}": self.params[k]
            for k in init_keys - {"submitit_folder"}
            if k in self.params
        }
        executor = submitit.AutoExecutor(
            cluster=self._EXECUTOR, folder=self.params["submitit_folder"], **init
        )
        shared = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{
                key if key in shared else f"{self._EXECUTOR}_{key}": value
                for key, value in self.params.items()
                if key not in init_keys
            }
        )
        return executor


class SubmititJob:
    """A submitted job: SLURM's is cancelled with scancel, a local one with SIGTERM."""

    def __init__(self, job: Any, executor: str) -> None:
        self.job = job
        self.executor = executor

    def done(self) -> bool:
        return self.job.done()

    def result(self) -> JobReturn:
        return self.job.results()[0]

    def cancel(self) -> None:
        if self.executor != "local":
            self.job.cancel(check=False)  # scancel: SIGTERM, then SIGKILL after KillWait
            return
        for task in local_tasks(int(self.job.job_id)):
            os.kill(task.pid, signal.SIGTERM)


def local_tasks(job_pid: int) -> list[psutil.Process]:
    """The processes running a local job's task (below its shell and controller)."""
    try:
        descendants = psutil.Process(job_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    tasks = []
    for proc in descendants:
        try:
            if "submitit.core._submit" in proc.cmdline():
                tasks.append(proc)
        except psutil.Error:
            continue
    return tasks
