"""Reports that answer: repeats as a mean with its 95% confidence interval and CV (tables,
error bars), differences beyond or within the noise (make compare), capacity within the
SLO (table, figure), the run over time, and the headline at the top of report.html."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from statistics import mean, stdev

import pandas as pd
import pytest

from harness.metrics.confidence import t_quantile
from harness.report.capacity import capacity_figure, capacity_runs, capacity_view
from harness.report.cells import latest_levels
from harness.report.compare import compare_sides, noise_column
from harness.report.figures import aggregate_throughput
from harness.report.frame import STEADY, level_table, load_store
from harness.report.headline import headline
from harness.report.html import write_report
from harness.report.repeats import ci_column
from harness.report.tables import throughput_by_concurrency, throughput_views
from harness.report.timeline import run_timeline
from harness.telemetry.series import SERIES_FIELDS, SERIES_FILE
from tests.support.report_store import write_current_run

THROUGHPUT = ("steady_output_tokens_per_s", "aggregate_output_tokens_per_s", "requests_per_s")


def repeated(run_dir: Path, speeds: tuple[float, ...]) -> list[dict]:
    """Rewrite a run's levels as len(speeds) passes, pass k at speeds[k] times its speed."""
    summary = json.loads((run_dir / "summary.json").read_text())
    ladder = summary["levels"]
    levels = []
    for repeat, speed in enumerate(speeds):
        for level in ladder:
            again = copy.deepcopy(level)
            for key in THROUGHPUT:
                again[key] *= speed
            again["output_tokens_per_s_per_request"]["mean"] *= speed
            again.update(level_index=len(levels), repeat=repeat)
            levels.append(again)
    summary["levels"] = levels
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return ladder


def ci95(values: list[float]) -> float:
    return t_quantile(0.975, len(values) - 1) * stdev(values) / math.sqrt(len(values))


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return tmp_path / "results"


def test_repeats_are_one_row_with_their_mean_ci_and_cv(results: Path) -> None:
    run = write_current_run(results, "vm", "llamacpp-embedded", "20261201T100000000000Z")
    ladder = repeated(run, (0.9, 1.0, 1.2))
    levels = latest_levels(level_table(load_store(results).frame))
    assert list(levels["concurrency"]) == [lv["concurrency"] for lv in ladder]
    assert set(levels["repeats"]) == {3}
    for level, row in zip(ladder, levels.to_dict("records"), strict=True):
        values = [level["steady_output_tokens_per_s"] * s for s in (0.9, 1.0, 1.2)]
        assert row[STEADY] == pytest.approx(mean(values))
        assert row[ci_column(STEADY)] == pytest.approx(ci95(values))
        assert row[ci_column(STEADY, "cv")] == pytest.approx(stdev(values) / mean(values))


def test_tables_show_the_mean_plus_minus_its_interval_and_figures_draw_error_bars(
    results: Path,
) -> None:
    run = write_current_run(results, "vm", "llamacpp-embedded", "20261201T100000000000Z")
    repeated(run, (0.9, 1.0, 1.2))
    frame = load_store(results).frame
    table = throughput_by_concurrency(frame)
    steady = throughput_views(table)[0]
    assert all(" ± " in cell and "k=3" in cell and "CV " in cell for cell in steady.rows[0][1:])
    assert "95% confidence interval (Student t" in steady.caption
    levels = latest_levels(level_table(frame))
    plot = aggregate_throughput(levels)
    (label,) = plot.errors["steady"]
    assert plot.errors["steady"][label] == pytest.approx(
        dict(zip(levels["concurrency"], levels[ci_column(STEADY)], strict=True))
    )


def test_a_level_run_once_shows_no_interval(results: Path) -> None:
    write_current_run(results, "vm", "llamacpp-embedded", "20261201T100000000000Z")
    table = throughput_by_concurrency(load_store(results).frame)
    assert not any("±" in cell for row in throughput_views(table)[0].rows for cell in row)


def two_engines(results: Path, faster: tuple[float, ...]) -> pd.DataFrame:
    base = write_current_run(results, "vm", "llamacpp-embedded", "20261201T100000000000Z")
    other = write_current_run(results, "vm", "vllm", "20261201T110000000000Z")
    repeated(base, (0.98, 1.0, 1.02))
    repeated(other, faster)
    table, baseline, sides = compare_sides(load_store(results).frame, by="engine")
    assert (baseline, sides) == ("llamacpp-embedded", ["llamacpp-embedded", "vllm"])
    return table[table["metric"] == "steady_output_tokens_per_s"]


def test_compare_says_an_engine_is_faster_beyond_the_noise(results: Path) -> None:
    rows = two_engines(results, (1.48, 1.5, 1.52))
    verdicts = list(rows[noise_column("vllm", "llamacpp-embedded")])
    assert verdicts and all(v.startswith("beyond noise (+") for v in verdicts)


def test_compare_says_a_small_difference_is_within_the_noise(results: Path) -> None:
    rows = two_engines(results, (0.9, 1.03, 1.15))
    verdicts = list(rows[noise_column("vllm", "llamacpp-embedded")])
    assert verdicts and all(v.startswith("within noise") for v in verdicts)


