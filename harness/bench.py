"""Entry point of a benchmark job: `python -m harness.bench [hydra overrides]`."""

from __future__ import annotations

import logging
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from harness.capacity import capacity_line
from harness.client.limits import raise_open_files_limit
from harness.cluster import sweep_batch
from harness.cluster.placement import describe as describe_placement
from harness.config import ConfigError, register, to_bench_config
from harness.console import (
    CAUSES,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    exit_status,
    stop_detail,
    stop_line,
)
from harness.environment import config_hash
from harness.preflight import PreflightError, check_results_dir, results_from_argv
from harness.report.table import run_table
from harness.resume import find_previous_run
from harness.runner import Job, stop_signal
from harness.store import SUMMARY_FILE
from harness.workload.check import closing_note

register()
sweep_batch.register()
log = logging.getLogger("harness")


def _sigterm_as_interrupt(*_: Any) -> None:
    raise KeyboardInterrupt("stopped by SIGTERM")


# Set once Hydra has composed a job's config and called main(): before that, Hydra's own
# exit code 1 means the overrides did not compose (unknown option or key, wrong type).
_composed = False


# conf/ beside the package, found from this file so that the `llm-bench` command (whose
# calling file is its script in .venv/bin) reads the same configs as python -m harness.bench
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> str:
    global _composed
    _composed = True
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        bench = to_bench_config(cfg)
    except ConfigError as exc:
        # Nothing was measured: leave no empty run directory behind.
        if not (run_dir / SUMMARY_FILE).exists():
            _discard(run_dir, Path(str(cfg.get("results") or run_dir.parent)))
        print(f"config error: {exc}", file=sys.stderr)
        if multirun:
            return "config_error"
        sys.exit(2)
    try:
        check_results_dir(Path(bench.results), bench.min_free_disk_mib)
    except PreflightError as exc:
        _discard(run_dir, Path(bench.results))
        print(f"cannot store results: {exc}", file=sys.stderr)
        if multirun:
            return "preflight_error"
        sys.exit(2)
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    log.info("placement: %s", describe_placement())
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(resolved, dict)
    previous = find_previous_run(run_dir, config_hash(resolved)) if bench.resume else None
    if previous is not None:
        run_dir = _continue_in(previous, run_dir)
    job = Job(bench, resolved, run_dir, resume=previous is not None)
    try:
        summary = job.run()
    except KeyboardInterrupt:
        print(stop_line(job.summary, run_dir, overrides()), file=sys.stderr)
        sys.exit(exit_status(job.summary))
    if bench.print_table:
        print()
        print(run_table(summary))
    if note := closing_note(summary):
        print(note)
    print(f"run directory: {run_dir}")
    if line := capacity_line(summary):
        print(line)
    if summary["status"] != "complete":
        if detail := stop_detail(summary):
            print(detail, file=sys.stderr)
        print(stop_line(summary, run_dir, overrides()), file=sys.stderr)
        if not multirun:
            sys.exit(exit_status(summary))
        if bench.on_failure == "stop":
            raise SweepStopped(f"job {run_dir.name} {summary['status']} (on_failure=stop)")
    return summary["status"]


def _discard(run_dir: Path, results: Path) -> None:
    """Nothing was measured: the run directory goes, and the folders above it that Hydra
    made for it and that hold nothing else, up to the results folder itself."""
    shutil.rmtree(run_dir, ignore_errors=True)
    root = results.resolve()
    for folder in run_dir.resolve().parents:
        if root not in (folder, *folder.parents):
            return
        try:
            folder.rmdir()  # only an empty one
        except OSError:
            return


class SweepStopped(RuntimeError):
    """Raised in a sweep with on_failure=stop: Hydra stops launching further jobs."""


def _continue_in(previous: Path, fresh: Path) -> Path:
    """resume: go on in the previous run directory; the fresh one Hydra made goes away."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
            handler.close()
            appended = logging.FileHandler(previous / "bench.log")
            appended.setFormatter(handler.formatter)
            root.addHandler(appended)
    shutil.rmtree(fresh, ignore_errors=True)
    log.info("resuming %s", previous)
    print(f"resuming {previous}")
    return previous


def overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task)


def cli() -> None:
    """Refuse an unwritable store before Hydra tries to make the run directory in it."""
    try:
        check_results_dir(results_from_argv(sys.argv[1:]), 0)
    except PreflightError as exc:
        print(f"cannot store results: {exc}", file=sys.stderr)
        sys.exit(2)
    raise_open_files_limit()  # the client's own limit, before any level
    logging.raiseExceptions = False  # a full disk stops the run, not with logging tracebacks
    try:
        main()
    except KeyboardInterrupt as exc:  # before the run started: nothing to keep
        print(f"{CAUSES[stop_signal(exc)]} before the run started", file=sys.stderr)
        sys.exit(EXIT_SIGTERM if stop_signal(exc) == "SIGTERM" else EXIT_SIGINT)
    except SystemExit as exc:
        if exc.code == 1 and not _composed:
            sys.exit(2)  # a config error, like every other refusal before anything starts
        raise


if __name__ == "__main__":
    cli()
