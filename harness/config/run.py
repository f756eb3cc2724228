"""Schemas of the telemetry, experiment and machine groups: how and where a run is kept."""

from __future__ import annotations

from dataclasses import dataclass

from harness.config.checks import require_choice, require_positive

GPU_MODES = ("auto", "on", "off")


@dataclass
class TelemetryConfig:
    """What the samplers measure while a level runs."""

    interval_ms: float = 50.0
    gpu: str = "auto"  # auto: NVML when present; on: require it; off: never
    process_rss: bool = True
    # the engine's /metrics scraped this often while a level runs, into timeseries.csv,
    # with the client's in flight and token rate per the same interval (0: not scraped)
    engine_metrics_interval_s: float = 1.0

    def validate(self) -> None:
        require_positive("telemetry.interval_ms", self.interval_ms)
        require_positive(
            "telemetry.engine_metrics_interval_s", self.engine_metrics_interval_s, True
        )
        require_choice("telemetry.gpu", self.gpu, GPU_MODES)


@dataclass
class ExperimentConfig:
    name: str = "default"
    description: str = ""


@dataclass
class MachineConfig:
    """Which machine this is, and its ceilings where the user knows better than the tests."""

    # Names this machine in the store; default: the host name.
    label: str | None = None
    # Peak memory bandwidth, GB/s: replaces NVML's figure or the CPU read test's.
    mem_bw_gbs: float | None = None
    # Peak dense compute, TFLOP/s: replaces the GPU table's figure or the CPU BLAS test's.
    compute_tflops: float | None = None
    # Measure the CPU's ceilings again instead of reading them from the store's cache.
    remeasure: bool = False

    def validate(self) -> None:
        require_positive("machine.mem_bw_gbs", self.mem_bw_gbs)
        require_positive("machine.compute_tflops", self.compute_tflops)
