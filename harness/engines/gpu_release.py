"""The GPU memory an engine held is free again before the next job starts.

Processes that outlived the engine, or a driver slow to release, would otherwise make the
next job of a sweep fail vLLM's free-memory check or record an inflated baseline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from harness.telemetry.nvml import Nvml

log = logging.getLogger(__name__)

RELEASE_TIMEOUT_S = 60.0
# Above this, memory is still held (a CUDA context alone takes several hundred MiB).
RELEASE_TOLERANCE_MIB = 256.0
POLL_S = 0.5


class GpuMemoryWatch:
    """Device memory in use before an engine starts; after it stops, a bounded wait until
    every device is back near it. Does nothing where NVML does not answer."""

    def __init__(
        self,
        nvml_factory: Callable[[], Nvml] = Nvml,
        timeout_s: float = RELEASE_TIMEOUT_S,
        tolerance_mib: float = RELEASE_TOLERANCE_MIB,
        poll_s: float = POLL_S,
    ) -> None:
        self.nvml_factory = nvml_factory
        self.timeout_s = timeout_s
        self.tolerance_mib = tolerance_mib
        self.poll_s = poll_s
        self.baseline_mib: list[float] | None = None

    def take_baseline(self) -> None:
        """Memory used on each device now; kept from the first call (restarts keep it)."""
        if self.baseline_mib is not None:
            return
        nvml = self.nvml_factory()
        self.baseline_mib = [s.memory_used_mib for s in nvml.sample()] if nvml.available else []

    def held_mib(self, nvml: Nvml) -> dict[int, float]:
        """Devices above their baseline by more than the tolerance: device -> MiB above."""
        held = {}
        for sample, baseline in zip(nvml.sample(), self.baseline_mib or [], strict=False):
            if sample.memory_used_mib - baseline > self.tolerance_mib:
                held[sample.device] = sample.memory_used_mib - baseline
        return held

    def wait_until_released(self) -> bool:
        """True once every device is back near its baseline (at once without NVML or a
        baseline); False, with a warning, when the wait ran out."""
        if not self.baseline_mib:
            return True
        nvml = self.nvml_factory()
        if not nvml.available:
            return True
        started = time.monotonic()
        held = self.held_mib(nvml)
        if not held:
            return True
        log.info(
            "waiting up to %.0f s for GPU memory to be released (%s)",
            self.timeout_s,
            _describe(held),
        )
        while held and time.monotonic() - started < self.timeout_s:
            time.sleep(self.poll_s)
            held = self.held_mib(nvml)
        waited_s = time.monotonic() - started
        if held:
            log.warning(
                "GPU memory still held %.0f s after the engine stopped (%s); the next job's "
                "baseline will include it",
                waited_s,
                _describe(held),
            )
            return False
        log.info("GPU memory back near its baseline after %.1f s", waited_s)
        return True


def _describe(held: dict[int, float]) -> str:
    return ", ".join(f"GPU {device}: {mib:.0f} MiB above baseline" for device, mib in held.items())
