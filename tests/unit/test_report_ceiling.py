"""The ceilings in the report: the comparison column, the figure, make compare's rows and
the end-of-run table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.report.ceiling_figure import throughput_vs_ceiling
from harness.report.cells import latest_levels
from harness.report.compare import compare_machines
from harness.report.comparison import comparison_view, engine_comparison
from harness.report.frame import level_table, load_store
from harness.report.table import run_table
from tests.support.report_store import H100, write_run


def _with_ceilings(run_dir: Path, utilisation: float, ceiling_tok_s: float, bw_gbs: float) -> None:
    path = run_dir / "summary.json"
    summary = json.loads(path.read_text())
    for level in summary["levels"]:
        level["decode_bandwidth_utilisation"] = utilisation
        level["decode_ceiling_tokens_per_s"] = ceiling_tok_s * level["concurrency"]
        level["memory_bandwidth_gbs"] = bw_gbs
    path.write_text(json.dumps(summary))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    cpu = write_run(tmp_path, "vm", "llamacpp-embedded", "20261125T191927779795Z")
    gpu = write_run(tmp_path, "gpu-box", "llamacpp-embedded", "20261125T050000000000Z",
                    speed=2.0, gpu=H100)  # fmt: skip
    _with_ceilings(cpu, 0.45, 120.0, 30.0)
    _with_ceilings(gpu, 0.09, 13_000.0, 3350.0)
    return tmp_path


def test_the_engine_comparison_shows_the_share_of_the_bandwidth_ceiling(store: Path) -> None:
    frame = load_store(store).frame
    table = engine_comparison(frame, 8)
    assert sorted(table["decode_bandwidth_utilisation"]) == [0.09, 0.45]
    view = comparison_view(table, 8)
    column = view.headers.index("% of bandwidth ceiling")
    assert sorted(row[column] for row in view.rows) == ["45%", "9.0%"]


def test_make_compare_sets_the_machines_side_by_side_on_their_own_ceilings(store: Path) -> None:
    table, baseline = compare_machines(load_store(store).frame, "vm")
    rows = table[(table["metric"] == "decode_bandwidth_utilisation") & (table["concurrency"] == 1)]
    assert len(rows) == 1
    assert rows.iloc[0]["gpu-box / vm"] == pytest.approx(0.2)


def test_the_figure_draws_each_series_and_its_ceiling(store: Path) -> None:
    levels = latest_levels(level_table(load_store(store).frame))
    plot = throughput_vs_ceiling(levels)
    assert set(plot.series["ceiling"]) == set(plot.series["measured"])
    for points in plot.series["ceiling"].values():
        assert points[1] in (120.0, 13_000.0) and points[8] == 8 * points[1]


def test_the_run_table_has_the_column_and_a_dash_where_not_recorded(store: Path) -> None:
    run_dir = next((store / "default" / "vm").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    text = run_table(summary)
    assert "% of bandwidth ceiling" in text and "45%" in text
    for level in summary["levels"]:
        del level["decode_bandwidth_utilisation"]
    assert "45%" not in run_table(summary)
