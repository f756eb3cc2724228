"""The report: tables, figures and one self-contained report.html (no network resources).

Figures are embedded as base64 SVG data URIs, styles inline, so the page opens offline and
can be mailed or attached to an issue as one file.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape
from pathlib import Path

import pandas as pd

from harness.metrics import METRICS
from harness.report.capacity import capacity_figure, capacity_runs, capacity_table, capacity_view
from harness.report.client import write_client_checks
from harness.report.figures import Plot, draw_all, save
from harness.report.frame import Store, level_table
from harness.report.headline import headline_html
from harness.report.tables import write_tables
from harness.report.timeline import run_timeline
from harness.report.view import View, fmt, write_csv

FIGURE_CAPTIONS = {
    "aggregate_throughput": "Aggregate output tokens per second against concurrency: over "
    "the steady window in which every worker was busy (the whole level's where a run "
    "recorded none), and over the whole level, ramp-up and drain included.",
    "ceiling": "Steady aggregate tok/s (solid) beside the decode ceiling (dotted): the tok/s "
    "at which the same running sequences would be bound by the machine's memory bandwidth "
    "(weights + KV cache read once per step). The gap is what the engine leaves unused.",
    "per_request_throughput": "Mean output tokens per second of one request (output / E2E).",
    "ttft": "Time to first token: p50 line, p90 dashed (from 10 requests), shaded up to p99 "
    "(from 100 requests; up to the maximum below that).",
    "inter_token_latency": "Median inter-token latency and time per output token. ITL is "
    "per chunk: where a level is flagged multi_token_chunks, TPOT is the per-token figure.",
    "latency_cdf": "Empirical CDFs of TTFT and end-to-end latency, per concurrency level.",
    "memory": "Measured peak memory (GPU through NVML, or process RSS) beside the prediction.",
    "capacity": "Every capacity probe's use of its SLO (the worst target's value / limit) "
    "against its load: filled where every target held; the capacity is the highest filled "
    "point below the first hollow one.",
    "timeline": "The run over time: output tokens per second and requests in flight as the "
    "client saw them (per second, from its records), the engine's own running and waiting "
    "requests, KV cache use and preemptions (its /metrics every second); levels shaded. "
    "The engine's generated tok/s is its token counter's rise per second (llama.cpp adds a "
    "request's tokens when it finishes, so its line comes in steps).",
}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1600px;
       color: #222; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.8rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.4rem; }
th { background: #f0f3f7; }
.caption, figcaption { color: #555; font-size: 0.85rem; }
figure { margin: 1rem 0 2rem; max-width: 1200px; } img { max-width: 100%; height: auto; }
p.caption { max-width: 1200px; }
.warning { background: #fff4e0; border-left: 4px solid #e69500; padding: 0.5rem 1rem; }
.headline { background: #eef5ee; border-left: 4px solid #3a7d44; padding: 0.3rem 1rem;
            font-size: 1.05rem; max-width: 1200px; }
"""


def svg_data_uri(path: Path) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def page(title: str, body: Sequence[str]) -> str:
    """A complete HTML document around the given body fragments."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def runs_view(frame: pd.DataFrame) -> View:
    """Every run read from the store, with its status and where its code came from."""
    levels = level_table(frame)
    rows = []
    for run_path, group in levels.groupby("run_path", sort=True):
        first = group.iloc[0]
        statuses = ", ".join(
            f"{int(c)}: {s}"
            for c, s in zip(group["concurrency"], group["level_status"], strict=True)
        )
        commit = str(first["git_commit"])[:10]
        rows.append(
            [
                str(run_path),
                first["machine_label"],
                first["gpu_name"],
                first["engine"],
                first["engine_version"],
                first["workload"],
                first["run_status"],
                statuses,
                first["harness_version"],
                fmt(commit),
            ]
        )
    headers = [
        "run",
        "machine",
        "GPU",
        "engine",
        "engine version",
        "workload",
        "run status",
        "levels (concurrency: status)",
        "harness",
        "commit",
    ]
    return View("Runs", "Every run directory read from the store.", headers, rows)


def metrics_view() -> View:
    rows = [[m.label, m.unit, m.better, m.definition] for m in METRICS.values()]
    return View("Metric definitions", "", ["metric", "unit", "better", "definition"], rows)


def _skipped_note(store: Store) -> str:
    if not store.skipped:
        return ""
    items = "".join(f"<li>{escape(path)}: {escape(reason)}</li>" for path, reason in store.skipped)
    return f'<div class="warning"><p>Run directories skipped:</p><ul>{items}</ul></div>'


def _figure(plot: Plot, figures_dir: Path, name: str, caption: str) -> str:
    """Save a figure (PNG, SVG) and return it embedded as an HTML figure."""
    _, svg = save(plot, figures_dir, name)
    plot.figure.clear()  # a report may draw many: free each once written
    return (
        f'<figure id="{escape(name)}"><img alt="{escape(caption)}" '
        f'src="{svg_data_uri(svg)}"><figcaption>{escape(caption)}</figcaption></figure>'
    )


def write_report(
    store: Store, out: Path, concurrency: int | None = None, title: str = "Benchmark report"
) -> Path:
    """Tables (.md, .csv), figures (.png, .svg), the tidy frame (frame.csv) and report.html."""
    out.mkdir(parents=True, exist_ok=True)
    views = write_tables(store.frame, out, concurrency)
    write_csv(store.frame, out / "frame.csv")
    figures_dir = out / "figures"
    searches = capacity_runs(store)
    body = [headline_html(store), _skipped_note(store), "<h2>Tables</h2>"]
    if searches:
        capacity = capacity_view(searches)
        write_csv(capacity_table(searches), out / "capacity.csv")
        (out / "capacity.md").write_text(capacity.markdown())
        body.append(capacity.html())
    body += [view.html() for shown in views.values() for view in shown]
    body.append(write_client_checks(store, out).html())
    body.append("<h2>Figures</h2>")
    figures = draw_all(store.results, store.frame)
    if searches:
        figures["capacity"] = capacity_figure(searches)
    for name, plot in figures.items():
        body.append(_figure(plot, figures_dir, name, FIGURE_CAPTIONS[name]))
    body.append("<h2>Over time</h2>")
    for run_path in sorted(store.frame["run_path"].unique()):
        plot = run_timeline(Path(store.results) / run_path, str(run_path))
        if plot is not None:
            name = f"timeline__{Path(run_path).name}"
            body.append(_figure(plot, figures_dir, name, FIGURE_CAPTIONS["timeline"]))
    body += ["<h2>About the data</h2>", runs_view(store.frame).html(), metrics_view().html()]
    path = out / "report.html"
    path.write_text(page(title, [part for part in body if part]))
    return path


def write_compare_page(view: View, out: Path) -> Path:
    """compare.html: the machine comparison table on its own page."""
    path = out / "compare.html"
    path.write_text(page(view.title.partition(" (")[0], [view.html(), metrics_view().html()]))
    return path
