"""Peak GPU memory is the engine's: the devices its processes use, summed, beside NVML's
figure for its processes and the peak above the baseline (a two-device fake NVML)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.constants import MIB
from harness.telemetry.nvml import Nvml, visible_devices
from harness.telemetry.sampler import Sampler

ENGINE = os.getpid()  # this test process plays the engine: its tree is itself
OTHER = 999_999_999  # a pid no process here has

SamplerFor = Callable[..., Sampler]


class FakeNvmlError(Exception):
    pass


@dataclass
class Process:
    pid: int
    usedGpuMemory: int | None  # noqa: N815 (pynvml's field name)


@dataclass
class Memory:
    used: int
    total: int = 80 * 1024 * MIB


@dataclass
class FakeDevice:
    used_mib: float
    processes: list[Process] = field(default_factory=list)  # with a compute context
    graphics: list[Process] = field(default_factory=list)  # with a graphics context


class FakePynvml:
    """The pynvml calls harness.telemetry.nvml makes, answering from `devices`; a test
    changes `devices` between samples. `pids_visible` False plays a container, where NVML
    lists no processes."""

    NVMLError = FakeNvmlError
    nvmlMemory_v2 = 2  # noqa: N815 (pynvml's name)

    def __init__(self, devices: list[FakeDevice]) -> None:
        self.devices = devices
        self.pids_visible = True

    def nvmlInit(self) -> None:  # noqa: N802 (pynvml's names, here and below)
        pass

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:  # noqa: N802
        return index

    def nvmlDeviceGetUUID(self, handle: int) -> str:  # noqa: N802
        return f"GPU-{handle}a2b3c4d-0000-0000-0000-00000000000{handle}"

    def nvmlDeviceGetMemoryInfo(self, handle: int, version: int = 1) -> Memory:  # noqa: N802
        return Memory(int(self.devices[handle].used_mib * MIB))

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> object:  # noqa: N802
        raise FakeNvmlError("not supported")

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:  # noqa: N802
        raise FakeNvmlError("not supported")

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[Process]:  # noqa: N802
        return list(self.devices[handle].processes) if self.pids_visible else []

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: int) -> list[Process]:  # noqa: N802
        return list(self.devices[handle].graphics) if self.pids_visible else []


def mib(value: float) -> int:
    return int(value * MIB)


@pytest.fixture
def no_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


@pytest.fixture
def sampler_for(tmp_path: Path) -> Iterator[SamplerFor]:
    made: list[Sampler] = []

    def make(fake: FakePynvml, pids: list[int] | None = None) -> Sampler:
        sampler = Sampler(
            tmp_path / f"telemetry{len(made)}.csv",
            50,
            "on",
            lambda: [ENGINE] if pids is None else pids,
            process_rss=False,
            nvml_factory=lambda: Nvml(fake),
        )
        made.append(sampler)
        return sampler

    yield make
    for sampler in made:
        sampler.stop()


def whole(sampler: Sampler) -> dict:
    return sampler.peak(0, math.inf)


@pytest.mark.usefixtures("no_visible_devices")
def test_a_device_used_only_by_another_process_is_not_counted(sampler_for: SamplerFor) -> None:
    fake = FakePynvml(
        [
            FakeDevice(30000, [Process(OTHER, mib(29500))]),
            FakeDevice(9000, [Process(ENGINE, mib(8500))]),
        ]
    )
    sampler = sampler_for(fake)
    sampler.sample_once()
    peak = whole(sampler)
    assert peak["peak_memory_kind"] == "gpu"
    assert peak["peak_memory_mib"] == pytest.approx(9000)
    assert peak["peak_memory_devices"]["devices"] == ["gpu1"]
    assert peak["peak_memory_devices"]["chosen_by"] == "per_process_query"
    assert peak["peak_engine_process_mib"] == pytest.approx(8500)
    assert peak["peak_memory_by_device_mib"]["gpu:gpu0"] == pytest.approx(30000)


@pytest.mark.usefixtures("no_visible_devices")
def test_tensor_parallel_sums_the_devices_at_the_sample_where_the_sum_peaks(
    sampler_for: SamplerFor,
) -> None:
    fake = FakePynvml(
        [
            FakeDevice(10000, [Process(ENGINE, mib(9500))]),
            FakeDevice(6000, [Process(ENGINE, mib(5500))]),
        ]
    )
    sampler = sampler_for(fake)
    sampler.sample_once()
    fake.devices[0].used_mib, fake.devices[1].used_mib = 7000, 12000  # sum 19000 > 16000
    fake.devices[0].processes = [Process(ENGINE, mib(6500))]
    fake.devices[1].processes = [Process(ENGINE, mib(11500))]
    sampler.sample_once()
    peak = whole(sampler)
    assert peak["peak_memory_mib"] == pytest.approx(19000)  # not 10000 + 12000 from two samples
    assert peak["peak_memory_devices"]["devices"] == ["gpu0", "gpu1"]
    assert peak["peak_engine_process_mib"] == pytest.approx(18000)
    assert peak["telemetry_samples"] == 2 * 2 + 2  # two devices and the engine, twice


@pytest.mark.usefixtures("no_visible_devices")
def test_the_engine_figure_is_summed_over_its_process_tree_on_every_device(
    sampler_for: SamplerFor,
) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        fake = FakePynvml(
            [
                FakeDevice(4000, [Process(ENGINE, mib(3000))]),
                FakeDevice(5000, [Process(worker.pid, mib(4500)), Process(OTHER, mib(400))]),
            ]
        )
        sampler = sampler_for(fake)
        sampler.sample_once()
    finally:
        worker.kill()
        worker.wait()
    peak = whole(sampler)
    assert peak["peak_memory_devices"]["devices"] == ["gpu0", "gpu1"]
    assert peak["peak_engine_process_mib"] == pytest.approx(7500)


@pytest.mark.usefixtures("no_visible_devices")
def test_a_process_with_compute_and_graphics_contexts_is_counted_once(
    sampler_for: SamplerFor,
) -> None:
    both = [Process(ENGINE, mib(3000))]
    fake = FakePynvml([FakeDevice(500), FakeDevice(4000, both, graphics=both)])
    sampler = sampler_for(fake)
    sampler.sample_once()
    peak = whole(sampler)
    assert peak["peak_memory_devices"]["devices"] == ["gpu1"]
    assert peak["peak_engine_process_mib"] == pytest.approx(3000)


def test_without_pids_from_nvml_the_given_devices_count(
    sampler_for: SamplerFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    fake = FakePynvml([FakeDevice(30000), FakeDevice(9000, [Process(ENGINE, mib(8500))])])
    fake.pids_visible = False
    sampler = sampler_for(fake)
    sampler.sample_once()
    peak = whole(sampler)
    assert peak["peak_memory_mib"] == pytest.approx(9000)
    assert peak["peak_memory_devices"] == {
        "devices": ["gpu1"],
        "chosen_by": "given",
        "CUDA_VISIBLE_DEVICES": "1",
    }
    assert peak["peak_engine_process_mib"] is None


@pytest.mark.usefixtures("no_visible_devices")
def test_without_pids_from_nvml_or_given_devices_every_device_counts(
    sampler_for: SamplerFor,
) -> None:
    fake = FakePynvml([FakeDevice(30000), FakeDevice(9000, [Process(ENGINE, mib(8500))])])
    fake.pids_visible = False
    sampler = sampler_for(fake)
    sampler.sample_once()
    peak = whole(sampler)
    assert peak["peak_memory_mib"] == pytest.approx(39000)
    assert peak["peak_memory_devices"]["devices"] == ["gpu0", "gpu1"]
    assert peak["peak_memory_devices"]["chosen_by"] == "all"


def test_a_server_the_harness_did_not_start_counts_its_given_devices(
    sampler_for: SamplerFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-0a2b")  # a UUID prefix, as CUDA reads it
    fake = FakePynvml([FakeDevice(30000, [Process(OTHER, mib(29000))]), FakeDevice(500)])
    sampler = sampler_for(fake, pids=[])
    sampler.sample_once()
    peak = whole(sampler)
    assert peak["peak_memory_mib"] == pytest.approx(30000)
    assert peak["peak_memory_devices"]["devices"] == ["gpu0"]
    assert peak["peak_memory_devices"]["chosen_by"] == "given"


@pytest.mark.usefixtures("no_visible_devices")
def test_the_peak_above_baseline_subtracts_the_same_devices_baseline(
    sampler_for: SamplerFor,
) -> None:
    fake = FakePynvml([FakeDevice(20000), FakeDevice(600)])
    sampler = sampler_for(fake)
    assert sampler.baseline() == {"gpu0": pytest.approx(20000), "gpu1": pytest.approx(600)}
    fake.devices[0].used_mib = 30000  # another job grows on device 0
    fake.devices[1] = FakeDevice(9600, [Process(ENGINE, mib(8900))])
    sampler.sample_once()
    peak = whole(sampler)
    assert peak["peak_memory_mib"] == pytest.approx(9600)
    assert peak["peak_memory_above_baseline_mib"] == pytest.approx(9000)


@pytest.mark.usefixtures("no_visible_devices")
def test_without_a_baseline_nothing_is_subtracted(sampler_for: SamplerFor) -> None:
    sampler = sampler_for(FakePynvml([FakeDevice(9600, [Process(ENGINE, mib(8900))])]))
    sampler.sample_once()
    peak = whole(sampler)
    assert peak["peak_memory_mib"] == pytest.approx(9600)
    assert peak["peak_memory_above_baseline_mib"] is None


def test_cuda_visible_devices_is_read_up_to_the_first_entry_naming_no_device() -> None:
    uuids = ["GPU-aaa1", "GPU-bbb2", None]
    assert visible_devices("1,0", uuids) == [1, 0]
    assert visible_devices("GPU-bbb,0", uuids) == [1, 0]
    assert visible_devices("0,7,1", uuids) == [0]
    assert visible_devices("GPU-,1", uuids) == []  # ambiguous prefix
    assert visible_devices("", uuids) == []
