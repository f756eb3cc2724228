"""Capacity within the SLO, per run that searched for it: the answer in words ("gemma3-270m
on llamacpp: 6 concurrent users"), the binding target, the probes; and a figure of every
probe's use of its SLO against the load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from harness.capacity import capacity_line, target_text
from harness.capacity.slo import use
from harness.report.frame import Store
from harness.report.plotting import Plot, engine_colours, finish, new_figure
from harness.report.view import View

COLUMNS = [
    "run",
    "machine",
    "gpu",
    "engine",
    "model",
    "slo",
    "load",
    "unit",
    "capacity",
    "status",
    "binding",
    "at_capacity",
    "first_missed",
    "probes",
    "requests_per_probe",
    "started_at",
]
CAPTION = (
    "The highest load at which every target of the SLO held, found on one running engine: "
    "loads doubled until a probe missed, then bisected to the resolution; each probe is an "
    "ordinary level of the run (its figures are in the tables above). A p99 target is "
    "judged on a probe's p99 from at least 100 requests, else on its maximum, named so. "
    "Binding: the target that missed first above the capacity."
)


def answer(row: dict[str, Any]) -> str:
    """ "gemma3-270m on llamacpp: 6 concurrent users" (at least, where nothing missed)."""
    line = capacity_line({"capacity": row["result"]}) or ""
    figure = line.removeprefix("capacity: ").split(" (")[0]
    return f"{row['model']} on {row['engine']}: {figure}"


def _slo_text(slo: dict[str, float]) -> str:
    return ", ".join(f"{name} <= {limit:g}" for name, limit in slo.items())


def capacity_runs(store: Store) -> list[dict[str, Any]]:
    """Every run of the store with a capacity search, newest first, with its result."""
    runs = []
    frame = store.frame.drop_duplicates("run_path")
    for row in frame.itertuples():
        try:
            summary = json.loads((Path(store.results) / row.run_path / "summary.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        result = summary.get("capacity")
        if not result:
            continue
        run = summary.get("run") or {}
        runs.append(
            {
                "run": row.run_path,
                "machine": row.machine_id,
                "gpu": row.gpu_name,
                "engine": run.get("engine") or row.engine,
                "model": run.get("model") or row.model,
                "started_at": row.started_at,
                "result": result,
            }
        )
    return sorted(runs, key=lambda r: r["started_at"], reverse=True)


def capacity_table(runs: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for run in runs:
        result = run["result"]
        at, binding = result.get("at_capacity") or {}, result.get("binding")
        held = target_text(binding, at[binding]) if binding in at else ""
        rows.append(
            [
                run["run"],
                run["machine"],
                run["gpu"],
                run["engine"],
                run["model"],
                _slo_text(result["slo"]),
                result["load"],
                result["unit"],
                result["capacity"],
                result["status"],
                binding or "none",
                held,
                result.get("first_missed"),
                len(result["probes"]),
                result.get("requests_per_probe"),
                run["started_at"],
            ]
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def _binding_cells(result: dict[str, Any]) -> tuple[str, str]:
    """The binding target at the capacity, "ttft_p99_ms: ttft_p99_ms 57 <= 100", and the
    first load that missed with its value, "5 (ttft_p99_ms 135 > 100)"."""
    at, binding, missed = result.get("at_capacity") or {}, result.get("binding"), None
    if result.get("first_missed") is not None:
        missed = next(p for p in result["probes"] if p["load"] == result["first_missed"])
    held = f"{binding}: {target_text(binding, at[binding])}" if binding in at else "none"
    if missed is None:
        return held, "-"
    name = missed["binding"]
    return held, f"{missed['load']:g} ({target_text(name, missed['targets'][name])})"


def capacity_view(runs: list[dict[str, Any]]) -> View:
    headers = ["answer", "machine", "GPU", "SLO", "binding (at capacity)", "first missed"]
    headers += ["probes (load: held)", "run"]
    rows = []
    for run in runs:
        result = run["result"]
        probes = [f"{p['load']:g}: {'yes' if p['held'] else 'no'}" for p in result["probes"]]
        held, missed = _binding_cells(result)
        rows.append(
            [
                answer(run),
                str(run["machine"]),
                str(run["gpu"]),
                _slo_text(result["slo"]),
                held,
                missed,
                ", ".join(probes),
                str(run["run"]),
            ]
        )
    return View("Capacity within the SLO", CAPTION, headers, rows)


def capacity_figure(runs: list[dict[str, Any]]) -> Plot:
    """Each probe's use of the SLO (its worst target: value / limit) against the load, one
    line per run; filled where every target held, hollow where one missed."""
    figure, (axes,) = new_figure()
    colours = engine_colours(run["engine"] for run in runs)
    series: dict[str, dict[float, float]] = {}
    for run in runs:
        result = run["result"]
        label = f"{run['model']} on {run['engine']} @ {run['machine']}"
        probes = sorted(result["probes"], key=lambda p: p["load"])
        worst = {p["load"]: min(max(use(c) for c in p["targets"].values()), 10.0) for p in probes}
        colour = colours[run["engine"]]
        axes.plot(list(worst), list(worst.values()), color=colour, label=label, lw=1)
        for probe in probes:
            face = colour if probe["held"] else "white"
            axes.plot(probe["load"], worst[probe["load"]], "o", color=colour, mfc=face, ms=7)
        series[label] = worst
    axes.axhline(1.0, color="black", lw=0.8, linestyle="--")
    axes.annotate("SLO limit", (0.01, 1.0), xycoords=("axes fraction", "data"), va="bottom")
    units = {run["result"]["unit"] for run in runs}
    axes.set_xlabel(" or ".join(sorted(units)) + " (probe load)")
    axes.set_ylabel("use of the SLO (worst target: value / limit)")
    axes.set_xscale("log", base=2)
    axes.set_title("Capacity probes (filled: every target held)")
    axes.grid(True, alpha=0.3)
    finish(figure)
    return Plot(figure, series)
