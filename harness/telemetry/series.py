"""A run over time, in timeseries.csv: the engine's own /metrics scraped every second
while a level runs (KV cache use, requests running and waiting, preemptions: whatever the
engine exports, as it names them), and beside them the client's in-flight count and
token rate per second, computed from the level's records when it ends.

Scraping runs in a thread (never on the client's event loop), on an absolute schedule so
that a slow scrape delays one sample, not all that follow.
"""

from __future__ import annotations

import csv
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.append_file import AppendFile
from harness.metrics.timeline import client_series
from harness.records import RequestRecord

log = logging.getLogger(__name__)

SERIES_FILE = "timeseries.csv"
SERIES_FIELDS = ("level_index", "t_level_s", "t_mono_s", "source", "name", "value")
# The engine series a report draws, by what they mean: each engine's own names (any labels,
# summed). KV cache use is a fraction of the cache (0 to 1).
ENGINE_GAUGES = {
    "kv_cache_usage": (
        "vllm:kv_cache_usage_perc",
        "vllm:gpu_cache_usage_perc",
        "llamacpp:kv_cache_usage_ratio",
    ),
    "requests_running": (
        "vllm:num_requests_running",
        "llamacpp:requests_processing",
        "reference:requests_running",
    ),
    "requests_waiting": (
        "vllm:num_requests_waiting",
        "llamacpp:requests_deferred",
        "reference:requests_waiting",
    ),
    "preemptions_total": ("vllm:num_preemptions_total", "vllm:num_preemptions"),
    "generated_tokens_total": ("vllm:generation_tokens_total", "llamacpp:tokens_predicted_total"),
}


class LevelSeries:
    """Writes timeseries.csv: `start` a level (the engine is scraped every `interval_s`
    until `stop`), then `add_client` its records' series."""

    def __init__(
        self, path: Path, scrape: Callable[[], dict[str, float]], interval_s: float = 1.0
    ) -> None:
        self.scrape, self.interval_s = scrape, interval_s
        new = not path.exists() or path.stat().st_size == 0
        self._file = AppendFile(path, quiet=True)
        self._writer = csv.writer(self._file)
        if new:
            self._writer.writerow(SERIES_FIELDS)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.level_index, self.start_mono_s, self.samples = 0, 0.0, 0

    def start(self, level_index: int) -> float:
        """Begin a level now: scrape at once, then every interval; returns its start."""
        self.level_index, self.start_mono_s, self.samples = level_index, time.perf_counter(), 0
        self._stop.clear()
        if self.interval_s > 0:
            self._thread = threading.Thread(target=self._run, name="engine-series", daemon=True)
            self._thread.start()
        return self.start_mono_s

    def stop(self) -> int:
        """End the level's scraping (one last scrape); returns the samples it took."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
            self._thread = None
            self._sample()
        return self.samples

    def _run(self) -> None:
        next_at = self.start_mono_s
        while not self._stop.is_set():
            self._sample()
            next_at += self.interval_s
            while next_at < time.perf_counter():  # a scrape took longer than an interval
                next_at += self.interval_s
            self._stop.wait(max(0.0, next_at - time.perf_counter()))

    def _sample(self) -> None:
        try:
            values = self.scrape()
        except Exception as exc:  # a scrape fault must not stop the benchmark
            log.warning("engine metrics scrape failed: %s", exc)
            return
        now = time.perf_counter()
        if values:
            self.samples += 1
            self._write([("engine", name, value, now) for name, value in values.items()])

    def add_client(self, records: Sequence[RequestRecord]) -> None:
        """The client's in-flight count and token rate per interval of the level."""
        bin_s = self.interval_s or 1.0
        points = client_series(records, self.start_mono_s, bin_s)
        self._write([("client", n, v, self.start_mono_s + t) for t, n, v in points])

    def _write(self, rows: list[tuple[str, str, float, float]]) -> None:
        with self._lock:
            if self._file.closed:
                return
            for source, name, value, t_mono_s in rows:
                t_level_s = t_mono_s - self.start_mono_s
                self._writer.writerow(
                    (self.level_index, f"{t_level_s:.3f}", f"{t_mono_s:.6f}", source, name, value)
                )
            self._file.flush()

    def close(self) -> None:
        self.stop()
        with self._lock:
            self._file.close()
