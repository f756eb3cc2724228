"""A launcher whose optional extra is not installed says so, and how to install it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher


class MissingExtra(Launcher):
    """Stands in for a launcher whose plugin is not installed; refuses with the fix."""

    launcher = ""
    extra = ""

    def __init__(self, **_: Any) -> None:
        raise ImportError(
            f"hydra/launcher={self.launcher} needs the `{self.extra}` extra: "
            f".venv/bin/pip install -e '.[{self.extra}]'"
        )

    def setup(self, **_: Any) -> None:
        raise NotImplementedError

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        raise NotImplementedError
