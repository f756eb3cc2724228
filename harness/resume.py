"""resume=true: find the last run of the same config and keep its finished levels.

A level counts as finished when it ran to its end (status ok, partial or failed); levels
cut short (interrupted, engine_died) run again. Their records move to
requests.discarded.jsonl, so nothing measured is lost and the kept records match the
summary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.store import REQUESTS_FILE, SUMMARY_FILE

FINISHED_LEVEL_STATUSES = ("ok", "partial", "failed")
DISCARDED_FILE = "requests.discarded.jsonl"


def _summary(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / SUMMARY_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def find_previous_run(run_dir: Path, config_hash: str) -> Path | None:
    """The latest other run beside `run_dir` whose config hash is `config_hash`."""
    found: list[tuple[str, Path]] = []
    for candidate in run_dir.parent.iterdir():
        if candidate == run_dir or not candidate.is_dir():
            continue
        summary = _summary(candidate)
        if summary and summary.get("run", {}).get("config_hash") == config_hash:
            found.append((summary.get("started_at") or "", candidate))
    return max(found)[1] if found else None


def prepare_resume(run_dir: Path) -> tuple[dict[str, Any], set[int]]:
    """Keep the finished levels of a run; move other levels' records aside.

    Returns the summary with only the finished levels, and their level indices.
    """
    summary = _summary(run_dir) or {}
    kept = [
        level
        for level in summary.get("levels", [])
        if level.get("status") in FINISHED_LEVEL_STATUSES and "level_index" in level
    ]
    done = {level["level_index"] for level in kept}
    summary["levels"] = kept
    requests = run_dir / REQUESTS_FILE
    if requests.exists():
        keep_lines, discard_lines = [], []
        for line in requests.read_text().splitlines():
            try:
                level = json.loads(line).get("level")
            except json.JSONDecodeError:
                level = None
            (keep_lines if level in done else discard_lines).append(line)
        if discard_lines:
            with (run_dir / DISCARDED_FILE).open("a") as handle:
                handle.write("\n".join(discard_lines) + "\n")
        tmp = requests.with_name(f".{requests.name}.tmp")
        tmp.write_text("".join(f"{line}\n" for line in keep_lines))
        tmp.replace(requests)
    return summary, done
