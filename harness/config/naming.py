"""Names a run is filed under; the YAML files reach them as resolvers (${slug:...})."""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime
from typing import Any


def slug(value: Any) -> str:
    """A file-name-safe form of a name (HF repo ids contain '/', tags contain ':')."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", str(value)).strip("-.")
    return text or "unnamed"


def machine_id(label: str | None) -> str:
    return slug(label) if label else slug(socket.gethostname())


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
