"""The sweep rules for hydra-ray-launcher's launcher (`hydra/launcher=ray`).

The plugin's config (`ray.init` for ray.init(), `ray.remote` for each job's resources) and
Ray's placement are used as they are; launch() differs from the plugin's: jobs are
collected as they finish, a failed one (or Ctrl-C) stops the rest, a job runs in the
submitting directory (a shared filesystem), and a sweep asking for more GPUs per job than
the cluster has is refused instead of waiting forever. The launcher class Hydra finds is
in hydra_plugins/harness_launchers/.

A job is stopped with a real SIGTERM sent to itself once the sweep's stop file appears
beside multirun.yaml (on the shared filesystem): ray.cancel() only simulates Ctrl-C in
the task's main thread, which does not reach the event loop of a running level, and a
job that waited on Ray for a flag would hand its CPUs back to Ray while it waits.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from harness.cluster.jobs import JobCancelled, collect
from harness.cluster.placement import GPU_VARIABLE, forget_host_values

log = logging.getLogger(__name__)

STOP_POLL_S = 1.0


class RaySweepRules:
    """Mixed into the plugin's RayLauncher: one Ray task per deployment, each with the
    resources in `ray.remote`."""

    ray_cfg: DictConfig
    config: DictConfig | None
    hydra_context: HydraContext | None
    task_function: TaskFunction | None

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        assert self.config is not None and self.hydra_context is not None
        assert self.task_function is not None
        import ray

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        forget_host_values(self.config)
        start_ray(_options(self.ray_cfg.init))
        remote_options = _options(self.ray_cfg.remote)
        check_resources(remote_options, ray.cluster_resources())
        run_remotely = ray.remote(**remote_options)(run_on_node)
        stop_file = sweep_dir / f".stop-{uuid.uuid4().hex}"
        refs = []
        for offset, overrides in enumerate(job_overrides):
            idx = initial_job_idx + offset
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            sweep_config = self.hydra_context.config_loader.load_sweep_config(
                self.config, list(overrides)
            )
            with open_dict(sweep_config):
                sweep_config.hydra.job.num = idx
            refs.append(
                run_remotely.remote(
                    self.hydra_context,
                    sweep_config,
                    self.task_function,
                    Singleton.get_state(),
                    os.getcwd(),
                    str(stop_file.resolve()),
                )
            )
        log.info("ray: %d job(s) submitted, output in %s", len(refs), sweep_dir)
        try:
            return collect([RayJob(ref, stop_file) for ref in refs], job_overrides)
        finally:
            stop_file.unlink(missing_ok=True)


def start_ray(init: dict[str, Any]) -> None:
    """Join the cluster at init['address'], or start a local one (address null)."""
    import ray

    if not ray.is_initialized():
        log.info("ray.init(%s)", init)
        ray.init(**init)


def check_resources(remote: dict[str, Any], cluster: dict[str, float]) -> None:
    """Refuse a job that no node could ever run (Ray would keep it pending forever)."""
    for resource, key in (("GPU", "num_gpus"), ("CPU", "num_cpus")):
        wanted = remote.get(key) or 0
        if wanted > cluster.get(resource, 0):
            raise ValueError(
                f"hydra.launcher.ray.remote.{key}={wanted} but the Ray cluster has "
                f"{cluster.get(resource, 0):g} {resource}(s) in all; for an engine on the "
                f"CPU set hydra.launcher.ray.remote.num_gpus=0"
            )


def run_on_node(
    hydra_context: HydraContext,
    sweep_config: DictConfig,
    task_function: TaskFunction,
    singleton_state: dict[Any, Any],
    submit_dir: str,
    stop_file: str,
) -> JobReturn:
    """The job, on whichever node Ray chose: in the submitting directory, as Hydra runs it."""
    import ray

    if Path(stop_file).exists():
        return JobReturn(status=JobStatus.FAILED, _return_value=JobCancelled("never started"))
    try:
        os.chdir(submit_dir)
    except OSError as exc:
        raise RuntimeError(
            f"{submit_dir} is not there on {socket.gethostname()}: the harness checkout and "
            "its results directory must be on a filesystem every node shares"
        ) from exc
    if not ray.get_gpu_ids():  # Ray leaves it unset: a job given no GPU would see them all
        os.environ[GPU_VARIABLE] = ""
    setup_globals()
    Singleton.set_state(singleton_state)
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = ray.get_runtime_context().get_task_id()
    HydraConfig.instance().set_config(sweep_config)
    finished = _terminate_when_stopped(Path(stop_file))
    try:
        return run_job(
            hydra_context=hydra_context,
            task_function=task_function,
            config=sweep_config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
    finally:
        finished.set()


def _terminate_when_stopped(stop_file: Path) -> threading.Event:
    """SIGTERM this job once the stop file appears: it stops its engine and closes its run."""
    finished = threading.Event()

    def watch() -> None:
        while not finished.wait(STOP_POLL_S):
            if stop_file.exists():
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="sweep-stop-watch", daemon=True).start()
    return finished


def _options(node: DictConfig) -> dict[str, Any]:
    """A config node as keyword arguments, leaving out what is null (Ray's default)."""
    options = OmegaConf.to_container(node, resolve=True) or {}
    assert isinstance(options, dict)
    return {str(key): value for key, value in options.items() if value is not None}


class RayJob:
    def __init__(self, ref: Any, stop_file: Path) -> None:
        import ray

        self.ray = ray
        self.ref = ref
        self.stop_file = stop_file

    def done(self) -> bool:
        ready, _ = self.ray.wait([self.ref], timeout=0)
        return bool(ready)

    def result(self) -> JobReturn:
        return self.ray.get(self.ref)

    def cancel(self) -> None:
        # Running jobs stop, waiting ones return as soon as they start; ray.cancel() is not
        # used, as its KeyboardInterrupt could land while a stopping job stops its engine.
        self.stop_file.touch()
