"""After an engine stops, the next job waits (bounded, logged) for the GPU memory it held."""

from __future__ import annotations

import logging
import time

import pytest

from harness.engines.gpu_release import GpuMemoryWatch
from harness.telemetry.nvml import GpuSample


class ScriptedNvml:
    """NVML that reports the given memory readings (MiB, one device) one after another,
    repeating the last; `available` False plays a machine without a driver."""

    def __init__(self, readings: list[float], available: bool = True) -> None:
        self.readings = list(readings)
        self.available = available
        self.reads = 0

    def sample(self) -> list[GpuSample]:
        self.reads += 1
        used = self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]
        return [GpuSample(0, used, None, None)]


def watch(nvml: ScriptedNvml, timeout_s: float = 5.0) -> GpuMemoryWatch:
    return GpuMemoryWatch(lambda: nvml, timeout_s=timeout_s, tolerance_mib=256, poll_s=0.01)


def test_the_wait_ends_once_memory_is_back_near_the_baseline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nvml = ScriptedNvml([1000, 60000, 30000, 1200])
    released = watch(nvml)
    released.take_baseline()
    caplog.set_level(logging.INFO, logger="harness.engines.gpu_release")
    assert released.wait_until_released() is True
    assert nvml.reads == 4  # baseline, then until 1200 MiB (within 256 MiB of 1000)
    assert "GPU 0: 59000 MiB above baseline" in caplog.text
    assert "back near its baseline" in caplog.text


def test_memory_still_held_at_the_deadline_is_a_warning_not_a_hang(
    caplog: pytest.LogCaptureFixture,
) -> None:
    released = watch(ScriptedNvml([1000, 9000]), timeout_s=0.2)
    released.take_baseline()
    started = time.monotonic()
    assert released.wait_until_released() is False
    assert time.monotonic() - started < 1
    assert "GPU memory still held" in caplog.text and "8000 MiB above baseline" in caplog.text


def test_the_first_baseline_is_kept_across_restarts() -> None:
    released = watch(ScriptedNvml([1000, 5000, 1100]))
    released.take_baseline()
    released.take_baseline()  # a restart on another port, with the engine's memory in use
    assert released.baseline_mib == [1000]
    assert released.wait_until_released() is True


def test_without_nvml_or_a_start_nothing_is_awaited() -> None:
    no_driver = ScriptedNvml([0], available=False)
    released = watch(no_driver)
    released.take_baseline()
    assert released.baseline_mib == [] and released.wait_until_released() is True
    never_started = ScriptedNvml([9000])
    assert watch(never_started).wait_until_released() is True
    assert never_started.reads == 0
