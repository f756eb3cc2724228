"""A store of real-shaped runs for the report tests, made from one reference run.

The reference run (tests/data/store) is a real, untouched run of the embedded llama.cpp
engine (`python -m harness.bench load.requests_per_level=4`: 4, 4, 8 and 16 requests at
concurrency 1, 2, 4 and 8), stored before levels carried steady-window throughput, output
lengths, the prefix cache and flags. Variants scale its speed by a known factor, so every
ratio the report shows is known in advance: throughput x factor, latencies / factor.
Current runs (write_current_run) are its records in today's shape, each level summarised
by harness.metrics as a run would be now.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from harness.metrics import CLIENT_RECORD_FLAGS, summarize_level
from harness.records import RequestRecord

REFERENCE_STORE = Path(__file__).resolve().parents[1] / "data" / "store"
REFERENCE_RUN = (
    REFERENCE_STORE / "default" / "vm" / "llamacpp-embedded__gemma3-270m__20261125T191927779795Z"
)
THROUGHPUT_KEYS = (
    "output_tokens_per_s_per_request",
    "decode_tokens_per_s_per_request",
    "aggregate_output_tokens_per_s",
    "requests_per_s",
)
LATENCY_KEYS = ("ttft_ms", "ttfb_ms", "itl_ms", "tpot_ms", "e2e_ms")
H100 = "NVIDIA H100 80GB HBM3"


def _scaled(value: Any, factor: float) -> Any:
    if isinstance(value, dict):
        return {k: (v if k == "n" or v is None else v * factor) for k, v in value.items()}
    return None if value is None else value * factor


def _level(level: dict[str, Any], speed: float, memory: dict[str, Any]) -> dict[str, Any]:
    level = copy.deepcopy(level)
    for key in THROUGHPUT_KEYS:
        level[key] = _scaled(level[key], speed)
    for key in LATENCY_KEYS:
        level[key] = _scaled(level[key], 1 / speed)
    level["wall_time_s"] /= speed
    level["peak_memory_mib"] *= memory.get("peak_factor", 1.0)
    level["peak_memory_kind"] = memory.get("kind", level["peak_memory_kind"])
    if "predicted_mib" in memory:
        level["predicted_memory_mib"] = memory["predicted_mib"]
        level["client_flags"] = []
    return level


def _record(line: str, speed: float) -> str:
    record = json.loads(line)
    for key in ("ttft_ms", "ttfb_ms", "e2e_ms"):
        record[key] /= speed
    record["chunk_times_ms"] = [t / speed for t in record["chunk_times_ms"]]
    record["end_mono_s"] = record["start_mono_s"] + (record["e2e_ms"] / 1000.0)
    return json.dumps(record) + "\n"


def write_run(
    results: Path,
    machine_id: str,
    engine: str,
    stamp: str,
    *,
    speed: float = 1.0,
    parallel: int = 4,
    concurrency: tuple[int, ...] = (1, 2, 4, 8),
    status: str = "complete",
    level_status: dict[int, str] | None = None,
    gpu: str | None = None,
    memory: dict[str, Any] | None = None,
    machine_label: str | None = None,
    engine_config: dict[str, Any] | None = None,
) -> Path:
    """A run dir like the reference one, for another machine/engine/settings and speed."""
    summary = json.loads((REFERENCE_RUN / "summary.json").read_text())
    environment = json.loads((REFERENCE_RUN / "environment.json").read_text())
    kind = engine.replace("-", "_")
    summary.update(
        status=status,
        started_at=f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}"
        f":{stamp[11:13]}:{stamp[13:15]}+00:00",
    )
    summary["run"].update(
        machine_id=machine_id, engine=engine, engine_kind=kind, engine_parallel=parallel
    )
    summary["levels"] = [
        _level(level, speed, memory or {})
        for level in summary["levels"]
        if level["concurrency"] in concurrency
    ]
    for level in summary["levels"]:
        level["status"] = (level_status or {}).get(level["concurrency"], "ok")
    environment["machine"].update(machine_id=machine_id, hostname=machine_id)
    environment["machine"]["gpus"] = [{"index": 0, "name": gpu}] if gpu else []
    environment["config"]["machine"]["label"] = machine_label
    environment["config"]["engine"].update(engine_config or {})
    run_dir = results / "default" / machine_id / f"{engine}__gemma3-270m__{stamp}"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (run_dir / "environment.json").write_text(json.dumps(environment, indent=2) + "\n")
    config = (REFERENCE_RUN / ".hydra" / "config.yaml").read_text()
    (run_dir / ".hydra" / "config.yaml").write_text(config.replace("llamacpp-embedded", engine))
    lines = (REFERENCE_RUN / "requests.jsonl").read_text().splitlines()
    (run_dir / "requests.jsonl").write_text(
        "".join(
            _record(line, speed) for line in lines if json.loads(line)["concurrency"] in concurrency
        )
    )
    return run_dir


def build_store(results: Path) -> Path:
    """Two machines x two engines, plus a superseded run, an interrupted one, a broken one.

    vm: llamacpp-embedded (speed 1; an older run at speed 0.5 it supersedes), ollama
    (speed 1.5), llamacpp-embedded parallel=1 interrupted after levels 1 and 2.
    gpu-box (labelled "H100 box"): the same two cells at twice the vm's speed, GPU memory
    ten times the vm's RSS. A half-written run dir on vm is skipped.
    """
    write_run(
        results, "vm", "llamacpp-embedded", "20261124T100000000000Z", speed=0.5, concurrency=(1, 2)
    )
    write_run(results, "vm", "llamacpp-embedded", "20261125T191927779795Z")
    write_run(
        results,
        "vm",
        "ollama",
        "20261125T030000000000Z",
        speed=1.5,
        memory={"predicted_mib": 600.0},
    )
    write_run(
        results,
        "vm",
        "llamacpp-embedded",
        "20261125T040000000000Z",
        parallel=1,
        concurrency=(1, 2),
        status="interrupted",
        level_status={2: "interrupted"},
    )
    gpu_memory = {"kind": "gpu", "peak_factor": 10.0, "predicted_mib": 5000.0}
    for engine, speed in (("llamacpp-embedded", 2.0), ("ollama", 3.0)):
        write_run(
            results,
            "gpu-box",
            engine,
            "20261125T050000000000Z",
            speed=speed,
            gpu=H100,
            memory=gpu_memory,
            machine_label="H100 box",
        )
    broken = results / "default" / "vm" / "ollama__gemma3-270m__20261125T060000000000Z"
    broken.mkdir(parents=True)
    (broken / "summary.json").write_text('{"schema_version": 1, "status": "runn')
    return results


SHORT_OUTPUT_TOKENS = 40  # where a level stops early: half its requests end here
SYNTHETIC = {
    "name": "synthetic",
    "kind": "synthetic",
    "api": "chat",
    "max_tokens": 64,
    "ignore_eos": True,
    "prompt_tokens": 128,
    "prompt_tokens_stddev": 0.0,
    "output_tokens_stddev": 0.0,
    "shared_prefix_tokens": 0,
}


def _current_record(
    record: RequestRecord,
    *,
    wait_ms: float,
    prompt_tokens: int,
    cached_prompt_tokens: int | None,
    stop_early: bool,
    tokens_per_chunk: int,
) -> RequestRecord:
    """A reference record as the client records one now: due and on-wire instants, the
    max_tokens it asked for, the cached prompt tokens the server said (None: it did not)."""
    record.on_wire = True
    record.due_mono_s = record.start_mono_s - wait_ms / 1000.0
    record.max_tokens = SYNTHETIC["max_tokens"]
    record.prompt_tokens = prompt_tokens
    record.cached_prompt_tokens = cached_prompt_tokens
    if stop_early:
        record.chunk_times_ms = record.chunk_times_ms[:SHORT_OUTPUT_TOKENS]
        record.output_tokens = SHORT_OUTPUT_TOKENS
        record.finish_reason = "stop"
        record.end_mono_s = record.start_mono_s + record.chunk_times_ms[-1] / 1000.0
    # several tokens per chunk: the server sends every n-th token's chunk only
    record.chunk_times_ms = record.chunk_times_ms[tokens_per_chunk - 1 :: tokens_per_chunk]
    record.ttft_ms = record.ttfb_ms = record.chunk_times_ms[0]
    return record


def write_current_run(
    results: Path,
    machine_id: str,
    engine: str,
    stamp: str,
    *,
    speed: float = 1.0,
    workload: dict[str, Any] | None = None,
    version: dict[str, Any] | None = None,
    cached_prompt_tokens: int | None = None,
    short_at: tuple[int, ...] = (),
    tokens_per_chunk: int = 1,
    wait_ms: dict[int, float] | None = None,
    **options: Any,
) -> Path:
    """A run in the shape harness.levels writes today (every level summarised from its
    records by summarize_level), of a synthetic workload (SYNTHETIC updated by `workload`).
    Half the requests of the levels in `short_at` stop early; `wait_ms` is the client's
    wait per concurrency (0.2 ms elsewhere)."""
    run_dir = write_run(results, machine_id, engine, stamp, speed=speed, **options)
    shape = {**SYNTHETIC, **(workload or {})}
    environment = json.loads((run_dir / "environment.json").read_text())
    environment["config"]["workload"] = shape
    environment["engine"] = {"name": engine, "kind": engine.replace("-", "_"),
                             "version": version or {}}  # fmt: skip
    (run_dir / "environment.json").write_text(json.dumps(environment, indent=2) + "\n")
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(environment["config"]))
    records = []
    for line in (run_dir / "requests.jsonl").read_text().splitlines():
        record = RequestRecord.from_json_dict(json.loads(line))
        stop_early = record.concurrency in short_at and record.request_id % 2 == 0
        wait = (wait_ms or {}).get(record.concurrency, 0.2)
        records.append(
            _current_record(
                record,
                wait_ms=wait,
                prompt_tokens=shape["prompt_tokens"],
                cached_prompt_tokens=cached_prompt_tokens,
                stop_early=stop_early,
                tokens_per_chunk=tokens_per_chunk,
            )  # fmt: skip
        )
    (run_dir / "requests.jsonl").write_text(
        "".join(json.dumps(record.to_json_dict()) + "\n" for record in records)
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["run"]["workload"] = shape["name"]
    for level in summary["levels"]:
        mine = [r for r in records if r.concurrency == level["concurrency"]]
        level.update(
            summarize_level(
                mine, level["concurrency"], level["wall_time_s"], fixed_lengths=shape["ignore_eos"]
            )  # fmt: skip
        )
        # as harness.levels files them: the client's own flags beside its CPU and loop lag
        from_records = [flag for flag in level["flags"] if flag in CLIENT_RECORD_FLAGS]
        level["client_flags"] = (level["client"].get("flags") or []) + from_records
        level["flags"] = [flag for flag in level["flags"] if flag not in CLIENT_RECORD_FLAGS]
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return run_dir


def add_current_runs(results: Path) -> Path:
    """Two current vLLM runs on vm that differ only in prompt length (so two series):

    prompt 128 at 3x the reference speed, half its requests at concurrency 8 stopping at
    40 tokens (flagged short_outputs), the client waiting 2 ms there (flagged client_wait),
    the engine saying nothing of its prefix cache; prompt 512 at 2x, two tokens per chunk
    (flagged multi_token_chunks), 128 of each prompt's tokens cached (hit rate 0.25).
    """
    vllm = {"version": {"engine": "vllm", "version": "0.11.0"}, "memory": {"kind": "gpu"}}
    write_current_run(results, "vm", "vllm", "20261126T010000000000Z", speed=3.0,
                      short_at=(8,), wait_ms={8: 2.0}, **vllm)  # fmt: skip
    write_current_run(results, "vm", "vllm", "20261126T020000000000Z", speed=2.0,
                      workload={"prompt_tokens": 512}, cached_prompt_tokens=128,
                      tokens_per_chunk=2, **vllm)  # fmt: skip
    return results
