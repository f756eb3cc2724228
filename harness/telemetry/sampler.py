"""Background sampling of memory while levels run, written to telemetry.csv.

Sampling runs in a thread so it never blocks the client's event loop. With NVML the
peak is the memory used on the engine's devices, summed (tensor parallel spans several):
those on which NVML's per-process query finds the engine's process tree, else the devices
it was given (CUDA_VISIBLE_DEVICES), else every device; beside it NVML's figure for the
engine's own processes and the peak above the baseline taken before the engine started.
Without NVML, the peak RSS of the engine's process tree, labelled `process_rss` so it is
never mistaken for VRAM.
"""

from __future__ import annotations

import csv
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.append_file import AppendFile
from harness.telemetry.energy import level_energy
from harness.telemetry.nvml import Nvml, visible_devices
from harness.telemetry.process import process_tree_rss_mib, rss_peak, tree_pids

log = logging.getLogger(__name__)

CSV_FIELDS = (
    "t_mono_s",
    "t_wall_s",
    "source",
    "device",
    "memory_used_mib",
    "util_pct",
    "power_w",
    "energy_mj",
)
# The devices a native engine is given; it inherits the harness's environment.
VISIBLE_DEVICES_ENV = "CUDA_VISIBLE_DEVICES"


@dataclass
class Sample:
    t_mono_s: float
    source: str  # gpu | process_rss | gpu_process
    device: str
    memory_used_mib: float


@dataclass
class GpuSnapshot:
    """One GPU sample: memory used per device, and NVML's figure for the engine's processes
    on each device where the per-process query finds them (None: found, no figure)."""

    t_mono_s: float
    used_mib: dict[int, float]
    engine_mib: dict[int, float | None]
    power_w: dict[int, float | None] = field(default_factory=dict)
    energy_mj: dict[int, float | None] = field(default_factory=dict)

    def engine_total_mib(self) -> float | None:
        figures = [mib for mib in self.engine_mib.values() if mib is not None]
        return sum(figures) if figures else None


