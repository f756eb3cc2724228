"""What a level's records say about its workload: prompt tokens as built against the
server's usage, and TTFT turn by turn of multi-turn sessions."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from harness.metrics import describe
from harness.records import RequestRecord


def prompt_tokens_check(records: Sequence[RequestRecord]) -> dict[str, Any] | None:
    """usage.prompt_tokens less the count the workload built (chat template included),
    over successful requests that have both; None where none has."""
    pairs = [
        (r.prompt_tokens, r.prompt_tokens_expected, r.prompt_tokens_expected_source)
        for r in records
        if r.ok and r.prompt_tokens_source == "usage"
    ]
    checked = [(usage, built, source) for usage, built, source in pairs if usage and built]
    if not checked:
        return None
    differences = [usage - built for usage, built, _ in checked]
    return {
        "n": len(checked),
        "sources": dict(Counter(source for _, _, source in checked)),
        "expected_mean": sum(built for _, built, _ in checked) / len(checked),
        "usage_mean": sum(usage for usage, _, _ in checked) / len(checked),
        "difference_min": min(differences),
        "difference_max": max(differences),
        "difference_mean": sum(differences) / len(differences),
        "within_1_share": sum(abs(d) <= 1 for d in differences) / len(differences),
    }


def by_turn(records: Sequence[RequestRecord]) -> dict[str, Any] | None:
    """Per turn of a multi-turn session: TTFT, prompt tokens and the cached share of them."""
    turns: dict[int, list[RequestRecord]] = defaultdict(list)
    for record in records:
        if record.turn is not None and record.ok:
            turns[record.turn].append(record)
    if not turns:
        return None
    figures = {}
    for turn, rows in sorted(turns.items()):
        prompt = [r.prompt_tokens for r in rows if r.prompt_tokens is not None]
        cached = [
            (r.cached_prompt_tokens, r.prompt_tokens)
            for r in rows
            if r.cached_prompt_tokens is not None and r.prompt_tokens
        ]
        figures[str(turn)] = {
            "n": len(rows),
            "ttft_ms": describe([r.ttft_ms for r in rows if r.ttft_ms is not None]),
            "prompt_tokens_mean": sum(prompt) / len(prompt) if prompt else None,
            "prefix_cache_hit_rate": (
                sum(c for c, _ in cached) / sum(p for _, p in cached) if cached else None
            ),
        }
    return figures


def workload_figures(records: Sequence[RequestRecord]) -> dict[str, Any]:
    return {"prompt_tokens_check": prompt_tokens_check(records), "by_turn": by_turn(records)}


def closing_note(summary: dict[str, Any]) -> str:
    """One line per level whose prompts were counted: how the server's count compared."""
    lines = []
    for level in summary.get("levels", []):
        check = (level.get("workload") or {}).get("prompt_tokens_check")
        if not check:
            continue
        sources = ", ".join(check["sources"])
        lines.append(
            f"level {level.get('level_index', 0) + 1}: prompt tokens of {check['n']} requests, "
            f"built ({sources}) {check['expected_mean']:.1f} vs usage {check['usage_mean']:.1f} "
            f"on average; usage - built from {check['difference_min']:+d} to "
            f"{check['difference_max']:+d}, {check['within_1_share']:.0%} within +-1"
        )
    return "\n".join(lines)
