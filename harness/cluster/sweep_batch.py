"""How many jobs the sweeper hands the launcher at once (`hydra.sweeper.max_batch_size`)."""

from __future__ import annotations

from omegaconf import OmegaConf

# These submit the whole sweep at once and cancel the rest themselves when a job fails.
WHOLE_SWEEP_LAUNCHERS = (
    "hydra_plugins.harness_launchers.submitit_launchers.SlurmLauncher",
    "hydra_plugins.harness_launchers.ray_launcher.RayLauncher",
)


def sweep_batch_size(launcher_target: str) -> int | None:
    """None (the whole sweep) for a cluster launcher; 1 for one that runs jobs here, one
    batch of one after another, so that on_failure=stop stops the jobs after a failed one."""
    return None if launcher_target in WHOLE_SWEEP_LAUNCHERS else 1


def register() -> None:
    """The resolver conf/config.yaml uses; safe to call twice."""
    if not OmegaConf.has_resolver("sweep_batch_size"):
        OmegaConf.register_new_resolver("sweep_batch_size", sweep_batch_size)
