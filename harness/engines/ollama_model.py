"""Ollama serving the model's own GGUF: uploaded as a blob, created as a model, read back.

Follows Ollama's API (docs/api.md; server/routes.go and server/create.go, v0.33):
- HEAD /api/blobs/sha256:<hex> answers 200 when the server holds the blob; POST sends the raw
  bytes (201, or 400 "digest mismatch" when what arrived hashes otherwise);
- POST /api/create {"model", "files": {name: "sha256:<hex>"}} makes a model of the blob;
- POST /api/show names the model's weights layer in its modelfile (FROM .../sha256-<hex>),
  its quantisation (details.quantization_level) and, for a GGUF, its tensors.
Since 0.30 Ollama rewrites a text-only GGUF at create (llama-quantize COPY): the layer then
has another digest but the same tensors, which is checked tensor by tensor instead.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from harness.engines.base import EngineError
from harness.gguf_meta import read_gguf_tensors

FROM_BLOB = re.compile(r"^FROM\s+\S*sha256[-:]([0-9a-f]{64})\s*$", re.MULTILINE)
BLOCK_BYTES = 1 << 20
# llama-server's template for a GGUF that carries none (ChatML), as an Ollama Go template,
# so both engines see the same prompt.
CHATML_TEMPLATE = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n"
)


def model_name(model: str, sha256: str) -> str:
    """The Ollama model made of one GGUF: the config's name, tagged by the file's digest."""
    slug = re.sub(r"[^a-z0-9_.-]+", "-", model.lower()).strip("-.") or "model"
    return f"{slug[:80]}:sha-{sha256[:12]}"


def _request(url: str, method: str, **kwargs: Any) -> urllib.request.Request:
    return urllib.request.Request(url, method=method, **kwargs)


def _error_text(exc: urllib.error.HTTPError) -> str:
    body = exc.read().decode("utf-8", errors="replace")
    try:
        return str(json.loads(body).get("error") or body)
    except (ValueError, AttributeError):
        return body.strip() or exc.reason


def post(root_url: str, path: str, payload: dict[str, Any], timeout_s: float) -> Any:
    """POST JSON, the answer's JSON; an HTTP error becomes EngineError with Ollama's text."""
    request = _request(
        f"{root_url}{path}",
        "POST",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise EngineError(f"ollama {path} answered {exc.code}: {_error_text(exc)}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise EngineError(f"ollama {path} failed: {exc}") from exc


def has_blob(root_url: str, sha256: str) -> bool:
    try:
        with urllib.request.urlopen(
            _request(f"{root_url}/api/blobs/sha256:{sha256}", "HEAD"), timeout=30
        ):
            return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise EngineError(f"ollama HEAD /api/blobs answered {exc.code}") from None


def _blocks(path: Path, bar: tqdm) -> Iterator[bytes]:
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(BLOCK_BYTES), b""):
            bar.update(len(block))
            yield block


def upload_blob(root_url: str, path: Path, sha256: str, timeout_s: float) -> bool:
    """Send the file as the blob sha256:<hex> unless the server holds it; True if sent."""
    if has_blob(root_url, sha256):
        return False
    size = path.stat().st_size
    url = f"{root_url}/api/blobs/sha256:{sha256}"
    with tqdm(total=size, unit="B", unit_scale=True, desc=f"upload {path.name}") as bar:
        request = _request(
            url,
            "POST",
            data=_blocks(path, bar),
            headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s):
                pass
        except urllib.error.HTTPError as exc:
            raise EngineError(
                f"ollama refused the upload of {path} as sha256:{sha256} (HTTP {exc.code}: "
                f"{_error_text(exc)}); nothing was measured"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise EngineError(f"the upload of {path} to ollama failed: {exc}") from exc
    return True


def create_model(
    root_url: str, name: str, path: Path, sha256: str, template: str | None, timeout_s: float
) -> None:
    payload: dict[str, Any] = {"model": name, "files": {path.name: f"sha256:{sha256}"}}
    if template is not None:
        payload["template"] = template
    answer = post(root_url, "/api/create", {**payload, "stream": False}, timeout_s)
    if not isinstance(answer, dict) or answer.get("status") != "success":
        raise EngineError(f"ollama could not create {name} from {path.name}: {answer}")


def layer_digest(show: dict[str, Any]) -> str | None:
    """The sha256 of the model's weights layer, from the FROM line of /api/show's modelfile."""
    found = FROM_BLOB.search(str(show.get("modelfile") or ""))
    return found[1] if found else None


def tensors_differ(show: dict[str, Any], path: Path) -> str | None:
    """Why the tensors Ollama lists are not those of the GGUF at `path` (None: the same)."""
    listed = show.get("tensors")
    if not listed:
        return "/api/show lists no tensors"
    theirs = {t.get("name"): (str(t.get("type")), tuple(t.get("shape") or ())) for t in listed}
    ours = {t.name: (t.ggml_type, t.shape) for t in read_gguf_tensors(path)[1]}
    if theirs == ours:
        return None
    changed = sorted(n for n in set(theirs) | set(ours) if theirs.get(n) != ours.get(n))
    return f"{len(changed)} tensors differ (first: {changed[0]})"


def verify(show: dict[str, Any], path: Path, sha256: str) -> dict[str, Any]:
    """How the model Ollama serves was checked against the file; EngineError if it is not it."""
    served = layer_digest(show)
    if served == sha256:
        return {"verified_by": "sha256 of the weights layer", "ollama_blob_sha256": served}
    why = tensors_differ(show, path)
    if why is None:
        return {
            "verified_by": "tensors (names, types, shapes): Ollama re-packed the file",
            "ollama_blob_sha256": served,
        }
    raise EngineError(
        f"ollama serves weights layer sha256:{served or '?'} for the model made of {path} "
        f"(sha256:{sha256}), and its tensors are not the file's ({why}): it is not the same "
        "model; nothing was measured"
    )


def quantisation(show: dict[str, Any]) -> str | None:
    return (show.get("details") or {}).get("quantization_level")
