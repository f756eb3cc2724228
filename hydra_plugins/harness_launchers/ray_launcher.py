"""`hydra/launcher=ray` (conf/hydra/launcher/ray.yaml)."""

from __future__ import annotations

from harness.cluster import extras
from harness.cluster.ray_rules import RaySweepRules

try:
    from hydra_plugins.hydra_ray_launcher import ray_launcher as plugin
except ImportError:  # the `ray` extra is not installed
    plugin = None

if plugin is not None:

    class RayLauncher(RaySweepRules, plugin.RayLauncher):
        """One Ray task per deployment."""

else:

    class RayLauncher(extras.MissingExtra):  # type: ignore[no-redef]
        launcher, extra = "ray", "ray"
