"""What a run needs to be compared later: machine, software, versions, config hash."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from harness.telemetry.nvml import Nvml

REPO_ROOT = Path(__file__).resolve().parents[1]


def harness_version() -> dict[str, Any]:
    try:
        version = metadata.version("llm-bench-harness")
    except metadata.PackageNotFoundError:
        version = "unknown"
    info: dict[str, Any] = {"version": version, "git_commit": None, "git_dirty": None}
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        info.update(git_commit=commit, git_dirty=bool(dirty))
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(machine_id: str, nvml: Nvml | None = None) -> dict[str, Any]:
    nvml = nvml or Nvml()
    return {
        "machine_id": machine_id,
        "hostname": platform.node(),
        "cpu": cpu_model(),
        "cpu_cores_logical": psutil.cpu_count(logical=True),
        "cpu_cores_physical": psutil.cpu_count(logical=False),
        "memory_total_mib": psutil.virtual_memory().total / 2**20,
        "gpus": nvml.devices(),
        "gpu_telemetry": "nvml" if nvml.available else nvml.reason,
    }


def software_info() -> dict[str, Any]:
    packages = {}
    for name in ("aiohttp", "hydra-core", "xllamacpp", "nvidia-ml-py", "pandas"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "harness": harness_version(),
        "packages": packages,
    }


def config_hash(config: dict[str, Any]) -> str:
    """A stable hash of what decides the measurement (not where results go)."""
    ignored = ("results", "print_table", "machine", "resume", "on_failure", "min_free_disk_mib")
    relevant = {k: v for k, v in config.items() if k not in ignored}
    text = json.dumps(relevant, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
