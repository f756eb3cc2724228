"""The whole config of one job, its registration with Hydra, and its conversion and checks.

OmegaConf checks types and unknown keys while Hydra composes the config; the value checks
(each schema's ``validate``) run when the composed config is turned into these dataclasses
(``to_bench_config``), so a bad value stops the job before any engine starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from harness.config.checks import ConfigError, require_choice, require_positive
from harness.config.engine import EngineConfig
from harness.config.load import LoadConfig
from harness.config.model import ModelConfig
from harness.config.naming import machine_id, slug, utc_stamp
from harness.config.run import ExperimentConfig, MachineConfig, TelemetryConfig
from harness.config.workload import WorkloadConfig

ON_FAILURE = ("continue", "stop")


@dataclass
class BenchConfig:
    engine: EngineConfig = field(default_factory=EngineConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    load: LoadConfig = field(default_factory=LoadConfig)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    machine: MachineConfig = field(default_factory=MachineConfig)
    results: str = "results"
    seed: int = 0
    print_table: bool = True
    # Skip levels a previous run of the same config (same hash) already finished.
    resume: bool = False
    # In a sweep, what a failed job does to the jobs after it: continue or stop.
    on_failure: str = "continue"
    # Refuse to start with less free space than this under `results`.
    min_free_disk_mib: int = 200

    def validate(self) -> None:
        require_choice("on_failure", self.on_failure, ON_FAILURE)
        require_positive("min_free_disk_mib", self.min_free_disk_mib, allow_zero=True)
        if (self.workload.kind == "trace") != (self.load.mode == "trace"):
            raise ConfigError(
                f"workload.kind={self.workload.kind!r} with load.mode={self.load.mode!r}: a trace "
                "is replayed at its own times, so workload=trace goes with load=trace and "
                "load=trace with workload=trace"
            )


def register() -> None:
    """Register the schemas and the resolvers the YAML files use; safe to call twice."""
    cs = ConfigStore.instance()
    cs.store(name="bench_schema", node=BenchConfig)
    resolvers = {"slug": slug, "machine_id": machine_id, "utc_stamp": utc_stamp}
    for resolver_name, fn in resolvers.items():
        if not OmegaConf.has_resolver(resolver_name):
            OmegaConf.register_new_resolver(resolver_name, fn, use_cache=True)


def to_bench_config(cfg: DictConfig) -> BenchConfig:
    """Turn the composed config into dataclasses, running every value check."""
    node = OmegaConf.masked_copy(cfg, [f for f in BenchConfig.__dataclass_fields__ if f in cfg])
    structured = OmegaConf.merge(OmegaConf.structured(BenchConfig), node)
    bench = OmegaConf.to_object(structured)
    assert isinstance(bench, BenchConfig)
    for section in (bench.engine, bench.model, bench.workload, bench.load, bench.telemetry):
        section.validate()
    bench.validate()
    return bench