class Sampler:
    """Samples at a fixed interval until stopped; keeps samples for per-level peaks."""

    def __init__(
        self,
        csv_path: Path,
        interval_ms: float,
        gpu_mode: str,
        engine_pids: Callable[[], list[int]],
        process_rss: bool = True,
        nvml_factory: Callable[[], Nvml] = Nvml,
    ) -> None:
        self.interval_s = interval_ms / 1000.0
        self.engine_pids = engine_pids
        self.process_rss = process_rss
        self.nvml = nvml_factory() if gpu_mode != "off" else None
        if gpu_mode == "on" and not (self.nvml and self.nvml.available):
            reason = self.nvml.reason if self.nvml else "telemetry.gpu=off"
            raise RuntimeError(f"telemetry.gpu=on but {reason}")
        self.kind = "gpu" if self.nvml and self.nvml.available else "process_rss"
        if self.kind == "process_rss" and gpu_mode == "auto":
            log.info("no GPU telemetry (%s); measuring engine process RSS instead", self._why())
        self.given_devices = os.environ.get(VISIBLE_DEVICES_ENV)
        self._uuids = self.nvml.device_uuids() if self.kind == "gpu" and self.nvml else []
        self.baseline_mib: dict[str, float] = {}
        self.samples: list[Sample] = []
        self.gpu_snapshots: list[GpuSnapshot] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._file = AppendFile(csv_path, quiet=True)
        self._writer = csv.writer(self._file)
        if csv_path.stat().st_size == 0:
            self._writer.writerow(CSV_FIELDS)

    def measure_process_rss(self) -> None:
        """From now on the peak is the engine's process-tree RSS (a CPU engine)."""
        self.kind = "process_rss"
        self.process_rss = True

    def _why(self) -> str:
        return self.nvml.reason if self.nvml else "telemetry.gpu=off"

    def baseline(self) -> dict[str, Any]:
        """One sample taken now, before the engine starts; kept for the peak above it."""
        if self.kind == "gpu" and self.nvml:
            self.baseline_mib = {f"gpu{s.device}": s.memory_used_mib for s in self.nvml.sample()}
            return dict(self.baseline_mib)
        return {}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="telemetry", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        with self._lock:
            self._file.close()

    def sample_once(self) -> None:
        now_mono, now_wall = time.perf_counter(), time.time()
        rows: list[tuple[Sample, float | None, float | None, float | None]] = []
        snapshot = None
        pids = self.engine_pids()
        if self.kind == "gpu" and self.nvml:
            gpus = self.nvml.sample()
            for gpu in gpus:
                rows.append(
                    (
                        Sample(now_mono, "gpu", f"gpu{gpu.device}", gpu.memory_used_mib),
                        gpu.util_pct,
                        gpu.power_w,
                        gpu.energy_mj,
                    )
                )
            snapshot = GpuSnapshot(
                now_mono,
                {gpu.device: gpu.memory_used_mib for gpu in gpus},
                self.nvml.engine_processes(tree_pids(pids)),
                {gpu.device: gpu.power_w for gpu in gpus},
                {gpu.device: gpu.energy_mj for gpu in gpus},
            )
            own = snapshot.engine_total_mib()
            if own is not None:
                rows.append((Sample(now_mono, "gpu_process", "engine", own), None, None, None))
        if self.process_rss:
            rss = process_tree_rss_mib(pids)
            if rss is not None:
                rows.append((Sample(now_mono, "process_rss", "engine", rss), None, None, None))
        with self._lock:
            if snapshot is not None:
                self.gpu_snapshots.append(snapshot)
            for sample, util, power, energy in rows:
                self.samples.append(sample)
                self._writer.writerow(
                    (
                        f"{now_mono:.6f}",
                        f"{now_wall:.6f}",
                        sample.source,
                        sample.device,
                        f"{sample.memory_used_mib:.3f}",
                        util,
                        power,
                        energy,
                    )
                )

    def _run(self) -> None:
        next_at = time.perf_counter()
        while not self._stop.is_set():
            try:
                self.sample_once()
            except Exception as exc:  # a sampler fault must not stop the benchmark
                log.warning("telemetry sample failed: %s", exc)
            next_at += self.interval_s
            self._stop.wait(max(0.0, next_at - time.perf_counter()))
        with self._lock:
            self._file.flush()

    def peak(self, start_mono_s: float, end_mono_s: float) -> dict[str, Any]:
        """Peak memory between two instants, of the primary kind, plus per-device detail."""
        with self._lock:
            window = [s for s in self.samples if start_mono_s <= s.t_mono_s <= end_mono_s]
            snapshots = [s for s in self.gpu_snapshots if start_mono_s <= s.t_mono_s <= end_mono_s]
            if not self._file.closed:
                self._file.flush()
        per_device: dict[str, float] = {}
        for sample in window:
            key = f"{sample.source}:{sample.device}"
            per_device[key] = max(per_device.get(key, 0.0), sample.memory_used_mib)
        if self.kind == "gpu" and snapshots:
            memory = self.gpu_peak(snapshots)
        else:
            primary = [s.memory_used_mib for s in window if s.source == self.kind]
            memory = rss_peak(max(primary) if primary else None)
        return {**memory, "peak_memory_by_device_mib": per_device, "telemetry_samples": len(window)}

    def energy(self, start_mono_s: float, end_mono_s: float) -> dict[str, Any]:
        """The GPU energy of the engine's devices between two instants (None without NVML);
        a sample is taken now where none came after `end_mono_s` yet."""
        if self.kind != "gpu":
            return level_energy([], [], start_mono_s, end_mono_s)
        running = self._thread is not None and self._thread.is_alive()
        if running and not any(s.t_mono_s >= end_mono_s for s in self.gpu_snapshots[-2:]):
            self.sample_once()
        with self._lock:
            snapshots = [s for s in self.gpu_snapshots if s.t_mono_s >= start_mono_s - 1.0]
        if not snapshots:
            return level_energy([], [], start_mono_s, end_mono_s)
        devices, _ = self.engine_devices(snapshots)
        return level_energy(snapshots, devices, start_mono_s, end_mono_s)

    def gpu_peak(self, snapshots: list[GpuSnapshot]) -> dict[str, Any]:
        """The engine's devices' memory, summed, at the snapshot where the sum peaks; NVML's
        figure for its processes; the peak above the same devices' baseline."""
        devices, chosen_by = self.engine_devices(snapshots)
        peak_mib = max(sum(s.used_mib[device] for device in devices) for s in snapshots)
        own = [mib for s in snapshots if (mib := s.engine_total_mib()) is not None]
        names = [f"gpu{device}" for device in devices]
        above = None
        if all(name in self.baseline_mib for name in names):
            above = peak_mib - sum(self.baseline_mib[name] for name in names)
        return {
            "peak_memory_mib": peak_mib,
            "peak_memory_kind": "gpu",
            "peak_memory_devices": {
                "devices": names,
                "chosen_by": chosen_by,
                VISIBLE_DEVICES_ENV: self.given_devices,
            },
            "peak_engine_process_mib": max(own) if own else None,
            "peak_memory_above_baseline_mib": above,
        }

    def engine_devices(self, snapshots: list[GpuSnapshot]) -> tuple[list[int], str]:
        """The devices that count and why: `per_process_query` (the engine's processes run
        there), `given` (CUDA_VISIBLE_DEVICES, where the query finds none of them) or
        `all` (neither says)."""
        found = sorted({device for s in snapshots for device in s.engine_mib})
        if found:
            return found, "per_process_query"
        present = sorted(snapshots[-1].used_mib)
        if self.given_devices is not None:
            named = visible_devices(self.given_devices, self._uuids)
            given = [device for device in named if device in present]
            if given:
                return given, "given"
        return present, "all"
