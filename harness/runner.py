"""One job: provision, start, warm up, run the concurrency ladder, store, stop.

The job only sequences its parts: the telemetry policy (`telemetry.policy`), the level
runner (`levels`), the summary (`summary`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from harness.ceiling.run import JobCeilings
from harness.client.limits import ClientLimitError
from harness.client.openai_api import Endpoint, RequestSpec
from harness.config import BenchConfig, machine_id
from harness.engines import Engine, EngineError, create_engine
from harness.engines.base import log_tail
from harness.engines.weights import finish
from harness.environment import config_hash, machine_info, software_info
from harness.levels import LevelRunner, level_name, warm_up_or_fail
from harness.records import RequestRecord
from harness.report.table import run_table
from harness.resume import prepare_resume
from harness.schedule import Schedule, count_changes, job_schedule
from harness.stops import EngineDied, ServerGone, check_level_end, stop_signal
from harness.store import TABLE_FILE, TELEMETRY_FILE, RunWriter, StoreFull
from harness.summary import add_level, new_summary, now_utc, predicted_memory, set_weights
from harness.telemetry.policy import (
    engine_on_cpu,
    follow_launcher,
    follow_read_back,
    gpu_mode_for,
)
from harness.telemetry.sampler import Sampler
from harness.telemetry.series import SERIES_FILE, LevelSeries
from harness.workload import build_specs, make_counter

__all__ = ["EngineDied", "Job", "ServerGone", "engine_on_cpu", "run_job", "stop_signal"]

log = logging.getLogger(__name__)


FAILURES = {StoreFull: "disk_full", ClientLimitError: "client_limit", ServerGone: "server_gone"}


class Job:
    """One deployment: provision, start, warm up, run the levels, store, stop. Holds the
    state of the job so that an interruption can still write it out."""

    def __init__(
        self, bench: BenchConfig, resolved: dict[str, Any], run_dir: Path, resume: bool = False
    ) -> None:
        self.bench = bench
        self.run_dir = run_dir
        self.engine: Engine = create_engine(bench.engine, bench.model, run_dir)
        previous, self.done_levels = prepare_resume(run_dir) if resume else ({}, set())
        self.writer = RunWriter(run_dir)
        self.machine = machine_id(bench.machine.label)
        self.summary = new_summary(
            bench, self.machine, config_hash(resolved), previous if resume else None
        )
        self.environment: dict[str, Any] = {
            "machine": machine_info(self.machine),
            "software": software_info(),
            "seed": bench.seed,
            "config_hash": self.summary["run"]["config_hash"],
            "config": resolved,
        }
        self.sampler: Sampler | None = None
        self.schedule: Schedule | None = None
        self.series: LevelSeries | None = None
        self.ceilings: JobCeilings | None = None

    def _write_environment(self, **extra: Any) -> None:
        self.environment.update(extra)
        self.writer.write_environment(self.environment)

    def run(self) -> dict[str, Any]:
        try:
            self._write_environment()
            self.writer.write_summary(self.summary)  # so that resume=true finds the run
            self._start_engine()
            self._run_levels()
            self.summary["status"] = "complete"
        except KeyboardInterrupt as exc:
            self.summary["status"] = "interrupted"
            self.summary["stopped_by"] = stop_signal(exc)
            self.summary["error"] = f"stopped by {stop_signal(exc)}"
            raise
        except (StoreFull, ClientLimitError, ServerGone) as exc:
            self.summary["status"] = "failed"
            self.summary["failure"] = FAILURES[type(exc)]
            self.summary["error"] = str(exc)
        except EngineError as exc:
            self._fail_with_engine_error(exc)
        except Exception as exc:  # unexpected: recorded as a failed run, never left "running"
            self.summary["status"] = "failed"
            self.summary["error"] = f"{type(exc).__name__}: {exc}"
            log.exception("the run failed")
        finally:
            self._finish()
        return self.summary

    def _start_engine(self) -> None:
        bench = self.bench
        gpu_mode = gpu_mode_for(bench.engine, self.engine, bench.telemetry.gpu)
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
        follow_launcher(self.sampler, self.engine)
        model_info = self.engine.provision()
        gpus = self.environment["machine"].get("gpus") or []
        self.summary["predicted_memory"] = predicted_memory(bench, model_info, gpus)
        on_gpu = bool(gpus) and not engine_on_cpu(bench.engine)
        self.ceilings = JobCeilings.find(
            bench, model_info, on_gpu, self.machine, self.engine.on_this_machine
        )
        self.summary["ceiling"] = self.ceilings.record()
        self._write_environment(
            model=model_info, memory_baseline_mib=baseline, ceilings=self.ceilings.ceilings
        )
        log.info("starting %s (log: %s)", bench.engine.name, self.engine.log_path)
        self.engine.start()
        self.engine.wait_ready()
        follow_read_back(self.sampler, self.engine)
        weights = finish(self.engine.served_weights(model_info), bench.model.quant)
        set_weights(self.summary, weights)  # the run's quant is read back, never copied
        self._write_environment(weights=weights)
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

    def _fail_with_engine_error(self, exc: EngineError) -> None:
        self.summary["status"] = "failed"
        if isinstance(exc, EngineDied) or not self.engine.alive():
            self.summary["failure"] = "engine_died"
        message = str(exc)
        if self.engine.log_path.exists() and "log" not in message:
            message += f"\nlast lines of {self.engine.log_path}:\n{log_tail(self.engine.log_path)}"
        self.summary["error"] = message
        log.error("%s", message)

    def _endpoint(self) -> Endpoint:
        workload = self.bench.workload
        api_key = None
        if self.bench.engine.api_key_env:
            api_key = os.environ.get(self.bench.engine.api_key_env)
        api = workload.api
        if self.bench.engine.ollama_native_api:
            api = "ollama_chat" if workload.api == "chat" else "ollama_generate"
        return Endpoint(
            base_url=self.engine.base_url,
            model=self.engine.served_model,
            api=api,
            ignore_eos=workload.ignore_eos,
            temperature=workload.temperature,
            api_key=api_key,
        )

    def _schedule(self, endpoint: Endpoint) -> tuple[list[RequestSpec], Schedule]:
        """The warm-up's specs and the job's levels: one distinct prompt per request of the
        job, in the order the job sends them (a resumed job gives each level the same);
        multi-turn sessions whole. Prompt tokens are counted by the engine's tokenizer
        where the workload asks for it."""
        workload = self.bench.workload
        if not self.bench.capacity.enabled:
            for line in count_changes(self.bench):
                log.warning("%s", line)
        counter = make_counter(
            workload, endpoint, (self.environment.get("model") or {}).get("path")
        )
        return job_schedule(self.bench, lambda count: build_specs(workload, count, counter))

    def _on_level(self, level: dict[str, Any]) -> None:
        if self.ceilings is not None:
            self.ceilings.apply(level)
        add_level(self.summary, level)
        self._tell_schedule(level)
        try:
            self.writer.write_summary(self.summary)
        except StoreFull:
            if level.get("status") != "interrupted":  # else the level's own cause goes on
                raise

    def _tell_schedule(self, level: dict[str, Any]) -> None:
        """A capacity search picks its next probe from this one and keeps its result."""
        if self.schedule is None:
            return
        self.schedule.on_level(level)
        if (result := self.schedule.result()) is not None:
            self.summary["capacity"] = result

    def _run_levels(self) -> None:
        endpoint = self._endpoint()
        warm_specs, self.schedule = self._schedule(endpoint)
        if warm_specs:
            warm_up_or_fail(self.bench, endpoint, warm_specs)
        mode = self.bench.load.mode
        stored = {lv.get("level_index"): lv for lv in self.summary["levels"]}
        with (
            logging_redirect_tqdm(),
            tqdm(total=self.schedule.total, unit="req", desc="benchmark") as bar,
        ):

            def on_record(record: RequestRecord) -> None:
                self.writer.append_record(record)
                bar.update(1)

            predicted = (self.summary.get("predicted_memory") or {}).get("total_mib")
            interval_s = self.bench.telemetry.engine_metrics_interval_s
            self.series = LevelSeries(self.run_dir / SERIES_FILE, self.engine.scrape, interval_s)
            runner = LevelRunner(
                self.bench,
                self.engine,
                endpoint,
                self.sampler,
                on_record,
                self._on_level,
                predicted,
                self.series,
            )
            for level in self.schedule:
                name = level_name(mode, level.concurrency, level.rate)
                if level.index in self.done_levels:
                    log.info(
                        "level %d (%s) already finished: skipped (resume)", level.index + 1, name
                    )
                    bar.update(level.count)
                    self._tell_schedule(stored[level.index])
                    continue
                if not self.engine.alive():
                    raise EngineDied(
                        f"the engine stopped before level {level.index + 1} ({name}); "
                        f"see {self.engine.log_path}"
                    )
                bar.set_postfix_str(name)
                runner.run(level)
                check_level_end(self.summary, self.engine, f"level {level.index + 1} ({name})")

    def _finish(self) -> None:
        if self.sampler:
            self.sampler.stop()
        if self.series:
            self.series.close()
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
        self.summary["finished_at"] = now_utc()
        try:
            self.writer.write_summary(self.summary)
            self.writer.write_text(TABLE_FILE, run_table(self.summary))
        except OSError as exc:  # a full disk: the records stay whole, resume rebuilds it
            self.summary["summary_not_written"] = exc.strerror or str(exc)
            log.error("writing the summary failed: %s", exc)
        finally:
            self.writer.close()


def run_job(
    bench: BenchConfig, resolved: dict[str, Any], run_dir: Path, resume: bool = False
) -> dict[str, Any]:
    return Job(bench, resolved, run_dir, resume).run()
