"""Run directories: written incrementally while a job runs, and read back.

Layout: <results>/<experiment>/<machine-id>/<engine>__<model>__<UTC stamp>/ holding
.hydra/config.yaml, environment.json, requests.jsonl, telemetry.csv, summary.json,
engine.log and table.md. Every file is valid at every moment: records are appended one
line at a time and flushed, JSON files are replaced atomically. The tidy pandas frames of
a whole store (levels and requests) are built by harness.report.frame.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.append_file import SPACE_ERRORS, AppendFile, StoreFull
from harness.records import RequestRecord

REQUESTS_FILE = "requests.jsonl"
SUMMARY_FILE = "summary.json"
ENVIRONMENT_FILE = "environment.json"
TELEMETRY_FILE = "telemetry.csv"
TABLE_FILE = "table.md"
SUMMARY_SCHEMA_VERSION = 1

__all__ = ["RunWriter", "StoreFull", "read_records", "write_json_atomic"]


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file and rename it over `path` (never half-written)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w") as handle:
            json.dump(data, handle, indent=2, sort_keys=False, default=str)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in SPACE_ERRORS:
            raise StoreFull(exc.errno, f"{exc.strerror}: {path}") from exc
        raise
    tmp.replace(path)


class RunWriter:
    """Appends records as they finish and rewrites the summary after every level."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self._requests = AppendFile(run_dir / REQUESTS_FILE)

    def write_environment(self, environment: dict[str, Any]) -> None:
        write_json_atomic(self.run_dir / ENVIRONMENT_FILE, environment)

    def append_record(self, record: RequestRecord) -> None:
        """Append one whole line (StoreFull when the disk takes no more)."""
        self._requests.write(json.dumps(record.to_json_dict()) + "\n")
        self._requests.flush()

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json_atomic(self.run_dir / SUMMARY_FILE, summary)

    def write_text(self, name: str, text: str) -> None:
        (self.run_dir / name).write_text(text)

    def close(self) -> None:
        self._requests.close()


def read_records(run_dir: Path) -> list[RequestRecord]:
    """Records of a run; a last line cut by a crash is skipped, not fatal."""
    path = run_dir / REQUESTS_FILE
    if not path.exists():
        return []
    records = []
    with path.open() as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(RequestRecord.from_json_dict(json.loads(line)))
            except (json.JSONDecodeError, TypeError):
                continue
    return records


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def iter_run_dirs(root: Path) -> Iterator[Path]:
    """Every run directory under `root` (those holding a summary.json), sorted."""
    yield from sorted(p.parent for p in root.rglob(SUMMARY_FILE))
