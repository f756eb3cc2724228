"""vLLM: `vllm serve` natively or the vllm/vllm-openai image.

What it loads is engine.vllm_weights: the HF checkpoint (hf), the same GGUF the llama.cpp
engines serve with the tokenizer and config of model.hf_repo (gguf; vLLM 0.24 and later
need the vllm-gguf-plugin for it), or a 4-bit repository of the same model (awq, gptq:
model.vllm_quant_repo). What it did load is read back from its engine-config log line.

vLLM pre-allocates its KV cache to `gpu_memory_utilization` of the GPU and downloads the
model itself (into the HF cache volume under Compose). An HF token is read from HF_TOKEN
in the environment; only its name is ever recorded.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

from harness.config import kv_cache_type_for
from harness.constants import HF_TOKEN_ENV
from harness.engines import vllm_weights
from harness.engines.base import EngineError, scrape_prometheus
from harness.engines.llamacpp_props import gguf_model
from harness.engines.provision import describe_gguf, resolve_gguf
from harness.engines.served import ServedEngine
from harness.engines.weights import SOURCES, gguf_file_type, gguf_weights

_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def split_labels(key: str) -> tuple[str, dict[str, str]]:
    """'name{a="1",b="x"}' -> ('name', {'a': '1', 'b': 'x'})."""
    name, _, labels = key.partition("{")
    return name, dict(_LABEL.findall(labels))


def keep_metric(key: str) -> bool:
    """vLLM's own series, without histogram buckets (their _sum and _count stay)."""
    name = key.partition("{")[0]
    return name.startswith("vllm:") and not name.endswith(("_bucket", "_created"))


def _count(text: str | None) -> int | None:
    """A whole number from a label value ("2730"), or None ("None", absent)."""
    return int(text) if text and text.isdigit() else None


