"""Ollama: `ollama serve` natively or the ollama/ollama image.

The model is the model's own GGUF, uploaded and created through the API (the same file the
llama.cpp engines serve, checked against what /api/show reports), or with
engine.ollama_weights=library a library tag pulled, labelled by what /api/show says it holds.

Context and parallelism are pinned explicitly (recent Ollama picks the context from the
GPU's memory, up to 256K tokens, when nothing is set). Ollama has no Prometheus endpoint:
`scrape` reads /api/ps (memory on the GPU and context of the loaded model).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tqdm import tqdm

from harness.config import kv_cache_type_for
from harness.engines import ollama_model
from harness.engines.base import EngineError
from harness.engines.llamacpp_props import gguf_model
from harness.engines.provision import describe_gguf, resolve_gguf
from harness.engines.served import ServedEngine
from harness.engines.weights import SOURCES, gguf_weights
from harness.gguf_meta import read_gguf_metadata

PULL_READ_TIMEOUT_S = 120.0
FLASH_ATTENTION_ENV = {"on": "1", "off": "0", "auto": ""}


def pull_progress(lines: Any, bar: tqdm) -> dict[str, Any]:
    """Follow /api/pull's streamed JSON lines on a progress bar; the last status line."""
    last: dict[str, Any] = {}
    for raw in lines:
        if not raw.strip():
            continue
        event = json.loads(raw)
        if "error" in event:
            raise EngineError(f"ollama pull failed: {event['error']}")
        last = event
        if event.get("total"):
            if bar.total != event["total"]:
                bar.reset(total=event["total"])
                bar.set_description(f"pull {event.get('digest', '')[7:19] or 'layer'}")
            bar.n = event.get("completed", 0)
            bar.refresh()
        else:
            bar.set_postfix_str(str(event.get("status", "")))
    return last


def ps_metrics(ps: dict[str, Any]) -> dict[str, float]:
    """/api/ps as gauges: bytes in GPU memory, total bytes and context of each loaded model."""
    values: dict[str, float] = {"ollama:models_loaded": float(len(ps.get("models", [])))}
    for model in ps.get("models", []):
        label = f'{{model="{model.get("name", "")}"}}'
        values[f"ollama:size_vram_bytes{label}"] = float(model.get("size_vram", 0))
        values[f"ollama:size_bytes{label}"] = float(model.get("size", 0))
        if "context_length" in model:
            values[f"ollama:context_length{label}"] = float(model["context_length"])
    return values


def keep_alive_value(text: str) -> int | float | str:
    """Ollama reads a JSON string as a Go duration ("5m"; "-1" has no unit and is refused)
    and a JSON number as seconds (-1: for ever), so bare numbers go as numbers."""
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() else number


