"""Sweeps on a cluster: Hydra's submitit (SLURM, local) and Ray launchers, used as they are
for submission, placement and resources, with the harness's sweep rules added on top.

The rules (harness/cluster/jobs.py): a job that fails in a way that stops a local sweep
(`on_failure=stop`, or a crash) cancels the jobs still waiting or running; Ctrl-C on the
submitting host cancels them all; cancelled jobs get SIGTERM (or Ray's KeyboardInterrupt),
so each stops its engine and leaves a valid run directory marked interrupted.
"""

import warnings

# conf/hydra/launcher/ keeps the plugins' own option names, so Hydra checks each file
# against the plugin's schema of the same name, and warns that it does: the check is wanted.
# Here, because every process of a sweep imports this package: the submitting one
# (harness.bench) and each job (unpickling its launcher or Ray function).
warnings.filterwarnings(
    "ignore", r"\s*'hydra/launcher/\w+' is validated against ConfigStore schema", UserWarning
)
