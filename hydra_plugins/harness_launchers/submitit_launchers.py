"""`hydra/launcher=submitit_slurm` and `submitit_local` (conf/hydra/launcher/)."""

from __future__ import annotations

from harness.cluster import extras
from harness.cluster.submitit_rules import SubmititSweepRules

try:
    from hydra_plugins.hydra_submitit_launcher import submitit_launcher as plugin
except ImportError:  # the `slurm` extra is not installed
    plugin = None

if plugin is not None:

    class SlurmLauncher(SubmititSweepRules, plugin.SlurmLauncher):
        """One SLURM array task per deployment."""

    class LocalLauncher(SubmititSweepRules, plugin.LocalLauncher):
        """The same path on this machine, one job at a time."""

else:

    class SlurmLauncher(extras.MissingExtra):  # type: ignore[no-redef]
        launcher, extra = "submitit_slurm", "slurm"

    class LocalLauncher(extras.MissingExtra):  # type: ignore[no-redef]
        launcher, extra = "submitit_local", "slurm"