class Ollama(ServedEngine):
    kind = "ollama"
    default_binary = "ollama"
    default_service = "ollama"
    container_port = 11434
    health_path = "/api/version"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model_digest: str | None = None
        self.pulled = False
        self.gguf: dict[str, Any] | None = None  # describe_gguf of the file it serves
        self.shown: dict[str, Any] = {}  # /api/show of the served model
        self.shown_check: dict[str, Any] = {}  # how it was found to be the GGUF

    @property
    def weights_mode(self) -> str:
        """gguf (the model's own file) or library (its Ollama tag)."""
        mode = self.engine_cfg.ollama_weights
        if mode != "auto":
            return mode
        try:
            gguf_model(self.model_cfg)
        except EngineError:
            return "library"
        return "gguf"

    @property
    def tag(self) -> str:
        """The model's name on the server: made from the GGUF's digest, or the library tag."""
        if self.weights_mode == "gguf":
            return (
                ollama_model.model_name(self.model_cfg.name, self.gguf["sha256"])
                if self.gguf
                else ""
            )
        return self.model_cfg.ollama_tag or ""

    @property
    def served_model(self) -> str:
        return self.tag

    def check_model(self) -> None:
        if self.weights_mode == "gguf":
            try:
                gguf_model(self.model_cfg)
            except EngineError as exc:
                raise EngineError(f"engine.ollama_weights=gguf: {exc}") from None
        elif not self.model_cfg.ollama_tag:
            asked = self.engine_cfg.ollama_weights == "library"
            raise EngineError(
                f"Ollama needs an Ollama model tag for engine.ollama_weights=library, but model="
                f"{self.model_cfg.name!r} has none: set model.ollama_tag=<tag> (e.g. llama3.1:8b)"
                if asked
                else f"Ollama needs a GGUF file or an Ollama model tag, but model="
                f"{self.model_cfg.name!r} has neither: set model.path=<local .gguf file>, or "
                "model.ollama_tag=<tag> (e.g. llama3.1:8b)"
            )

    def provision(self) -> dict[str, Any]:
        """The GGUF made available here (the upload needs the server, so it comes once the
        server is up); for a library tag, checks only."""
        self.preflight()
        if self.weights_mode == "library":
            return {"name": self.model_cfg.name, "source": "ollama", "ollama_tag": self.tag}
        model = gguf_model(self.model_cfg)
        self.gguf = describe_gguf(model, resolve_gguf(model))
        return {**self.gguf, "ollama_model": self.tag}

    def server_env(self, listen: str) -> dict[str, str]:
        """The OLLAMA_* knobs, the same natively and in the container."""
        cfg = self.engine_cfg
        return {
            "OLLAMA_HOST": listen,
            "OLLAMA_NUM_PARALLEL": str(cfg.parallel),
            "OLLAMA_CONTEXT_LENGTH": str(cfg.ctx_size),
            "OLLAMA_KEEP_ALIVE": cfg.ollama_keep_alive,
            "OLLAMA_MAX_LOADED_MODELS": "1",
            "OLLAMA_FLASH_ATTENTION": FLASH_ATTENTION_ENV[cfg.flash_attn],
            "OLLAMA_KV_CACHE_TYPE": kv_cache_type_for(self.kind, cfg.kv_cache_type),
        }

    def native_command(self) -> list[str]:
        return [self.binary, "serve", *self.engine_cfg.extra_args]

    def native_env(self) -> dict[str, str]:
        return self.server_env(f"{self.engine_cfg.host}:{self.port}")

    def service_env(self) -> dict[str, str]:
        env = {
            **self.server_env(""),
            "ENGINE_BIND_HOST": self.engine_cfg.host,
            "OLLAMA_PORT": str(self.port),
        }
        del env["OLLAMA_HOST"]  # the compose file builds it from ENGINE_LISTEN_*
        return env

    def local_models(self) -> dict[str, str]:
        tags = self.get_json("/api/tags") or {}
        return {m.get("name", ""): m.get("digest", "") for m in tags.get("models", [])}

    def _local_digest(self) -> str | None:
        models = self.local_models()
        name = self.tag if ":" in self.tag else f"{self.tag}:latest"
        return models.get(self.tag) or models.get(name)

    def pull(self) -> None:
        """POST /api/pull, streamed progress on a bar; skipped when the tag is already here."""
        if self._local_digest():
            return
        request = urllib.request.Request(
            f"{self.root_url}/api/pull",
            data=json.dumps({"model": self.tag, "stream": True}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with (
                urllib.request.urlopen(request, timeout=PULL_READ_TIMEOUT_S) as response,
                tqdm(unit="B", unit_scale=True, desc=f"pull {self.tag}") as bar,
            ):
                last = pull_progress(response, bar)
        except (urllib.error.URLError, OSError) as exc:
            raise EngineError(f"ollama pull {self.tag} failed: {exc}") from exc
        if last.get("status") != "success":
            raise EngineError(f"ollama pull {self.tag} ended without success: {last}")
        self.pulled = True

    def create_from_gguf(self) -> None:
        """Upload the GGUF as a blob (skipped when the server holds it) and create the model;
        a GGUF without a chat template gets llama-server's fallback (ChatML)."""
        assert self.gguf is not None
        path, sha256 = Path(self.gguf["path"]), self.gguf["sha256"]
        timeout = self.engine_cfg.pull_timeout_s
        self.pulled = ollama_model.upload_blob(self.root_url, path, sha256, timeout)
        has_template = "tokenizer.chat_template" in read_gguf_metadata(path)
        template = None if has_template else ollama_model.CHATML_TEMPLATE
        ollama_model.create_model(self.root_url, self.tag, path, sha256, template, timeout)

    def read_back(self) -> None:
        """/api/show of the served model; a GGUF's model must be that file (EngineError)."""
        self.shown = ollama_model.post(
            self.root_url, "/api/show", {"model": self.tag}, timeout_s=60
        )
        if self.gguf is not None:
            self.shown_check = ollama_model.verify(
                self.shown, Path(self.gguf["path"]), self.gguf["sha256"]
            )

    def after_ready(self) -> None:
        if self.weights_mode == "gguf":
            self.create_from_gguf()
        else:
            self.pull()
        self.read_back()
        self.model_digest = self._local_digest()
        # Load the model now, with the context it is measured at, so no level pays for it.
        load = {
            "model": self.tag,
            "keep_alive": keep_alive_value(self.engine_cfg.ollama_keep_alive),
            "options": {"num_ctx": self.engine_cfg.ctx_size},
        }
        try:
            ollama_model.post(
                self.root_url, "/api/generate", load, self.engine_cfg.startup_timeout_s
            )
        except EngineError as exc:
            raise EngineError(f"ollama could not load {self.tag}: {exc}") from None

    def served_weights(self, model_info: dict[str, Any]) -> dict[str, Any]:
        details = self.shown.get("details") or {}
        read = {
            "quant": ollama_model.quantisation(self.shown),
            "quant_from": "ollama /api/show details.quantization_level",
            "ollama_model": self.tag,
            "ollama_blob_sha256": ollama_model.layer_digest(self.shown),
            "ollama_details": details,  # /api/show's details, as it answered
        }
        if self.gguf is not None:
            return gguf_weights(self.gguf, **{**read, **self.shown_check})
        return {
            "format": details.get("format") or "ollama blob",
            "sha256": read["ollama_blob_sha256"],  # the library blob is a GGUF file too
            "source": SOURCES["ollama"],
            "tag": self.tag,
            **read,
        }

    def version(self) -> dict[str, Any]:
        answer = self.get_json("/api/version") or {}
        return {
            "engine": "ollama",
            "version": answer.get("version"),
            "model_tag": self.tag,
            "model_digest": self.model_digest,
            "pulled_now": self.pulled,
            **self.launch_info(),
        }

    def server_settings(self) -> dict[str, Any]:
        loaded = [m for m in (self.get_json("/api/ps") or {}).get("models", []) if m.get("name")]
        model = loaded[0] if loaded else {}
        return {
            "context_length": model.get("context_length"),
            "size_vram_bytes": model.get("size_vram"),
            "size_bytes": model.get("size"),
        }

    def requested_settings(self) -> dict[str, Any]:
        env = self.server_env("")
        env.pop("OLLAMA_HOST", None)
        return env

    def scrape(self) -> dict[str, float]:
        ps = self.get_json("/api/ps", timeout_s=2)
        return ps_metrics(ps) if ps else {}
