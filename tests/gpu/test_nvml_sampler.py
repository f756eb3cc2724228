"""GPU tier: the NVML sampler against a known allocation (run where a GPU is present)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from harness.telemetry.energy import level_energy
from harness.telemetry.nvml import Nvml
from harness.telemetry.sampler import Sampler
from tests.support.allocators import GPU_ALLOCATOR, start

pytestmark = pytest.mark.gpu
ALLOCATED_MIB = 4096

if not Nvml().available:
    pytest.skip(f"no NVIDIA GPU here: {Nvml().reason}", allow_module_level=True)


def test_the_sampler_sees_a_4_gib_allocation_within_1_percent(tmp_path: Path) -> None:
    sampler = Sampler(tmp_path / "telemetry.csv", 50, "on", lambda: [child.pid])
    baseline = sampler.baseline()  # before the "engine" exists, as the runner takes it
    child = start(GPU_ALLOCATOR, ALLOCATED_MIB)
    try:
        assert child.stdout and child.stdout.readline().strip() == "context"
        sampler.start()
        time.sleep(1.0)
        before = sampler.peak(0, time.perf_counter())
        assert child.stdin
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "allocated"
        mark = time.perf_counter()
        time.sleep(1.0)
        after = sampler.peak(mark, time.perf_counter())
    finally:
        sampler.stop()
        child.kill()
        child.wait()
    assert baseline and before["peak_memory_kind"] == "gpu"
    grown = after["peak_memory_mib"] - before["peak_memory_mib"]
    assert grown == pytest.approx(ALLOCATED_MIB, rel=0.01)
    assert after["peak_memory_above_baseline_mib"] >= ALLOCATED_MIB  # the context comes on top
    if after["peak_engine_process_mib"] is None:  # NVML lists no pids, e.g. in a container
        assert after["peak_memory_devices"]["chosen_by"] in ("given", "all")
        return
    # the allocating process is found on the one device it uses, and only there
    assert after["peak_memory_devices"]["chosen_by"] == "per_process_query"
    assert len(after["peak_memory_devices"]["devices"]) == 1
    own_grown = after["peak_engine_process_mib"] - (before["peak_engine_process_mib"] or 0.0)
    assert own_grown == pytest.approx(ALLOCATED_MIB, rel=0.01)
    assert after["peak_memory_by_device_mib"]["gpu_process:engine"] >= ALLOCATED_MIB


def test_level_energy_from_the_counter_agrees_with_power_integrated(tmp_path: Path) -> None:
    sampler = Sampler(tmp_path / "telemetry.csv", 50, "on", lambda: [])
    sampler.start()
    try:
        time.sleep(0.3)
        start = time.perf_counter()
        time.sleep(2.0)
        end = time.perf_counter()
        energy = sampler.energy(start, end)
    finally:
        sampler.stop()
    assert energy["energy_j"] is not None, "NVML reports neither an energy counter nor power"
    # an H100/H200 idles at 50-120 W, and no single GPU draws more than 1.2 kW
    assert 5.0 < energy["mean_power_w"] < 1200.0
    if energy["energy_source"] != "nvml_energy_counter":
        return  # a GPU without the counter: power integrated is all there is
    powered = [replace(s, energy_mj={d: None for d in s.energy_mj}) for s in sampler.gpu_snapshots]
    devices, _ = sampler.engine_devices(sampler.gpu_snapshots)
    integrated = level_energy(powered, devices, start, end)
    assert integrated["energy_source"] == "power_integrated"
    assert integrated["energy_j"] == pytest.approx(energy["energy_j"], rel=0.15)
