"""The machine's ceilings for a run, as environment.json records them (`ceilings`).

The device the engine runs on decides which: a GPU's (NVML and the table, `gpus`) or the
CPU's (measured once per machine and cached under the store, `cpu`). A figure the user gave
(`machine.mem_bw_gbs`, `machine.compute_tflops`) replaces the one found, named so.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from harness.ceiling.gpus import gpu_ceilings
from harness.ceiling.measure import measure_cpu
from harness.config import MachineConfig
from harness.environment import cpu_model
from harness.store import write_json_atomic
from harness.telemetry.nvml import Nvml

log = logging.getLogger(__name__)

CACHE_DIR = "_machines"  # under the store root, one folder per machine id
CACHE_FILE = "cpu_ceilings.json"
NOT_MEASURED = {
    "memory_bandwidth_gbs": None,
    "memory_bandwidth_source": "not measured: both figures given",
    "compute_tflops": None,
    "compute_source": "not measured: both figures given",
}


def cache_path(results: Path, machine_id: str) -> Path:
    return Path(results) / CACHE_DIR / machine_id / CACHE_FILE


def cpu_ceilings(results: Path, machine_id: str, remeasure: bool = False) -> dict[str, Any]:
    """The CPU's measured ceilings: from the store's cache for this machine (same CPU model
    and core count), else measured now (a few seconds) and cached."""
    path = cache_path(results, machine_id)
    identity = {"cpu": cpu_model(), "cpu_threads": os.cpu_count() or 1}
    if path.is_file() and not remeasure:
        try:
            cached = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            cached = {}
        if all(cached.get(k) == v for k, v in identity.items()):
            return {**cached, "cached": str(path)}
    log.info("measuring this CPU's memory bandwidth and BLAS compute (a few seconds)")
    figures = {**identity, **measure_cpu().to_dict()}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, figures)
    return {**figures, "cached": None}


def machine_ceilings(
    machine: MachineConfig,
    on_gpu: bool,
    results: Path,
    machine_id: str,
    nvml: Nvml | None = None,
) -> dict[str, Any]:
    """The ceilings of the device the engine runs on: `memory_bandwidth_gbs` and
    `compute_tflops` with their sources, and the figures they were taken from."""
    nvml = nvml or Nvml()
    gpus = [gpu_ceilings(spec) for spec in nvml.memory_specs()] if on_gpu else []
    if gpus:
        chosen = gpus[0]  # the first device; several: each reads its own share
        device = "gpu"
        found: dict[str, Any] = {"gpus": gpus}
        if len(gpus) > 1:
            chosen = {**chosen, "memory_bandwidth_source": chosen["memory_bandwidth_source"]
                      + f" (GPU 0 of {len(gpus)})"}  # fmt: skip
    else:
        given = machine.mem_bw_gbs is not None and machine.compute_tflops is not None
        chosen = NOT_MEASURED if given else cpu_ceilings(results, machine_id, machine.remeasure)
        device = "cpu"
        found = {"cpu": chosen}
    ceilings = {
        "device": device,
        "memory_bandwidth_gbs": chosen["memory_bandwidth_gbs"],
        "memory_bandwidth_source": chosen["memory_bandwidth_source"],
        "compute_tflops": chosen["compute_tflops"],
        "compute_source": chosen["compute_source"],
        **found,
    }
    return given_ceilings(machine, keep=ceilings)


def given_ceilings(machine: MachineConfig, keep: dict[str, Any] | None = None) -> dict[str, Any]:
    """The figures the user gave (machine.mem_bw_gbs, machine.compute_tflops) over `keep`;
    with nothing to keep, those of a server on another machine (device unknown)."""
    ceilings: dict[str, Any] = dict(keep or {
        "device": None, "memory_bandwidth_gbs": None, "compute_tflops": None,
        "memory_bandwidth_source": "the server runs on another machine",
        "compute_source": "the server runs on another machine",
    })  # fmt: skip
    if machine.mem_bw_gbs is not None:
        ceilings["memory_bandwidth_gbs"] = float(machine.mem_bw_gbs)
        ceilings["memory_bandwidth_source"] = "given: machine.mem_bw_gbs"
    if machine.compute_tflops is not None:
        ceilings["compute_tflops"] = float(machine.compute_tflops)
        ceilings["compute_source"] = "given: machine.compute_tflops"
    return ceilings
