"""The sampler against real processes: process-tree RSS when there is no GPU."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest

from harness.telemetry.nvml import Nvml
from harness.telemetry.process import process_tree_rss_mib
from harness.telemetry.sampler import Sampler
from tests.support.allocators import HOST_ALLOCATOR, start

ALLOCATED_MIB = 300


def test_process_rss_sees_a_known_allocation(tmp_path: Path) -> None:
    child = start(HOST_ALLOCATOR, ALLOCATED_MIB)
    try:
        assert child.stdout and child.stdout.readline().strip() == "allocated"
        sampler = Sampler(tmp_path / "telemetry.csv", 20, "off", lambda: [child.pid])
        began = time.perf_counter()
        sampler.start()
        time.sleep(0.5)
        sampler.stop()
        peak = sampler.peak(began, time.perf_counter())
    finally:
        child.kill()
        child.wait()
    assert peak["peak_memory_kind"] == "process_rss"
    # the allocation plus a Python interpreter (about 10-20 MiB)
    assert ALLOCATED_MIB < peak["peak_memory_mib"] < ALLOCATED_MIB + 40
    assert peak["telemetry_samples"] >= 10
    # no GPU figures beside a process-tree peak
    assert peak["peak_memory_devices"] is None and peak["peak_engine_process_mib"] is None
    assert peak["peak_memory_above_baseline_mib"] is None
    rows = list(csv.DictReader((tmp_path / "telemetry.csv").open()))
    assert rows and rows[0]["source"] == "process_rss" and rows[0]["device"] == "engine"


def test_the_rss_of_a_gone_process_is_none_not_zero() -> None:
    child = start(HOST_ALLOCATOR, 1)
    child.kill()
    child.wait()
    assert process_tree_rss_mib([child.pid]) is None


def test_requiring_a_gpu_without_one_fails_with_the_reason(tmp_path: Path) -> None:
    if Nvml().available:
        pytest.skip("this machine has a working NVIDIA driver")
    with pytest.raises(RuntimeError, match="telemetry.gpu=on but"):
        Sampler(tmp_path / "t.csv", 50, "on", lambda: [])


def test_without_nvml_auto_falls_back_to_process_rss(tmp_path: Path) -> None:
    if Nvml().available:
        pytest.skip("this machine has a working NVIDIA driver")
    sampler = Sampler(tmp_path / "t.csv", 50, "auto", lambda: [])
    assert sampler.kind == "process_rss"
    sampler.stop()
