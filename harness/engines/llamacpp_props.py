"""What both llama.cpp engines (llama-server, the embedded xllamacpp server) share: the GGUF
they are given, what they read back from their server (/props, /metrics, the start-up
log's offload lines), and the knobs requested.

Whether the model sits on a GPU is read from the start-up log, since /props does not say:
a GPU build logs `load_tensors: offloaded N/M layers to GPU` and `using device CUDA0 (...)`;
a build without a GPU backend logs `no usable GPU found, --gpu-layers option will be
ignored` and offloads nothing, whatever -ngl says.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import EngineConfig, ModelConfig, kv_cache_type_for
from harness.engines.base import EngineError, scrape_prometheus
from harness.engines.weights import gguf_file_type, gguf_weights

log = logging.getLogger(__name__)

OFFLOADED = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")
USING_DEVICE = re.compile(r"using device (\S+) \(([^)]*)\)")
NO_USABLE_GPU = "no usable GPU found"
# How the server says what became of --cache-ram (its host-memory prompt cache): its own
# lines (info level in some builds, trace in others), the warning a build with idle-slot
# caching gives when the cache is off, and the embedded server's read of its parameters.
PROMPT_CACHE = re.compile(
    r"prompt cache is (disabled|enabled, size limit: (no limit|\d+))"
    r"|(--cache-idle-slots requires --cache-ram, disabling)"
    r"|xllamacpp_server: prompt cache limit (-?\d+) MiB"
)
GGUF_SOURCES = ("package", "gguf_file", "gguf_url")


def gguf_model(model: ModelConfig) -> ModelConfig:
    """The model config to resolve a GGUF from, or EngineError naming the field to set."""
    if model.source in GGUF_SOURCES:
        return model
    if model.path:
        return dataclasses.replace(model, source="gguf_file")
    if model.url:
        return dataclasses.replace(model, source="gguf_url")
    raise EngineError(
        f"llama.cpp needs a GGUF file, but model={model.name!r} (source={model.source!r}) "
        "has none: set model.url=<GGUF download address> or model.path=<local .gguf file>"
    )


@dataclass(frozen=True)
class Offload:
    """Where the server says it put the model's layers."""

    layers_offloaded: int | None  # None: the log does not say
    layers_total: int | None
    gpu_devices: tuple[str, ...]  # "CUDA0 (NVIDIA H200)", ...

    @property
    def on_gpu(self) -> bool | None:
        return None if self.layers_offloaded is None else self.layers_offloaded > 0


def read_offload(log_text: str) -> Offload:
    """The offload a llama.cpp server reports in its start-up log."""
    devices = tuple(dict.fromkeys(f"{m[1]} ({m[2]})" for m in USING_DEVICE.finditer(log_text)))
    offloaded = OFFLOADED.findall(log_text)
    if offloaded:
        layers, total = offloaded[-1]
        return Offload(int(layers), int(total), devices)
    if NO_USABLE_GPU in log_text:
        return Offload(0, None, ())
    return Offload(None, None, devices)


def prompt_cache_mib(log_text: str) -> int | None:
    """The prompt cache the server logged: 0 off, its limit in MiB, -1 no limit, None not
    said (a build before the cache)."""
    found = PROMPT_CACHE.findall(log_text)
    if not found:
        return None
    state, limit, idle_warning, embedded = found[-1]
    if embedded:
        return int(embedded)
    if state == "disabled" or idle_warning:
        return 0
    return -1 if limit == "no limit" else int(limit)


class LlamaCppServer:
    """Mixin for an engine whose server is llama.cpp's; needs `engine_cfg`, `kind`,
    `root_url`, `get_json` and `startup_log` from the engine class it is mixed into."""

    engine_cfg: EngineConfig
    model_cfg: ModelConfig
    kind: str
    root_url: str
    # Whether -ngl != 0 means a GPU was wanted (the embedded engine is the CPU engine).
    offload_wanted = True
    _offload: Offload | None = None

    if TYPE_CHECKING:  # provided by the engine class (OwnedServer)

        def get_json(self, path: str, timeout_s: float = 5.0) -> Any: ...

        def startup_log(self) -> str: ...

    @property
    def served_model(self) -> str:
        """The model is served under its config name (--alias)."""
        return self.model_cfg.name

    def kv_cache_type(self) -> str:
        return kv_cache_type_for(self.kind, self.engine_cfg.kv_cache_type)

    def threads_requested(self) -> int | None:
        """The threads the server is given (None: its own choice)."""
        return self.engine_cfg.threads or None

    def props(self) -> dict[str, Any]:
        return self.get_json("/props") or {}

    def offload(self) -> Offload:
        """What the start-up log says about offload; read again until it says (the server
        may write its log a little after it answers)."""
        if self._offload is None or self._offload.on_gpu is None:
            self._offload = read_offload(self.startup_log())
        return self._offload

    def check_offload(self) -> None:
        """Read the offload back once the server answers; warn when GPU layers were asked
        for and none were offloaded (a CPU-only build, or no usable GPU)."""
        self._offload = None
        offload = self.offload()
        asked = self.engine_cfg.n_gpu_layers
        if asked != 0 and offload.on_gpu is False:
            report = log.warning if self.offload_wanted else log.info
            report(
                "%s was asked for %d GPU layers (engine.n_gpu_layers) but offloaded none: "
                "it runs on the CPU (a build without GPU support, or no usable GPU)",
                self.engine_cfg.name,
                asked,
            )

    def runs_on_gpu(self) -> bool | None:
        return self.offload().on_gpu

    def served_weights(self, model_info: dict[str, Any]) -> dict[str, Any]:
        """The GGUF the server names in /props (model_path), which must be the file it was
        given; its quantisation as that file states it (general.file_type)."""
        path = Path(str(model_info["path"]))
        loaded = self.props().get("model_path")
        if loaded and Path(str(loaded)).name != path.name:
            raise EngineError(
                f"{self.engine_cfg.name} reports model_path={loaded!r} in /props, not the file "
                f"it was given ({path}): it is not serving that model"
            )
        where = "the file /props names" if loaded else "the file given (/props names none)"
        return gguf_weights(
            model_info, gguf_file_type(path), f"general.file_type of {where}", loaded_path=loaded
        )

    def build_info(self) -> str | None:
        return self.props().get("build_info")

    def server_settings(self) -> dict[str, Any]:
        props = self.props()
        defaults = props.get("default_generation_settings", {})
        offload = self.offload()
        return {
            "total_slots": props.get("total_slots"),
            "ctx_per_slot": defaults.get("n_ctx"),
            "model_ftype": props.get("model_ftype"),
            "gpu_layers_offloaded": offload.layers_offloaded,
            "layers_total": offload.layers_total,
            "gpu_devices": list(offload.gpu_devices),
            "runs_on_gpu": offload.on_gpu,
            "cache_ram_mib": prompt_cache_mib(self.startup_log()),
        }

    def requested_settings(self) -> dict[str, Any]:
        cfg = self.engine_cfg
        return {
            "parallel": cfg.parallel,
            "ctx_size_total": cfg.ctx_size * cfg.parallel,
            "n_gpu_layers": cfg.n_gpu_layers,
            "flash_attn": cfg.flash_attn,
            "kv_cache_type": self.kv_cache_type(),
            "threads": self.threads_requested(),
            "cache_ram_mib": cfg.cache_ram_mib,
        }

    def scrape(self) -> dict[str, float]:
        return scrape_prometheus(f"{self.root_url}/metrics")
