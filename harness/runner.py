"""One job: provision, start, warm up, run the concurrency ladder, store, stop."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from harness.client.monitor import summarize_client
from harness.client.openai_api import Endpoint
from harness.client.processes import auto_processes, run_level_in_processes, run_until_signal
from harness.client.scheduler import LevelOutcome, LevelPlan, warm_up
from harness.config import BenchConfig, EngineConfig, machine_id
from harness.engines import Engine, EngineError, create_engine
from harness.engines.base import log_tail
from harness.environment import config_hash, machine_info, software_info
from harness.fit import predict_for_config
from harness.metrics import summarize_level
from harness.records import RequestRecord
from harness.report.table import run_table
from harness.resume import prepare_resume
from harness.store import SUMMARY_SCHEMA_VERSION, TABLE_FILE, TELEMETRY_FILE, RunWriter
from harness.telemetry.sampler import Sampler
from harness.workload import build_specs

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _level_name(mode: str, concurrency: int, rate: float | None) -> str:
    if mode == "rate":
        return f"rate={rate:g}/s"
    return f"{'burst' if mode == 'burst' else 'concurrency'}={concurrency}"


def level_status(records: list[RequestRecord], engine_alive: bool) -> str:
    ok = sum(r.ok for r in records)
    if not engine_alive:
        return "engine_died"
    if not records or ok == 0:
        return "failed"
    return "ok" if ok == len(records) else "partial"


class Job:
    """Holds the state of one job so that an interruption can still write it out."""

    def __init__(
        self, bench: BenchConfig, resolved: dict[str, Any], run_dir: Path, resume: bool = False
    ) -> None:
        self.bench = bench
        self.run_dir = run_dir
        self.engine: Engine = create_engine(bench.engine, bench.model, run_dir)
        previous, self.done_levels = prepare_resume(run_dir) if resume else ({}, set())
        self.writer = RunWriter(run_dir)
        self.machine = machine_id(bench.machine.label)
        self.summary: dict[str, Any] = {
            "schema_version": SUMMARY_SCHEMA_VERSION,
            "status": "running",
            "error": None,
            "started_at": _now(),
            "finished_at": None,
            "run": {
                "experiment": bench.experiment.name,
                "machine_id": self.machine,
                "engine": bench.engine.name,
                "engine_kind": bench.engine.kind,
                "model": bench.model.name,
                "quant": bench.model.quant,
                "workload": bench.workload.name,
                "engine_parallel": bench.engine.parallel,
                "engine_ctx_size": bench.engine.ctx_size,
                "config_hash": config_hash(resolved),
            },
            "levels": previous.get("levels", []),
        }
        if resume:
            self.summary["started_at"] = previous.get("started_at", self.summary["started_at"])
            self.summary["resumed_at"] = [*previous.get("resumed_at", []), _now()]
        self.environment: dict[str, Any] = {
            "machine": machine_info(self.machine),
            "software": software_info(),
            "seed": bench.seed,
            "config_hash": self.summary["run"]["config_hash"],
            "config": resolved,
        }
        self.sampler: Sampler | None = None

    def _write_environment(self, **extra: Any) -> None:
        self.environment.update(extra)
        self.writer.write_environment(self.environment)

    def run(self) -> dict[str, Any]:
        bench = self.bench
        self._write_environment()
        try:
            gpu_mode = bench.telemetry.gpu
            if not self.engine.on_this_machine and gpu_mode != "off":
                log.info(
                    "%s is not on this machine: its memory is not measured here",
                    self.engine.base_url,
                )
                gpu_mode = "off"
            elif engine_on_cpu(self.bench.engine) and gpu_mode == "auto":
                # a CPU engine's memory is its process tree's RSS, not the GPU's
                gpu_mode = "off"
            self.sampler = Sampler(
                self.run_dir / TELEMETRY_FILE,
                bench.telemetry.interval_ms,
                gpu_mode,
                self.engine.pids,
                bench.telemetry.process_rss,
            )
            baseline = self.sampler.baseline()
            self.summary["memory_baseline_mib"] = baseline  # before the engine started
            self.engine.preflight()  # fail fast (no GPU, no Docker, port taken) before pulls
            model_info = self.engine.provision()
            self.summary["predicted_memory"] = self._predict_memory(model_info)
            self._write_environment(model=model_info, memory_baseline_mib=baseline)
            log.info("starting %s (log: %s)", bench.engine.name, self.engine.log_path)
            self.engine.start()
            self.engine.wait_ready()
            self._write_environment(
                engine={
                    "name": bench.engine.name,
                    "kind": bench.engine.kind,
                    "base_url": self.engine.base_url,
                    "version": self.engine.version(),
                    "settings_in_effect": self.engine.settings(),
                    "settings_requested": self.engine.requested_settings(),
                }
            )
            self.sampler.start()
            self._run_levels()
            self.summary["status"] = "complete"
        except KeyboardInterrupt:
            self.summary["status"] = "interrupted"
            self.summary["error"] = "interrupted by the user (Ctrl-C / SIGTERM)"
            raise
        except EngineError as exc:
            self.summary["status"] = "failed"
            message = str(exc)
            if self.engine.log_path.exists() and "log" not in message:
                message += (
                    f"\nlast lines of {self.engine.log_path}:\n{log_tail(self.engine.log_path)}"
                )
            self.summary["error"] = message
            log.error("%s", message)
        except Exception as exc:  # unexpected: recorded as a failed run, never left "running"
            self.summary["status"] = "failed"
            self.summary["error"] = f"{type(exc).__name__}: {exc}"
            log.exception("the run failed")
        finally:
            self._finish()
        return self.summary

    def _predict_memory(self, model_info: dict[str, Any]) -> dict[str, Any]:
        """fit.py's prediction for this deployment, to stand beside the measured peak."""
        engine, gpus = self.bench.engine, self.environment["machine"].get("gpus") or []
        on_cpu = engine_on_cpu(engine) or not gpus
        path = model_info.get("path")
        try:
            prediction = predict_for_config(
                self.bench.model,
                engine.kind,
                engine.ctx_size,
                engine.parallel,
                gguf_path=Path(path) if path else None,
                kv_type=engine.kv_cache_type,
                device="cpu" if on_cpu else "gpu",
                gpu_total_mib=None if on_cpu else gpus[0].get("memory_total_mib"),
                gpu_util=engine.gpu_memory_utilization,
                flash_attn=engine.flash_attn != "off",
            )
        except Exception as exc:  # a model without known architecture: say so, measure on
            log.info("no memory prediction: %s", exc)
            return {"total_mib": None, "error": str(exc)}
        return prediction.to_dict()

    def _endpoint(self) -> Endpoint:
        workload = self.bench.workload
        api_key = None
        if self.bench.engine.api_key_env:
            api_key = os.environ.get(self.bench.engine.api_key_env)
        return Endpoint(
            base_url=self.engine.base_url,
            model=self.engine.served_model,
            api=workload.api,
            ignore_eos=workload.ignore_eos,
            temperature=workload.temperature,
            api_key=api_key,
        )

    def _run_levels(self) -> None:
        load = self.bench.load
        endpoint = self._endpoint()
        specs = build_specs(self.bench.workload)
        if load.warmup_requests:
            warm = run_until_signal(
                warm_up(
                    endpoint,
                    specs,
                    load.warmup_requests,
                    load.request_timeout_s,
                    keep_alive=self.bench.engine.keep_alive,
                )
            )
            if not any(r.ok for r in warm):
                raise EngineError(
                    f"every warm-up request failed; first error: {warm[0].error_type}: "
                    f"{warm[0].error_text}"
                )
        levels = load.levels()
        total = sum(load.requests_for_level(c) for c, _ in levels)
        next_id = 0
        with (
            logging_redirect_tqdm(),
            tqdm(total=total, unit="req", desc="benchmark", mininterval=0.5) as bar,
        ):
            for index, (concurrency, rate) in enumerate(levels):
                name = _level_name(load.mode, concurrency, rate)
                count = load.requests_for_level(concurrency)
                if index in self.done_levels:
                    log.info("level %d (%s) already finished: skipped (resume)", index + 1, name)
                    bar.update(count)
                    next_id += count
                    continue
                if not self.engine.alive():
                    raise EngineError(
                        f"the engine stopped before level {index + 1} ({name}); "
                        f"see {self.engine.log_path}"
                    )
                bar.set_postfix_str(name)
                self._run_level(endpoint, specs, index, concurrency, rate, count, next_id, bar)
                next_id += count

    def _run_level(self, endpoint, specs, index, concurrency, rate, count, first_id, bar) -> None:  # noqa: ANN001
        load = self.bench.load
        plan = LevelPlan(
            concurrency,
            count,
            load.max_duration_s,
            load.request_timeout_s,
            load.connect_timeout_s,
            keep_alive=self.bench.engine.keep_alive,
            ramp_up_s=load.ramp_up_s,
            mode=load.mode,
            rate_per_s=rate,
            arrival=load.arrival,
            seed=self.bench.seed + index,
            level_index=index,
        )
        processes = load.client_processes or auto_processes(plan)
        records: list[RequestRecord] = []

        def on_record(record: RequestRecord) -> None:
            records.append(record)
            self.writer.append_record(record)
            bar.update(1)

        metrics_before = self.engine.scrape()
        status = "interrupted"
        outcome: LevelOutcome | None = None
        try:
            outcome = run_level_in_processes(endpoint, specs, plan, on_record, first_id, processes)
            status = level_status(records, self.engine.alive())
        finally:
            self._record_level(records, plan, status, metrics_before, outcome)

    def _record_level(
        self,
        records: list[RequestRecord],
        plan: LevelPlan,
        status: str,
        metrics_before: dict[str, float],
        outcome: LevelOutcome | None,
    ) -> None:
        load = self.bench.load
        level = summarize_level(
            records,
            plan.concurrency,
            ttft_target_ms=load.goodput_ttft_ms,
            tpot_target_ms=load.goodput_tpot_ms,
        )
        level.update(
            status=status,
            level_index=plan.level_index,
            mode=plan.mode,
            rate_per_s=plan.rate_per_s,
            stopped_by_deadline=outcome.stopped_by_deadline if outcome else None,
        )
        if records and self.sampler:
            start = min(r.start_mono_s for r in records)
            end = max(r.end_mono_s for r in records)
            level.update(self.sampler.peak(start, end))
        else:
            level.update(peak_memory_mib=None, peak_memory_kind=None)
        level["predicted_memory_mib"] = (self.summary.get("predicted_memory") or {}).get(
            "total_mib"
        )
        client = summarize_client(outcome.client) if outcome else None
        level["client"] = client
        level["client_flags"] = client["flags"] if client else []
        if level["client_flags"]:
            log.warning(
                "level %s: the client may have distorted the figures: %s",
                plan.level_index + 1,
                ", ".join(level["client_flags"]),
            )
        metrics_after = self.engine.scrape() if self.engine.alive() else {}
        level["engine_metrics"] = {"before": metrics_before, "after": metrics_after}
        self.summary["levels"].append(level)
        self.summary["levels"].sort(key=lambda lv: lv.get("level_index", 0))
        self.writer.write_summary(self.summary)

    def _finish(self) -> None:
        if self.sampler:
            self.sampler.stop()
        if self.bench.engine.keep_running:
            log.info("engine left running at %s (engine.keep_running=true)", self.engine.base_url)
            try:
                self.engine.save_log()
            except Exception as exc:  # the run's outcome matters more than its engine log
                log.error("saving the engine log failed: %s", exc)
        else:
            try:
                self.engine.stop()
            except Exception as exc:  # stopping must not hide the run's own outcome
                log.error("stopping the engine failed: %s", exc)
        self.summary["finished_at"] = _now()
        self.writer.write_summary(self.summary)
        self.writer.write_text(TABLE_FILE, run_table(self.summary))
        self.writer.close()


def engine_on_cpu(engine: EngineConfig) -> bool:
    """The embedded llama.cpp server, or llama.cpp with no layer offloaded: its memory is
    its process tree's, whatever GPU the machine has."""
    if engine.kind == "llamacpp_embedded" or engine.launcher == "embedded":
        return True
    return engine.kind == "llamacpp" and engine.n_gpu_layers == 0


def run_job(
    bench: BenchConfig, resolved: dict[str, Any], run_dir: Path, resume: bool = False
) -> dict[str, Any]:
    return Job(bench, resolved, run_dir, resume).run()
