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

from harness.config import ConfigError, register, to_bench_config
from harness.report.table import run_table
from harness.runner import run_job
from harness.store import SUMMARY_FILE

register()
log = logging.getLogger("harness")


def _sigterm_as_interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> str:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        bench = to_bench_config(cfg)
    except ConfigError as exc:
        # Nothing was measured: leave no empty run directory behind.
        if not (run_dir / SUMMARY_FILE).exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        print(f"config error: {exc}", file=sys.stderr)
        if multirun:
            return "config_error"
        sys.exit(2)
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(resolved, dict)
    summary = run_job(bench, resolved, run_dir)
    if bench.print_table:
        print()
        print(run_table(summary))
    print(f"run directory: {run_dir}")
    if summary["status"] != "complete":
        print(f"run {summary['status']}: {summary.get('error')}", file=sys.stderr)
        if not multirun:
            sys.exit(1)
    return summary["status"]


if __name__ == "__main__":
    main()
