"""The whole config of one job, its registration with Hydra, and its conversion and checks.

OmegaConf checks types and unknown keys while Hydra composes the config; the value checks
(each schema's ``validate``) run when the composed config is turned into these dataclasses
(``to_bench_config``), so a bad value stops the job before any engine starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from harness.config.capacity import SEARCH_LOADS, CapacityConfig
from harness.config.checks import ConfigError, require_choice, require_positive
from harness.config.engine import EngineConfig
from harness.config.load import LoadConfig
from harness.config.model import ModelConfig
from harness.config.naming import machine_id, slug, utc_stamp
from harness.config.run import ExperimentConfig, MachineConfig, TelemetryConfig
from harness.config.workload import WorkloadConfig

ON_FAILURE = ("continue", "stop")
LLAMACPP_CACHE_RAM_MIB = 8192  # llama-server's own --cache-ram default (build 11434)


@dataclass
class BenchConfig:
    engine: EngineConfig = field(default_factory=EngineConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    load: LoadConfig = field(default_factory=LoadConfig)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    machine: MachineConfig = field(default_factory=MachineConfig)
    capacity: CapacityConfig = field(default_factory=CapacityConfig)
    results: str = "results"
    seed: int = 0
    print_table: bool = True
    # Skip levels a previous run of the same config (same hash) already finished.
    resume: bool = False
    # In a sweep, what a failed job does to the jobs after it: continue or stop.
    on_failure: str = "continue"
    # Refuse to start with less free space than this under `results`.
    min_free_disk_mib: int = 200
    # Each level runs this many times (the ladder once over, then again), engine kept up.
    repeats: int = 1

    def validate(self) -> None:
        require_choice("on_failure", self.on_failure, ON_FAILURE)
        if self.engine.cache_ram_mib is None:  # pinned: on only where prompts share prefixes
            reuse = self.workload.shared_prefix_tokens > 0 or self.workload.kind == "multi_turn"
            self.engine.cache_ram_mib = LLAMACPP_CACHE_RAM_MIB if reuse else 0
        require_positive("min_free_disk_mib", self.min_free_disk_mib, allow_zero=True)
        require_positive("repeats", self.repeats)
        if self.capacity.enabled:
            self.validate_search()
        if (self.workload.kind == "trace") != (self.load.mode == "trace"):
            raise ConfigError(
                f"workload.kind={self.workload.kind!r} with load.mode={self.load.mode!r}: a trace "
                "is replayed at its own times, so workload=trace goes with load=trace and "
                "load=trace with workload=trace"
            )
        if self.load.requests_per_level is None and self.workload.kind in ("sharegpt", "trace"):
            raise ConfigError(
                f"load.requests_per_level=null with workload.kind={self.workload.kind!r}: its "
                "requests come from a file of a fixed size; give a count, e.g. "
                "load.requests_per_level=64"
            )

    def validate_search(self) -> None:
        """A capacity search probes closed-loop users or open-loop rates, one at a time."""
        if self.load.mode not in SEARCH_LOADS:
            raise ConfigError(
                f"capacity.slo with load.mode={self.load.mode!r}: the search probes "
                f"{' or '.join(SEARCH_LOADS)} (load=ladder, or load=poisson for requests/s)"
            )
        if self.repeats != 1:
            raise ConfigError("capacity.slo with repeats > 1: each probe runs once")
        capacity = self.capacity
        if self.load.mode == "concurrency" and not all(
            float(v).is_integer() for v in (capacity.start, capacity.max_load)
        ):
            raise ConfigError("capacity.start and capacity.max_load count users: integers")


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
    sections = (bench.engine, bench.model, bench.workload, bench.load, bench.telemetry)
    for section in (*sections, bench.capacity, bench.machine):
        section.validate()
    bench.validate()
    return bench
