"""The engine's process tree: its pids and their summed RSS, the memory of a CPU engine."""

from __future__ import annotations

from typing import Any

import psutil

from harness.constants import MIB


def process_tree_rss_mib(pids: list[int]) -> float | None:
    """Summed RSS of the given processes and all their descendants."""
    seen: set[int] = set()
    total = 0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            family = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in family:
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
    return total / MIB if seen else None


def tree_pids(pids: list[int]) -> set[int]:
    found: set[int] = set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            found.update(p.pid for p in [root, *root.children(recursive=True)])
        except psutil.Error:
            continue
    return found


def rss_peak(peak_mib: float | None) -> dict[str, Any]:
    """The peak of the engine's process-tree RSS: no devices, no NVML figures."""
    return {
        "peak_memory_mib": peak_mib,
        "peak_memory_kind": "process_rss" if peak_mib is not None else None,
        "peak_memory_devices": None,
        "peak_engine_process_mib": None,
        "peak_memory_above_baseline_mib": None,
    }
