"""How far to trust each level: the client's own load and flags, from every run's summary."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from harness.report.frame import Store
from harness.report.tables import View, fmt

COLUMNS = [
    "run",
    "machine",
    "engine",
    "concurrency",
    "rate_per_s",
    "client_processes",
    "client_cpu_max",
    "loop_lag_p99_ms",
    "late_send_p99_ms",
    "flags",
]


def client_checks(store: Store) -> pd.DataFrame:
    """One row per level of every run: the client's CPU share, loop lag, send lateness."""
    rows = []
    for run_path in sorted(store.frame["run_path"].unique()):
        try:
            summary = json.loads((Path(store.results) / run_path / "summary.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        run = summary.get("run", {})
        for level in summary.get("levels", []):
            client = level.get("client") or {}
            rows.append(
                [
                    run_path,
                    run.get("machine_id"),
                    run.get("engine"),
                    level.get("concurrency"),
                    level.get("rate_per_s"),
                    client.get("processes"),
                    client.get("cpu_fraction_max"),
                    (client.get("loop_lag_ms") or {}).get("p99"),
                    (client.get("late_send_ms") or {}).get("p99"),
                    ", ".join(level.get("client_flags") or []) if client else "not recorded",
                ]
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def client_view(table: pd.DataFrame) -> View:
    caption = (
        "The client's own CPU share and event-loop lag per level. A flag means the client "
        "may have delayed what it measured: client_cpu_saturated (a client process above 85% "
        "of a core), client_loop_lag (loop lag p99 above 5 ms), client_late_sends (open-loop "
        "send lateness p99 above 10 ms)."
    )
    rows = [
        [
            str(r.run),
            str(r.machine),
            str(r.engine),
            fmt(r.concurrency, 0),
            fmt(r.rate_per_s),
            fmt(r.client_processes, 0),
            fmt(r.client_cpu_max, 2),
            fmt(r.loop_lag_p99_ms, 2),
            fmt(r.late_send_p99_ms, 2),
            r.flags or "ok",
        ]
        for r in table.itertuples()
    ]
    headers = [
        "run", "machine", "engine", "concurrency", "rate (req/s)", "client processes",
        "client CPU max (fraction of a core)", "loop lag p99 (ms)", "late sends p99 (ms)",
        "client check",
    ]  # fmt: skip
    return View("Client checks", caption, headers, rows)


def write_client_checks(store: Store, out: Path) -> View:
    table = client_checks(store)
    table.to_csv(out / "client_checks.csv", index=False, lineterminator="\n")
    view = client_view(table)
    (out / "client_checks.md").write_text(view.markdown())
    return view
