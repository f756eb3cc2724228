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


class Nvml:
    """A handle on NVML; `available` is False with `reason` when it cannot be used."""

    def __init__(self) -> None:
        self.available = False
        self.reason = ""
        self._handles: list[Any] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self._nvml = pynvml
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

    def sample(self) -> list[GpuSample]:
        samples = []
        for index, handle in enumerate(self._handles):
            used_mib = self._memory(handle).used / MIB
            samples.append(GpuSample(index, used_mib, self._util(handle), self._power(handle)))
        return samples

    def process_memory_mib(self, pids: set[int]) -> float | None:
        """GPU memory NVML attributes to the given processes, summed over devices."""
        if not self.available or not pids:
            return None
        total, seen = 0.0, False
        for handle in self._handles:
            try:
                procs = self._nvml.nvmlDeviceGetComputeRunningProcesses(handle)
            except self._nvml.NVMLError:
                continue
            for proc in procs:
                if proc.pid in pids and proc.usedGpuMemory is not None:
                    total += proc.usedGpuMemory / MIB
                    seen = True
        return total if seen else None

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


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
