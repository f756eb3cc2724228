"""Every run of a store in one tidy long DataFrame: one row per run x level x metric statistic.

Each run's rows come from harness.report.run_files. Runs whose files cannot be read
(half-written, hand-edited) are skipped with a SkippedRunWarning, never fatal.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.report.cells import series_labels
from harness.report.run_files import LEVEL_COLUMNS, RUN_COLUMNS, VALUE_COLUMNS, run_rows
from harness.store import iter_run_dirs, read_records

COLUMNS = (*RUN_COLUMNS, *LEVEL_COLUMNS, *VALUE_COLUMNS)
INTEGER_COLUMNS = ("engine_parallel", "engine_ctx_size", "level_index", "concurrency")

# Columns of level_table that the tables and figures read.
PER_REQUEST = "output_tokens_per_s_per_request.mean"
STEADY = "steady_output_tokens_per_s.value"
AGGREGATE = "aggregate_output_tokens_per_s.value"  # over the level's whole wall time
PEAK = "peak_memory_mib.value"
PREDICTED = "predicted_memory_mib.value"
SENT = "requests_sent.value"
FAILED = "requests_failed.value"
# Which figure the aggregate tok/s shown is: the steady window's, or where a run did not
# record one (an older run, or a level that never had all its workers busy) the whole level's.
STEADY_WINDOW, WHOLE_LEVEL = "steady window", "whole level"


class SkippedRunWarning(UserWarning):
    """A run directory whose files could not be read; the report goes on without it."""


class EmptyStoreError(Exception):
    """The store holds no run with a finished level."""


@dataclass(frozen=True)
class Store:
    results: Path  # the store root; run_path in the frame is relative to it
    frame: pd.DataFrame
    skipped: tuple[tuple[str, str], ...]  # (run path, reason)


def load_store(results: Path, experiment: str | None = None) -> Store:
    """Read every run under `results` (or under one experiment of it) into a Store."""
    results = Path(results)
    root = results / experiment if experiment else results
    run_dirs = list(iter_run_dirs(root)) if root.is_dir() else []
    if not run_dirs:
        raise EmptyStoreError(f"no runs found under {root}: run `make bench` first")
    rows: list[dict[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    for run_dir in run_dirs:
        try:
            rows.extend(run_rows(run_dir, results))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            skipped.append((str(run_dir), reason))
            warnings.warn(f"skipped {run_dir}: {reason}", SkippedRunWarning, stacklevel=2)
    if not rows:
        raise EmptyStoreError(f"no run with a finished level under {root}: run `make bench` first")
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for column in INTEGER_COLUMNS:
        frame[column] = frame[column].astype("Int64")
    frame["rate_per_s"] = frame["rate_per_s"].astype("float64")
    return Store(results, frame, tuple(skipped))


def load_frame(results: Path, experiment: str | None = None) -> pd.DataFrame:
    """The tidy long frame of every run under `results` (one experiment if given)."""
    return load_store(results, experiment).frame


def level_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per run x level, one column per `metric.stat` (scalars: `metric.value`)."""
    index = [*RUN_COLUMNS, *LEVEL_COLUMNS]
    keyed = frame.assign(column=frame["metric"] + "." + frame["stat"])
    wide = keyed.set_index([*index, "column"])["value"].unstack("column").reset_index()
    wide.columns.name = None
    order = ["run_path", "level_index", "concurrency"]
    return wide.sort_values(order, kind="stable").reset_index(drop=True)


def column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column of `frame`, or NaN throughout where no run measured it."""
    if name in frame.columns:
        return frame[name].astype("float64")
    return pd.Series(float("nan"), index=frame.index, dtype="float64")


def aggregate_shown(levels: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The aggregate tok/s a table or figure leads with, per row of a level table, and which
    it is (STEADY_WINDOW or WHOLE_LEVEL; "" where neither was measured)."""
    steady, whole = column(levels, STEADY), column(levels, AGGREGATE)
    window = np.where(steady.notna(), STEADY_WINDOW, np.where(whole.notna(), WHOLE_LEVEL, ""))
    return steady.fillna(whole), pd.Series(window, index=levels.index, dtype=object)


def load_requests(results: Path, levels: pd.DataFrame) -> pd.DataFrame:
    """The successful requests behind each row of `levels` (from requests.jsonl)."""
    rows = []
    labels = series_labels(levels)
    for (_, level), label in zip(levels.iterrows(), labels, strict=True):
        for record in read_records(Path(results) / level["run_path"]):
            if record.ok and record.concurrency == level["concurrency"]:
                rows.append(
                    {
                        "series": label,
                        "engine": level["engine"],
                        "concurrency": int(level["concurrency"]),
                        "ttft_ms": record.ttft_ms,
                        "e2e_ms": record.e2e_ms,
                    }
                )
    columns = ["series", "engine", "concurrency", "ttft_ms", "e2e_ms"]
    return pd.DataFrame(rows, columns=columns)
