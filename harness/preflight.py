"""Checks that run before any engine starts: can results be written, is there room."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path


class PreflightError(RuntimeError):
    """The job cannot store its results; the message says where and what to do."""


def check_results_dir(results: Path, min_free_mib: float) -> None:
    """Refuse a results root that cannot be created or written, or that lacks free space."""
    try:
        results.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=results, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise PreflightError(
            f"results={str(results)!r} is not writable ({exc.strerror or exc}); "
            "choose another store with RESULTS=... (or results=...)"
        ) from exc
    free_mib = shutil.disk_usage(results).free / 2**20
    if free_mib < min_free_mib:
        raise PreflightError(
            f"only {free_mib:.0f} MiB free under {str(results)!r}, less than "
            f"min_free_disk_mib={min_free_mib:g}; free some space or choose another store"
        )


def results_from_argv(argv: list[str], default: str = "results") -> Path:
    """The `results=` override of a command line (Hydra has not parsed it yet)."""
    value = default
    for arg in argv:
        if arg.startswith("results="):
            value = arg.split("=", 1)[1]
    return Path(value)
