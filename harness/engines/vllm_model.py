"""The model vLLM's CPU build serves: the GGUF llama.cpp serves, converted once into a
Hugging Face folder by ``vllm_convert.py`` under vLLM's own interpreter, and cached.

The cache key is the GGUF's sha256, the dtype and the converter's version, so the same
file converted the same way is reused by every later run, and a changed file or converter
converts again. A conversion that fails leaves no folder behind (it is published under its
final name only when complete).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from harness.engines.base import EngineError
from harness.engines.provision import DEFAULT_MODELS_DIR, sha256_of

log = logging.getLogger(__name__)

CONVERTER = Path(__file__).with_name("vllm_convert.py")
# Raise when vllm_convert.py changes what it writes: cached folders are then converted again.
CONVERTER_VERSION = 2
CONVERSION_FILE = "conversion.json"
CONVERT_TIMEOUT_S = 1800.0


def converted_dir(gguf: Path, dtype: str, models_dir: Path = DEFAULT_MODELS_DIR) -> Path:
    """Where the conversion of `gguf` to `dtype` is cached."""
    digest = sha256_of(gguf)[:16]
    return models_dir / "vllm" / f"{gguf.stem}-{digest}-{dtype}-v{CONVERTER_VERSION}"


def read_conversion(folder: Path) -> dict[str, Any] | None:
    """The record a finished conversion left in `folder`, or None."""
    try:
        record = json.loads((folder / CONVERSION_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def convert_gguf(
    python: str, gguf: Path, dtype: str, models_dir: Path = DEFAULT_MODELS_DIR
) -> tuple[Path, dict[str, Any]]:
    """The converted folder for `gguf` and its conversion record, converting when not cached."""
    folder = converted_dir(gguf, dtype, models_dir)
    record = read_conversion(folder)
    if record is not None:
        log.info("vLLM model: %s (converted from %s before)", folder, gguf.name)
        return folder, record
    folder.parent.mkdir(parents=True, exist_ok=True)
    log.info(
        "converting %s to a %s safetensors folder for vLLM, once (about 2 min on 2 cores): %s",
        gguf.name,
        dtype,
        folder,
    )
    started = time.monotonic()
    args = [python, str(CONVERTER), str(gguf), str(folder), "--dtype", dtype]
    try:
        done = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=CONVERT_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        )
    except subprocess.TimeoutExpired:
        raise EngineError(
            f"converting {gguf} for vLLM took over {CONVERT_TIMEOUT_S:.0f} s; nothing was cached"
        ) from None
    record = read_conversion(folder)
    if done.returncode != 0 or record is None:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise EngineError(
            f"converting {gguf} for vLLM failed (exit code {done.returncode}); "
            f"`{' '.join(args)}` said:\n{tail}"
        )
    log.info("converted in %.0f s: %s", time.monotonic() - started, folder)
    return folder, record
