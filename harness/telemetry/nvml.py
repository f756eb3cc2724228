"""GPU samples through NVML (nvidia-ml-py); absent driver or GPU is reported, not raised."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.constants import MIB


@dataclass
class GpuSample:
    device: int
    memory_used_mib: float
    util_pct: float | None
    power_w: float | None
    energy_mj: float | None = None  # the device's energy counter since the driver loaded


class Nvml:
    """A handle on NVML; `available` is False with `reason` when it cannot be used.

    `library` is the pynvml module (nvidia-ml-py) unless another object with its calls is
    given."""

    def __init__(self, library: Any | None = None) -> None:
        self.available = False
        self.reason = ""
        self._handles: list[Any] = []
        try:
            if library is None:
                import pynvml

                library = pynvml
            library.nvmlInit()
            count = library.nvmlDeviceGetCount()
            self._handles = [library.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self._nvml = library
            self.available = count > 0
            self.reason = "" if count else "NVML found no GPU"
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            self.reason = f"NVML unavailable: {type(exc).__name__}: {exc}"

    def devices(self) -> list[dict[str, Any]]:
        """Name, total memory, driver and CUDA version of each GPU."""
        if not self.available:
            return []
        nvml = self._nvml
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        cuda = nvml.nvmlSystemGetCudaDriverVersion_v2()
        return [
            {
                "index": index,
                "name": _text(nvml.nvmlDeviceGetName(handle)),
                "memory_total_mib": self._memory(handle).total / MIB,
                "driver_version": driver,
                "cuda_driver_version": f"{cuda // 1000}.{cuda % 1000 // 10}",
                "uuid": _text(nvml.nvmlDeviceGetUUID(handle)),
            }
            for index, handle in enumerate(self._handles)
        ]

    def memory_specs(self) -> list[dict[str, Any]]:
        """Each GPU's name, maximum memory clock (MHz) and memory bus width (bits); None
        where the driver does not say."""
        if not self.available:
            return []
        nvml = self._nvml
        clock_mem = getattr(nvml, "NVML_CLOCK_MEM", 2)
        specs = []
        for index, handle in enumerate(self._handles):
            spec: dict[str, Any] = {"index": index, "name": _text(nvml.nvmlDeviceGetName(handle))}
            for key, call in (
                ("max_memory_clock_mhz", lambda h: nvml.nvmlDeviceGetMaxClockInfo(h, clock_mem)),
                ("memory_bus_width_bits", nvml.nvmlDeviceGetMemoryBusWidth),
            ):
                try:
                    spec[key] = int(call(handle))
                except (nvml.NVMLError, AttributeError):  # an older driver or binding
                    spec[key] = None
            specs.append(spec)
        return specs

    def sample(self) -> list[GpuSample]:
        samples = []
        for index, handle in enumerate(self._handles):
            used_mib = self._memory(handle).used / MIB
            samples.append(
                GpuSample(
                    index, used_mib, self._util(handle), self._power(handle), self._energy(handle)
                )
            )
        return samples

    def engine_processes(self, pids: set[int]) -> dict[int, float | None]:
        """Devices on which any of `pids` runs (compute or graphics): device -> the memory
        NVML attributes to those processes there, MiB (None where it gives no figure)."""
        if not self.available or not pids:
            return {}
        found: dict[int, float | None] = {}
        for index, handle in enumerate(self._handles):
            used_by_pid = self._used_by_pid(handle, pids)
            if used_by_pid:
                figures = [used for used in used_by_pid.values() if used is not None]
                found[index] = sum(figures) / MIB if figures else None
        return found

    def device_uuids(self) -> list[str | None]:
        """Each device's UUID, by index (None where NVML does not give it)."""
        uuids: list[str | None] = []
        for handle in self._handles:
            try:
                uuids.append(_text(self._nvml.nvmlDeviceGetUUID(handle)))
            except self._nvml.NVMLError:
                uuids.append(None)
        return uuids

    def _used_by_pid(self, handle: Any, pids: set[int]) -> dict[int, int | None]:
        # A process with both a compute and a graphics context is listed twice, with the
        # same figure: count it once.
        used_by_pid: dict[int, int | None] = {}
        for query in (
            self._nvml.nvmlDeviceGetComputeRunningProcesses,
            self._nvml.nvmlDeviceGetGraphicsRunningProcesses,
        ):
            try:
                procs = query(handle)
            except self._nvml.NVMLError:
                continue
            for proc in procs:
                if proc.pid in pids and used_by_pid.get(proc.pid) is None:
                    used_by_pid[proc.pid] = proc.usedGpuMemory
        return used_by_pid

    def _memory(self, handle: Any) -> Any:
        # v2 memory info does not count memory the driver reserves as used.
        try:
            return self._nvml.nvmlDeviceGetMemoryInfo(handle, version=self._nvml.nvmlMemory_v2)
        except (self._nvml.NVMLError, TypeError, AttributeError):
            return self._nvml.nvmlDeviceGetMemoryInfo(handle)

    def _util(self, handle: Any) -> float | None:
        try:
            return float(self._nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except self._nvml.NVMLError:
            return None

    def _power(self, handle: Any) -> float | None:
        try:
            return self._nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
        except self._nvml.NVMLError:
            return None

    def _energy(self, handle: Any) -> float | None:
        # Volta and later; older GPUs (and some drivers) have no counter: power integrates
        try:
            return float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
        except (self._nvml.NVMLError, AttributeError):
            return None


def visible_devices(value: str, uuids: list[str | None]) -> list[int]:
    """The device indices a CUDA_VISIBLE_DEVICES value names, read as CUDA reads it: indices
    or (prefixes of) UUIDs, up to the first entry that names no device. Indices are taken
    in NVML's order (PCI bus, as nvidia-smi), CUDA's own with CUDA_DEVICE_ORDER=PCI_BUS_ID."""
    indices: list[int] = []
    for entry in (part.strip() for part in value.split(",")):
        index = _device_named(entry, uuids)
        if index is None:
            break
        if index not in indices:
            indices.append(index)
    return indices


def _device_named(entry: str, uuids: list[str | None]) -> int | None:
    if entry.isdigit():
        return int(entry) if int(entry) < len(uuids) else None
    if not entry:
        return None
    matches = [i for i, uuid in enumerate(uuids) if uuid and uuid.startswith(entry)]
    return matches[0] if len(matches) == 1 else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
