"""The settings `make bench` runs with, read from the same Hydra config, so that
`make calibrate` measures the client as a benchmark uses it, not better."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir

from harness.config import register, to_bench_config
from harness.telemetry.sampler import Sampler

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


@dataclass(frozen=True)
class BenchDefaults:
    engine: str
    keep_alive: bool
    ramp_up_s: float
    telemetry_interval_ms: float
    process_rss: bool

    def describe(self) -> str:
        return (
            f"engine {self.engine} (keep-alive {'on' if self.keep_alive else 'off'}), "
            f"ramp-up {self.ramp_up_s:g} s, telemetry every {self.telemetry_interval_ms:g} ms"
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def bench_defaults(overrides: list[str] | None = None) -> BenchDefaults:
    """The composed bench config's client-side settings (with Hydra `overrides`)."""
    register()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides or []))
    bench = to_bench_config(cfg)
    return BenchDefaults(
        engine=bench.engine.name,
        keep_alive=bench.engine.keep_alive,
        ramp_up_s=bench.load.ramp_up_s,
        telemetry_interval_ms=bench.telemetry.interval_ms,
        process_rss=bench.telemetry.process_rss,
    )


@contextlib.contextmanager
def sampling(defaults: BenchDefaults, pid: int) -> Iterator[Sampler]:
    """The telemetry sampler running on the server process, as it runs during a bench."""
    with tempfile.TemporaryDirectory() as folder:
        sampler = Sampler(
            Path(folder) / "telemetry.csv",
            defaults.telemetry_interval_ms,
            "auto",
            lambda: [pid],
            defaults.process_rss,
        )
        sampler.start()
        try:
            yield sampler
        finally:
            sampler.stop()
