"""Typed config schemas (registered with Hydra's ConfigStore) and their validation.

One module per config group (engine, model, workload, load, run: telemetry/experiment/
machine), the whole job's schema with its registration in ``bench``, the shared checks in
``checks`` and the refusal of secrets in ``secrets``. Every name is importable from here.
"""

from harness.config.bench import ON_FAILURE, BenchConfig, register, to_bench_config
from harness.config.capacity import CapacityConfig, parse_slo, target_metric
from harness.config.checks import ConfigError, require_choice, require_positive
from harness.config.engine import (
    DEFAULT_KV_CACHE_TYPE,
    ENGINE_KINDS,
    EngineConfig,
    kv_cache_type_for,
)
from harness.config.load import LoadConfig
from harness.config.model import MODEL_SOURCES, ModelConfig
from harness.config.naming import machine_id, slug, utc_stamp
from harness.config.run import GPU_MODES, ExperimentConfig, MachineConfig, TelemetryConfig
from harness.config.secrets import (
    SECRET_ADVICE,
    SECRET_ARGUMENTS,
    SECRET_QUERY_NAME,
    redacted_url,
    refuse_secret_arguments,
    refuse_secret_in_url,
)
from harness.config.workload import API_FLAVOURS, WORKLOAD_KINDS, WorkloadConfig
from harness.constants import ARRIVALS, LOAD_MODES

__all__ = [
    "API_FLAVOURS",
    "ARRIVALS",
    "DEFAULT_KV_CACHE_TYPE",
    "ENGINE_KINDS",
    "GPU_MODES",
    "LOAD_MODES",
    "MODEL_SOURCES",
    "ON_FAILURE",
    "SECRET_ADVICE",
    "SECRET_ARGUMENTS",
    "SECRET_QUERY_NAME",
    "WORKLOAD_KINDS",
    "BenchConfig",
    "CapacityConfig",
    "ConfigError",
    "EngineConfig",
    "ExperimentConfig",
    "LoadConfig",
    "MachineConfig",
    "ModelConfig",
    "TelemetryConfig",
    "WorkloadConfig",
    "kv_cache_type_for",
    "machine_id",
    "parse_slo",
    "redacted_url",
    "refuse_secret_arguments",
    "refuse_secret_in_url",
    "register",
    "require_choice",
    "require_positive",
    "slug",
    "target_metric",
    "to_bench_config",
    "utc_stamp",
]
