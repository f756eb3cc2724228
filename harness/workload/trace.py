"""Trace replay: requests at a trace's own times, of its input and output lengths.

Two layouts: JSONL as in Mooncake's traces (`timestamp` in ms, `input_length`,
`output_length`, optional `hash_ids`: one id per block of trace_block_tokens, the same id
meaning the same block of text) and CSV as in BurstGPT (`Timestamp` in s,
`Request tokens`, `Response tokens`). Past its end a trace starts again, one trace span
later, with fresh block texts, so nothing is sent twice.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from harness.client.endpoint import RequestSpec
from harness.config import WorkloadConfig
from harness.workload.synthetic import spec_of
from harness.workload.tokens import TokenCounter, WorkloadError
from harness.workload.words import opening, seeded_words

BUNDLED_TRACE = Path(__file__).parent / "traces" / "seeded.jsonl"


@dataclass(frozen=True)
class TraceEntry:
    time_s: float
    input_tokens: int
    output_tokens: int
    hash_ids: tuple[int, ...] = field(default=())


def read_trace(path: Path) -> list[TraceEntry]:
    """A trace's entries in time order."""
    if not path.is_file():
        raise WorkloadError(f"workload.trace_path={str(path)!r} is not a file")
    try:
        if path.suffix == ".csv":
            with path.open(newline="") as handle:
                entries = [
                    TraceEntry(
                        float(row["Timestamp"]),
                        int(float(row["Request tokens"])),
                        int(float(row["Response tokens"])),
                    )
                    for row in csv.DictReader(handle)
                ]
        else:
            entries = []
            for line in path.read_bytes().splitlines():
                if line.strip():
                    item = orjson.loads(line)
                    entries.append(
                        TraceEntry(
                            item["timestamp"] / 1000.0,
                            int(item["input_length"]),
                            int(item["output_length"]),
                            tuple(item.get("hash_ids") or ()),
                        )
                    )
    except (KeyError, ValueError, TypeError) as exc:
        raise WorkloadError(f"{path}: not a Mooncake JSONL or BurstGPT CSV trace ({exc})") from exc
    if not entries:
        raise WorkloadError(f"{path} holds no requests")
    return sorted(entries, key=lambda entry: entry.time_s)


class _Blocks:
    """The text of each (pass, hash id) block: seeded, made once, shared by every request
    that names it."""

    def __init__(self, cfg: WorkloadConfig, counter: TokenCounter) -> None:
        self.cfg, self.counter = cfg, counter
        self.texts: dict[tuple[int, int], list[str]] = {}

    def words(self, replay: int, hash_id: int) -> list[str]:
        key = (replay, hash_id)
        if key not in self.texts:
            rng = random.Random(f"trace-block-{self.cfg.seed}-{replay}-{hash_id}")
            self.texts[key] = seeded_words(rng, self.cfg.trace_block_tokens, self.counter.words)
        return self.texts[key]


def trace_specs(cfg: WorkloadConfig, count: int, counter: TokenCounter) -> list[RequestSpec]:
    """Request i replays entry i % len(trace); its prompt is its blocks' text and its own
    seeded words after them, to the entry's input length, its own opening at the end."""
    entries = read_trace(Path(cfg.trace_path).expanduser() if cfg.trace_path else BUNDLED_TRACE)
    start, span = entries[0].time_s, entries[-1].time_s - entries[0].time_s
    period = span + (span / (len(entries) - 1) if len(entries) > 1 else 1.0)
    blocks, template = _Blocks(cfg, counter), counter.template_tokens[False] or 0
    specs = []
    for index in range(count):
        replay, entry = divmod(index, len(entries))
        entry = entries[entry]
        suffix = opening(index)
        budget = max(1, entry.input_tokens - template - counter.count(suffix))
        words = [w for h in entry.hash_ids for w in blocks.words(replay, h)][:budget]
        own = random.Random(f"trace-{cfg.seed}-{index}")  # beyond its blocks, its own words
        words += seeded_words(own, budget - len(words), counter.words)
        prompt = " ".join([*words, suffix])
        send_at_s = entry.time_s - start + replay * period
        specs.append(spec_of(counter, prompt, entry.output_tokens, send_at_s=send_at_s))
    return specs
