"""Where a job runs: read on the node that runs it, never on the submitting host."""

from __future__ import annotations

import os
import socket

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

# Set by SLURM (gres), Ray (num_gpus) and submitit's local executor; absent: every GPU.
GPU_VARIABLE = "CUDA_VISIBLE_DEVICES"


def describe() -> str:
    """One line for bench.log: host, scheduler job id and the GPUs this job was given."""
    job_id = HydraConfig.get().job.get("id") if HydraConfig.initialized() else None
    gpus = os.environ.get(GPU_VARIABLE)
    return (
        f"host {socket.gethostname()}, job id {job_id or 'none'}, "
        f"{GPU_VARIABLE}={gpus if gpus is not None else '(unset: every GPU)'}"
    )


def forget_host_values(config: DictConfig) -> None:
    """Drop the values the submitting host resolved (its machine id in hydra.sweep.dir):
    Hydra copies them into every job's config, and each job must resolve them where it runs."""
    OmegaConf.clear_cache(config)
