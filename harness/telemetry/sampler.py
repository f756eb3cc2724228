"""Background sampling of memory while levels run, written to telemetry.csv.

Sampling runs in a thread so it never blocks the client's event loop. With NVML the
peak is GPU memory used (per device); without it, the peak RSS of the engine's process
tree, labelled `process_rss` so it is never mistaken for VRAM.
"""

from __future__ import annotations

import csv
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from harness.telemetry.nvml import MIB, Nvml

log = logging.getLogger(__name__)

CSV_FIELDS = ("t_mono_s", "t_wall_s", "source", "device", "memory_used_mib", "util_pct", "power_w")


@dataclass
class Sample:
    t_mono_s: float
    source: str  # gpu | process_rss | gpu_process
    device: str
    memory_used_mib: float


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


class Sampler:
    """Samples at a fixed interval until stopped; keeps samples for per-level peaks."""

    def __init__(
        self,
        csv_path: Path,
        interval_ms: float,
        gpu_mode: str,
        engine_pids: Callable[[], list[int]],
        process_rss: bool = True,
    ) -> None:
        self.interval_s = interval_ms / 1000.0
        self.engine_pids = engine_pids
        self.process_rss = process_rss
        self.nvml = Nvml() if gpu_mode != "off" else None
        if gpu_mode == "on" and not (self.nvml and self.nvml.available):
            reason = self.nvml.reason if self.nvml else "telemetry.gpu=off"
            raise RuntimeError(f"telemetry.gpu=on but {reason}")
        self.kind = "gpu" if self.nvml and self.nvml.available else "process_rss"
        if self.kind == "process_rss" and gpu_mode == "auto":
            log.info("no GPU telemetry (%s); measuring engine process RSS instead", self._why())
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._file = csv_path.open("a", newline="")
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
        """One sample taken now, e.g. before the engine starts."""
        if self.kind == "gpu" and self.nvml:
            return {f"gpu{s.device}": s.memory_used_mib for s in self.nvml.sample()}
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
        rows: list[tuple[Sample, float | None, float | None]] = []
        if self.kind == "gpu" and self.nvml:
            for gpu in self.nvml.sample():
                rows.append(
                    (
                        Sample(now_mono, "gpu", f"gpu{gpu.device}", gpu.memory_used_mib),
                        gpu.util_pct,
                        gpu.power_w,
                    )
                )
            own = self.nvml.process_memory_mib(tree_pids(self.engine_pids()))
            if own is not None:
                rows.append((Sample(now_mono, "gpu_process", "engine", own), None, None))
        if self.process_rss:
            rss = process_tree_rss_mib(self.engine_pids())
            if rss is not None:
                rows.append((Sample(now_mono, "process_rss", "engine", rss), None, None))
        with self._lock:
            for sample, util, power in rows:
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
            if not self._file.closed:
                self._file.flush()
        per_device: dict[str, float] = {}
        for sample in window:
            key = f"{sample.source}:{sample.device}"
            per_device[key] = max(per_device.get(key, 0.0), sample.memory_used_mib)
        primary = [s.memory_used_mib for s in window if s.source == self.kind]
        return {
            "peak_memory_mib": max(primary) if primary else None,
            "peak_memory_kind": self.kind if primary else None,
            "peak_memory_by_device_mib": per_device,
            "telemetry_samples": len(window),
        }