def test_without_repeats_compare_says_it_cannot_tell(results: Path) -> None:
    write_current_run(results, "vm", "llamacpp-embedded", "20261201T100000000000Z")
    write_current_run(results, "gpu-box", "llamacpp-embedded", "20261201T110000000000Z", speed=2)
    table, _, _ = compare_sides(load_store(results).frame, baseline="vm")
    assert set(table[noise_column("gpu-box", "vm")]) == {"unknown: run with repeats >= 2"}


CAPACITY = {
    "slo": {"ttft_p99_ms": 500.0},
    "load": "concurrency",
    "unit": "concurrent users",
    "start": 1,
    "max_load": 256,
    "resolution": 1.0,
    "requests_per_probe": 100,
    "status": "found",
    "capacity": 6,
    "first_missed": 7,
    "binding": "ttft_p99_ms",
    "at_capacity": {
        "ttft_p99_ms": {"limit": 500.0, "value": 412.0, "judged_on": "p99", "n": 100, "held": True}
    },
    "probes": [
        {
            "level_index": i,
            "load": load,
            "held": load <= 6,
            "status": "ok",
            "binding": "ttft_p99_ms",
            "targets": {
                "ttft_p99_ms": {
                    "limit": 500.0,
                    "value": 100.0 * load - 188 if load > 1 else 60.0,
                    "judged_on": "p99",
                    "n": 100,
                    "held": load <= 6,
                }
            },
        }
        for i, load in enumerate((1, 2, 4, 8, 6, 7))
    ],
}


def with_capacity(run_dir: Path) -> Path:
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["capacity"] = CAPACITY
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


def test_capacity_is_answered_per_engine_with_its_binding_target(results: Path) -> None:
    with_capacity(write_current_run(results, "vm", "llamacpp-embedded", "20261201T100000000000Z"))
    store = load_store(results)
    view = capacity_view(capacity_runs(store))
    (row,) = view.rows
    assert row[0] == "gemma3-270m on llamacpp-embedded: 6 concurrent users"
    assert row[4] == "ttft_p99_ms: ttft_p99_ms 412 <= 500"
    assert row[5] == "7 (ttft_p99_ms 512 > 500)"
    plot = capacity_figure(capacity_runs(store))
    (probes,) = plot.series.values()
    assert probes[6] == pytest.approx(412 / 500) and probes[7] == pytest.approx(512 / 500)


def test_the_headline_says_single_user_speed_capacity_and_peak_memory(results: Path) -> None:
    with_capacity(write_current_run(results, "vm", "llamacpp-embedded", "20261201T100000000000Z"))
    store = load_store(results)
    levels = latest_levels(level_table(store.frame))
    single = levels[levels["concurrency"] == 1]["output_tokens_per_s_per_request.mean"].iloc[0]
    sentences = headline(store)
    assert len(sentences) == 3
    assert sentences[0].startswith("For a single user (gemma3-270m on vm (no GPU)): ")
    assert f"llamacpp-embedded {single:,.1f} tok/s" in sentences[0]
    assert sentences[1] == (
        "Capacity within ttft_p99_ms <= 500, gemma3-270m on llamacpp-embedded: 6 concurrent users."
    )
    assert sentences[2].startswith("Peak memory: llamacpp-embedded ")
    assert sentences[2].endswith(" MiB process RSS.")


def write_series(run_dir: Path) -> None:
    rows = [",".join(SERIES_FIELDS)]
    for level, start in ((0, 100.0), (1, 104.0)):
        for t in range(3):
            mono = start + t
            rows.append(f"{level},{t},{mono},engine,llamacpp:requests_processing,{level + 1}")
            rows.append(f"{level},{t},{mono},engine,llamacpp:requests_deferred,{t % 2}")
            rows.append(f"{level},{t + 0.5},{mono + 0.5},client,in_flight,{level + 1.0}")
            rows.append(f"{level},{t + 0.5},{mono + 0.5},client,output_tokens_per_s,{30.0 * t}")
    (run_dir / SERIES_FILE).write_text("\n".join(rows) + "\n")


def test_a_run_over_time_is_drawn_with_a_gap_between_levels(results: Path) -> None:
    run = write_current_run(results, "vm", "llamacpp-embedded", "20261201T100000000000Z")
    write_series(run)
    plot = run_timeline(run, "run")
    assert plot is not None
    assert plot.series["engine: running"] == {0: 1, 1: 1, 2: 1, 4: 2, 5: 2, 6: 2}
    assert plot.series["client: in flight"][4.5] == 2.0
    lines = [line for line in plot.figure.axes[1].lines if line.get_label() == "engine: running"]
    assert pd.isna(lines[0].get_ydata()).sum() == 2  # the line breaks after each level


def test_report_html_opens_with_the_headline_and_draws_capacity_and_time(results: Path) -> None:
    run = with_capacity(
        write_current_run(results, "vm", "llamacpp-embedded", "20261201T100000000000Z")
    )
    write_series(run)
    html = write_report(load_store(results), results / "_report").read_text()
    body = html.split("<body>", 1)[1]
    assert body.index('class="headline"') < body.index("<h2>Tables</h2>")
    assert "6 concurrent users" in body and 'id="capacity"' in body
    assert f'id="timeline__{run.name}"' in body
    assert (results / "_report" / "capacity.csv").exists()
