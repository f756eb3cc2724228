"""Hydra finds launchers only in the hydra_plugins package: the harness's are here, thin
subclasses of the submitit and Ray plugins' own, with the logic in harness/cluster/."""