class Vllm(ServedEngine):
    kind = "vllm"
    default_binary = "vllm"
    default_service = "vllm"
    container_port = 8000
    health_path = "/health"
    native_needs_gpu = True
    GGUF_DIR = "/models"  # where the compose service mounts the GGUF's folder

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gguf: dict[str, Any] | None = None  # describe_gguf, for vllm_weights=gguf

    @property
    def served_model(self) -> str:
        return self.model_cfg.name

    @property
    def hf_repo(self) -> str:
        return self.model_cfg.hf_repo or ""

    @property
    def weights_choice(self) -> str:
        return self.engine_cfg.vllm_weights

    def check_model(self) -> None:
        if not self.model_cfg.hf_repo:
            raise EngineError(
                f"vLLM needs a Hugging Face repository id, but model={self.model_cfg.name!r} "
                "has no model.hf_repo: set model.hf_repo=<org/name> (e.g. "
                "meta-llama/Llama-3.1-8B-Instruct); with engine.vllm_weights=gguf it gives the "
                "tokenizer and config"
            )
        if self.weights_choice == "gguf":
            gguf_model(self.model_cfg)
        if self.weights_choice in ("awq", "gptq") and not self.model_cfg.vllm_quant_repo:
            raise EngineError(
                f"engine.vllm_weights={self.weights_choice!r} needs model.vllm_quant_repo: the "
                f"{self.weights_choice.upper()} repository of model={self.model_cfg.name!r}: "
                "set model.vllm_quant_repo=<org/name> (e.g. "
                "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4)"
            )

    def provision(self) -> dict[str, Any]:
        """The GGUF made available here (gguf), else checks only: vLLM downloads a
        repository itself when it starts."""
        self.preflight()
        token = {"hf_token_env": HF_TOKEN_ENV if os.environ.get(HF_TOKEN_ENV) else None}
        if self.weights_choice == "gguf":
            model = gguf_model(self.model_cfg)
            self.gguf = describe_gguf(model, resolve_gguf(model))
            return {**self.gguf, "hf_repo": self.hf_repo, **token}
        repo = self.model_repo
        return {"name": self.model_cfg.name, "source": "hf_repo", "hf_repo": repo, **token}

    @property
    def model_repo(self) -> str:
        """The repository vLLM loads (the checkpoint, or its AWQ/GPTQ copy)."""
        if self.weights_choice in ("awq", "gptq"):
            return self.model_cfg.vllm_quant_repo or ""
        return self.hf_repo

    def model_spec(self, gguf_dir: str | None = None) -> list[str]:
        """The model argument and what it needs: a GGUF path (in `gguf_dir` when given)
        with the tokenizer and config of model.hf_repo, or a repository."""
        if self.weights_choice != "gguf":
            return [self.model_repo]
        if self.gguf is None:
            raise EngineError("provision() must run before the server starts")
        path = self.gguf["path"]
        if gguf_dir is not None:
            path = f"{gguf_dir}/{os.path.basename(path)}"
        return [path, "--tokenizer", self.hf_repo, "--hf-config-path", self.hf_repo]

    def served_weights(self, model_info: dict[str, Any]) -> dict[str, Any]:
        """What its engine-config log line says it loaded; a method other than the one
        engine.vllm_weights asks for stops the job."""
        gguf_type = gguf_file_type(Path(self.gguf["path"])) if self.gguf else None
        loaded = vllm_weights.loaded_config(self.startup_log())
        mismatch = vllm_weights.method_mismatch(self.weights_choice, loaded)
        if mismatch:
            raise EngineError(f"{self.engine_cfg.name}: {mismatch}")
        read = vllm_weights.read_back(self.weights_choice, loaded, gguf_type)
        if self.gguf is not None:
            return gguf_weights(self.gguf, **read)
        return {"format": "safetensors", "source": SOURCES["hf_repo"], "repo": self.model_repo,
                **read}  # fmt: skip

    def kv_cache_dtype(self) -> str:
        return kv_cache_type_for(self.kind, self.engine_cfg.kv_cache_type)

    def server_args(self, host: str, port: int) -> list[str]:
        """Arguments after `vllm serve`; the same natively and in the container."""
        memory = ["--gpu-memory-utilization", str(self.engine_cfg.gpu_memory_utilization)]
        return [*self.model_spec(), *self.sizing_args(host, port), *memory, *self.cache_args()]

    def sizing_args(self, host: str, port: int) -> list[str]:
        """The name it serves, where it listens, and its sequences: every build takes these."""
        cfg = self.engine_cfg
        return [
            "--served-model-name",
            self.served_model,
            "--host",
            host,
            "--port",
            str(port),
            "--max-model-len",
            str(cfg.ctx_size),
            "--max-num-seqs",
            str(cfg.parallel),
        ]

    def cache_args(self) -> list[str]:
        return [
            "--kv-cache-dtype",
            self.kv_cache_dtype(),
            # usage.prompt_tokens_details.cached_tokens per request: the prefix cache's hits
            "--enable-prompt-tokens-details",
        ]

    def native_command(self) -> list[str]:
        args = self.server_args(self.engine_cfg.host, self.port)
        return [self.binary, "serve", *args, *self.engine_cfg.extra_args]

    def service_env(self) -> dict[str, str]:
        cfg = self.engine_cfg
        return {
            "ENGINE_BIND_HOST": cfg.host,
            "VLLM_PORT": str(self.port),
            "VLLM_MODEL": shlex.join(self.model_spec(self.GGUF_DIR)),
            "VLLM_SERVED_NAME": self.served_model,
            "VLLM_MAX_MODEL_LEN": str(cfg.ctx_size),
            "VLLM_MAX_NUM_SEQS": str(cfg.parallel),
            "VLLM_GPU_MEMORY_UTILIZATION": str(cfg.gpu_memory_utilization),
            "VLLM_KV_CACHE_DTYPE": self.kv_cache_dtype(),
            "VLLM_EXTRA_ARGS": shlex.join(cfg.extra_args),
            **({"VLLM_MODELS_DIR": os.path.dirname(self.gguf["path"])} if self.gguf else {}),
        }

    def version(self) -> dict[str, Any]:
        answer = self.get_json("/version") or {}
        return {"engine": "vllm", "version": answer.get("version"), **self.launch_info()}

    def _metrics(self) -> dict[str, float]:
        return scrape_prometheus(f"{self.root_url}/metrics")

    def requested_settings(self) -> dict[str, Any]:
        cfg = self.engine_cfg
        return {
            "max_model_len": cfg.ctx_size,
            "max_num_seqs": cfg.parallel,
            "gpu_memory_utilization": cfg.gpu_memory_utilization,
            "kv_cache_dtype": self.kv_cache_dtype(),
        }

    def server_settings(self) -> dict[str, Any]:
        models = (self.get_json("/v1/models") or {}).get("data", [])
        served = next((m for m in models if m.get("id") == self.served_model), {})
        cache: dict[str, str] = {}
        for key in self._metrics():
            name, labels = split_labels(key)
            if name == "vllm:cache_config_info":
                cache = labels
        blocks, block_size = _count(cache.get("num_gpu_blocks")), _count(cache.get("block_size"))
        # Newer builds say how many tokens the pool holds; with sliding-window layers that is
        # fewer than blocks x block_size, which only older builds leave to compute.
        tokens = _count(cache.get("kv_cache_size_tokens"))
        if tokens is None and blocks is not None and block_size is not None:
            tokens = blocks * block_size
        return {
            "max_model_len": served.get("max_model_len"),
            "gpu_memory_utilization": cache.get("gpu_memory_utilization"),
            "kv_cache_dtype": cache.get("cache_dtype"),
            "num_gpu_blocks": blocks,
            "block_size": block_size,
            "kv_cache_tokens": tokens,
            "kv_cache_memory_bytes": _count(cache.get("kv_cache_memory_bytes")),
            "enable_prefix_caching": cache.get("enable_prefix_caching"),
        }

    def scrape(self) -> dict[str, float]:
        return {k: v for k, v in self._metrics().items() if keep_metric(k)}
