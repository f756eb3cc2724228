"""GPU energy per level: NVML's energy counter across the level, or its power integrated,
read at the level's exact start and end; joules per output token (a fake NVML)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.telemetry.energy import level_energy
from harness.telemetry.nvml import Nvml
from harness.telemetry.sampler import Sampler
from tests.unit.test_telemetry_devices import ENGINE, FakeDevice, FakeNvmlError, FakePynvml, Process


@dataclass
class Snapshot:
    t_mono_s: float
    energy_mj: dict[int, float | None] = field(default_factory=dict)
    power_w: dict[int, float | None] = field(default_factory=dict)


def test_the_counter_is_read_at_the_levels_own_start_and_end() -> None:
    # 200 W on device 0 from t=10 s: 200 J a second; samples every 0.5 s around the level
    snapshots = [Snapshot(10 + 0.5 * i, {0: 200_000 * 0.5 * i}) for i in range(9)]
    energy = level_energy(snapshots, [0], 10.25, 13.75)
    assert energy["energy_j"] == pytest.approx(200 * 3.5)
    assert energy["energy_source"] == "nvml_energy_counter"
    assert energy["mean_power_w"] == pytest.approx(200)


def test_without_a_counter_power_is_integrated() -> None:
    # power rising from 100 W to 300 W over 2 s: 400 J
    snapshots = [Snapshot(t, {0: None}, {0: 100 + 100 * t}) for t in (0.0, 0.5, 1.0, 1.5, 2.0)]
    energy = level_energy(snapshots, [0], 0.0, 2.0)
    assert energy["energy_j"] == pytest.approx(400)
    assert energy["energy_source"] == "power_integrated"


def test_the_engines_devices_are_summed() -> None:
    snapshots = [Snapshot(t, {0: 100_000 * t, 1: 50_000 * t}) for t in (0.0, 1.0, 2.0)]
    assert level_energy(snapshots, [0, 1], 0.0, 2.0)["energy_j"] == pytest.approx(300)
    assert level_energy(snapshots, [1], 0.0, 2.0)["energy_j"] == pytest.approx(100)


def test_samples_that_do_not_cover_the_level_or_say_nothing_give_no_figure() -> None:
    covered = [Snapshot(t, {0: 1000.0 * t}) for t in (1.0, 2.0)]
    assert level_energy(covered, [0], 0.5, 2.0)["energy_j"] is None
    silent = [Snapshot(t, {0: None}, {0: None}) for t in (0.0, 1.0, 2.0)]
    assert level_energy(silent, [0], 0.5, 1.5)["energy_j"] is None
    assert level_energy([], [], 0.0, 1.0) == {
        "energy_j": None,
        "energy_source": None,
        "mean_power_w": None,
    }


class PoweredNvml(FakePynvml):
    """A device drawing a steady `watts`; with `counter`, NVML's energy counter too."""

    def __init__(self, watts: float, counter: bool) -> None:
        super().__init__([FakeDevice(1000.0, [Process(ENGINE, 512 * 2**20)])])
        self.watts, self.counter, self.t0 = watts, counter, time.perf_counter()

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:  # noqa: N802 (pynvml's name)
        return int(self.watts * 1000)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:  # noqa: N802
        if not self.counter:
            raise FakeNvmlError("not supported")
        return int((time.perf_counter() - self.t0) * self.watts * 1000)


@pytest.mark.parametrize(
    ("counter", "source"), [(True, "nvml_energy_counter"), (False, "power_integrated")]
)
def test_the_sampler_measures_a_steady_draw_either_way(
    tmp_path: Path, counter: bool, source: str
) -> None:
    fake = PoweredNvml(250.0, counter)
    sampler = Sampler(tmp_path / "t.csv", 50, "on", lambda: [ENGINE], False, lambda: Nvml(fake))
    try:
        sampler.sample_once()
        start = time.perf_counter()
        for _ in range(4):
            time.sleep(0.02)
            sampler.sample_once()
        end = time.perf_counter()
        sampler.sample_once()
        energy = sampler.energy(start, end)
    finally:
        sampler.stop()
    assert energy["energy_source"] == source
    assert energy["energy_j"] == pytest.approx(250 * (end - start), rel=0.02)
    header = (tmp_path / "t.csv").read_text().splitlines()[0]
    assert header.endswith(",power_w,energy_mj")


def test_a_cpu_engine_has_no_gpu_energy(tmp_path: Path) -> None:
    sampler = Sampler(tmp_path / "t.csv", 50, "off", lambda: [ENGINE])
    try:
        assert sampler.energy(0.0, 1.0)["energy_j"] is None
    finally:
        sampler.stop()
