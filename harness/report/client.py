"""How far to trust each level: the client's own load, wait and flags, from every run's
summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from harness.report.frame import Store
from harness.report.view import View, fmt, percentile_cell

COLUMNS = [
    "run",
    "machine",
    "engine",
    "concurrency",
    "rate_per_s",
    "client_processes",
    "client_cpu_max",
    *(f"{name}_{stat}" for name in ("client_wait", "loop_lag", "late_send")
      for stat in ("p50_ms", "p99_ms", "max_ms", "n")),
    "flags",
]  # fmt: skip
DISTRIBUTIONS = {  # column prefix -> where a level's summary keeps it
    "client_wait": ("client_wait_ms",),
    "loop_lag": ("client", "loop_lag_ms"),
    "late_send": ("client", "late_send_ms"),
}
CAPTION = (
    "The client's own CPU share, wait and event-loop lag per level. A flag means the client "
    "may have delayed what it measured: client_cpu_saturated (a client process above 85% of "
    "a core), client_loop_lag (loop lag p99 above 5 ms), client_late_sends (open-loop send "
    "lateness p99 above 10 ms), client_wait (the wait from a request being due to its bytes "
    "on the socket, p99 above 1 ms). Each percentile shows its sample count; below 100 "
    "samples a p99 is the maximum, named so. '-': not recorded by the run."
)


def _stats(level: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    found: Any = level
    for key in path:
        found = (found or {}).get(key)
    return found if isinstance(found, dict) else {}


def _flags(level: dict[str, Any]) -> str:
    if not level.get("client"):
        return "not recorded"
    return ", ".join(level.get("client_flags") or [])


def client_checks(store: Store) -> pd.DataFrame:
    """One row per level of every run: the client's CPU share, wait, loop lag, lateness."""
    rows = []
    for run_path in sorted(store.frame["run_path"].unique()):
        try:
            summary = json.loads((Path(store.results) / run_path / "summary.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        run = summary.get("run", {})
        for level in summary.get("levels", []):
            client = level.get("client") or {}
            row = [
                run_path,
                run.get("machine_id"),
                run.get("engine"),
                level.get("concurrency"),
                level.get("rate_per_s"),
                client.get("processes"),
                client.get("cpu_fraction_max"),
            ]
            for path in DISTRIBUTIONS.values():
                stats = _stats(level, path)
                row += [stats.get("p50"), stats.get("p99"), stats.get("max"), stats.get("n")]
            rows.append([*row, _flags(level)])
    return pd.DataFrame(rows, columns=COLUMNS)


def client_view(table: pd.DataFrame) -> View:
    rows = []
    for r in table.to_dict("records"):
        cells = [str(r["run"]), str(r["machine"]), str(r["engine"]), fmt(r["concurrency"], 0)]
        cells += [fmt(r["rate_per_s"]), fmt(r["client_processes"], 0)]
        cells.append(fmt(r["client_cpu_max"], 2))
        for name, stats in (("client_wait", ("p50", "p99")), ("loop_lag", ("p99",)),
                            ("late_send", ("p99",))):  # fmt: skip
            for stat in stats:
                value, maximum, n = (r[f"{name}_{s}"] for s in (f"{stat}_ms", "max_ms", "n"))
                cells.append(percentile_cell(stat, value, maximum, n, digits=2))
        rows.append([*cells, r["flags"] or "ok"])
    headers = [
        "run", "machine", "engine", "concurrency", "rate (req/s)", "client processes",
        "client CPU max (fraction of a core)", "client wait p50 (ms)", "client wait p99 (ms)",
        "loop lag p99 (ms)", "late sends p99 (ms)", "client check",
    ]  # fmt: skip
    return View("Client checks", CAPTION, headers, rows)


def write_client_checks(store: Store, out: Path) -> View:
    table = client_checks(store)
    table.to_csv(out / "client_checks.csv", index=False, lineterminator="\n")
    view = client_view(table)
    (out / "client_checks.md").write_text(view.markdown())
    return view
