"""Reports: the store as one tidy frame, tables, figures that show the tables' numbers,
machines compared, and the CLI's answer to an empty store."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from harness.metrics import METRICS
from harness.report.__main__ import main
from harness.report.cells import latest_levels, series_labels
from harness.report.compare import CompareError, compare_machines, ratio_column
from harness.report.figures import (
    aggregate_throughput,
    engine_colours,
    latency_cdfs,
    memory_per_run,
    per_request_throughput,
    ttft_band,
)
from harness.report.frame import (
    COLUMNS,
    SkippedRunWarning,
    Store,
    level_table,
    load_requests,
    load_store,
)
from harness.report.html import write_report
from harness.report.tables import (
    engine_comparison,
    fmt,
    throughput_by_concurrency,
    write_tables,
)
from tests.support.report_store import REFERENCE_RUN, REFERENCE_STORE, build_store, write_run

LLAMA_RUN = "llamacpp-embedded__gemma3-270m__20261125T191927779795Z"


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    return build_store(tmp_path / "results")


@pytest.fixture
def store(store_root: Path) -> Store:
    with pytest.warns(SkippedRunWarning):
        return load_store(store_root)


def reference_levels() -> dict[int, dict]:
    summary = json.loads((REFERENCE_RUN / "summary.json").read_text())
    return {level["concurrency"]: level for level in summary["levels"]}


def test_the_frame_has_one_row_per_run_level_metric_and_statistic(store: Store) -> None:
    frame = store.frame
    assert list(frame.columns) == list(COLUMNS)
    assert not frame.duplicated(["run_path", "concurrency", "metric", "stat"]).any()
    assert set(frame["run_path"].str.split("/").str[1]) == {"vm", "gpu-box"}


def test_frame_values_and_units_come_from_the_summary_and_the_registry() -> None:
    frame = load_store(REFERENCE_STORE).frame
    level = reference_levels()[4]
    row = frame[(frame["concurrency"] == 4) & (frame["metric"] == "ttft_ms")]
    assert row.set_index("stat")["value"]["p50"] == level["ttft_ms"]["p50"]
    assert set(row["unit"]) == {METRICS["ttft_ms"].unit, "count"}
    aggregate = frame[frame["metric"] == "aggregate_output_tokens_per_s"]
    assert set(aggregate["unit"]) == {"tok/s"}
    assert set(aggregate["stat"]) == {"value"}


def test_the_frame_carries_machine_and_engine_identity(store: Store) -> None:
    runs = store.frame.drop_duplicates("run_path").set_index("run_path")
    gpu_run = runs.loc["default/gpu-box/ollama__gemma3-270m__20261125T050000000000Z"]
    assert gpu_run["machine_label"] == "H100 box"
    assert gpu_run["gpu_name"] == "NVIDIA H100 80GB HBM3"
    assert gpu_run["engine_kind"] == "ollama"
    assert gpu_run["harness_version"] == "0.1.0"
    assert runs.loc[f"default/vm/{LLAMA_RUN}", "gpu_name"] == "none"
    assert runs.loc[f"default/vm/{LLAMA_RUN}", "machine_label"] == "vm"


def test_a_half_written_run_is_skipped_with_a_warning(store_root: Path) -> None:
    with pytest.warns(SkippedRunWarning, match="ollama__gemma3-270m__20261125T060000000000Z"):
        store = load_store(store_root)
    assert len(store.skipped) == 1
    assert store.frame["run_id"].nunique() == 6


def test_an_interrupted_runs_finished_levels_are_included(store: Store) -> None:
    table = throughput_by_concurrency(store.frame)
    slots_1 = table[(table["machine_id"] == "vm") & (table["engine_parallel"] == 1)]
    assert list(slots_1["concurrency"]) == [1, 2]
    assert list(slots_1["level_status"]) == ["ok", "interrupted"]


def test_a_newer_run_of_the_same_cell_supersedes_an_older_one(store: Store) -> None:
    table = throughput_by_concurrency(store.frame)
    llama = table[
        (table["machine_id"] == "vm")
        & (table["engine"] == "llamacpp-embedded")
        & (table["engine_parallel"] == 4)
    ].set_index("concurrency")
    assert set(llama["run_id"]) == {LLAMA_RUN}
    expected = reference_levels()[1]["aggregate_output_tokens_per_s"]
    assert llama.loc[1, "aggregate_output_tokens_per_s"] == pytest.approx(expected)


def test_throughput_markdown_has_one_column_per_concurrency(
    store_root: Path, tmp_path: Path
) -> None:
    with pytest.warns(SkippedRunWarning):
        store = load_store(store_root)
    write_tables(store.frame, tmp_path)
    text = (tmp_path / "throughput_by_concurrency.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| machine"))
    titles = [cell.strip() for cell in header.strip("|").split("|")]
    assert titles == ["machine", "engine", "parallel"] + [f"{c} concurrent" for c in (1, 2, 4, 8)]
    # the interrupted run (one slot) at 2 concurrent: the reference run's figure, so marked
    interrupted = reference_levels()[2]["output_tokens_per_s_per_request"]["mean"]
    assert f"{fmt(interrupted)} (interrupted)" in text


def test_the_engine_comparison_defaults_to_the_highest_common_concurrency(store: Store) -> None:
    table = engine_comparison(store.frame)
    assert set(table["at_concurrency"]) == {2}
    vm_llama = table[(table["machine_id"] == "vm") & (table["engine_parallel"] == 4)].iloc[0]
    level = reference_levels()
    assert vm_llama["single_request_tok_s"] == pytest.approx(
        level[1]["output_tokens_per_s_per_request"]["mean"]
    )
    assert pd.isna(vm_llama["ttft_p99_ms"])  # 4 requests: the stored p99 is not shown
    assert vm_llama["ttft_max_ms"] == pytest.approx(level[2]["ttft_ms"]["max"])
    assert vm_llama["ttft_n"] == level[2]["ttft_ms"]["n"] == 4
    assert vm_llama["peak_memory_kind"] == "process_rss"
    assert vm_llama["peak_memory_mib"] == max(lv["peak_memory_mib"] for lv in level.values())
    assert vm_llama["predicted_memory_mib"] == level[1]["predicted_memory_mib"]
    assert vm_llama["error_rate"] == 0.0
    gpu = table[table["machine_id"] == "gpu-box"]
    assert set(gpu["peak_memory_kind"]) == {"gpu"} and set(gpu["predicted_memory_mib"]) == {5000}


def test_the_engine_comparison_takes_a_chosen_concurrency(store: Store) -> None:
    table = engine_comparison(store.frame, concurrency=8)
    slots_1 = table[table["engine_parallel"] == 1].iloc[0]
    assert pd.isna(slots_1["aggregate_tok_s"])  # never measured at 8
    vm_ollama = table[(table["machine_id"] == "vm") & (table["engine"] == "ollama")].iloc[0]
    expected = reference_levels()[8]["aggregate_output_tokens_per_s"] * 1.5
    # a run stored before steady windows: the whole level's figure, named so
    assert vm_ollama["aggregate_tok_s"] == pytest.approx(expected)
    assert vm_ollama["aggregate_window"] == "whole level"
    assert pd.isna(vm_ollama["steady_tok_s"])


def test_line_figures_plot_the_table_values(store: Store) -> None:
    levels = latest_levels(level_table(store.frame))
    table = throughput_by_concurrency(store.frame)
    aggregate = aggregate_throughput(levels)
    for series, column_name in (
        (aggregate.series["steady"], "aggregate_tok_s"),
        (aggregate.series["whole_level"], "aggregate_output_tokens_per_s"),
        (per_request_throughput(levels).series, "output_tokens_per_s_per_request_mean"),
    ):
        expected = {
            series: {
                int(c): v for c, v in zip(group["concurrency"], group[column_name], strict=True)
            }
            for series, group in table.groupby("series")
        }
        assert series == expected


def test_the_ttft_figure_shows_the_comparison_tables_percentiles(store: Store) -> None:
    plot = ttft_band(latest_levels(level_table(store.frame)))
    comparison = engine_comparison(store.frame, concurrency=2).set_index("series")
    # 4 requests at concurrency 2: a p50, and the band up to the max, for want of a p99
    for stat, column_name in (("p50", "ttft_p50_ms"), ("p99_or_max", "ttft_max_ms")):
        at_2 = {series: points[2] for series, points in plot.series[stat].items()}
        assert at_2 == pytest.approx(comparison[column_name].to_dict())
    # a p90 needs 10 requests: only concurrency 8 (16 requests) has one
    assert {tuple(points) for points in plot.series["p90"].values()} == {(8,)}


def test_latency_cdfs_plot_every_successful_request_of_the_level(store: Store) -> None:
    levels = latest_levels(level_table(store.frame))
    requests = load_requests(store.results, levels)
    plot = latency_cdfs(requests, levels)
    reference = [json.loads(line) for line in (REFERENCE_RUN / "requests.jsonl").open()]
    at_4 = sorted(r["e2e_ms"] for r in reference if r["concurrency"] == 4 and r["status"] == "ok")
    assert plot.series["llamacpp-embedded (parallel=4) @ vm"][4]["e2e_ms"] == pytest.approx(at_4)


def test_the_memory_figure_shows_measured_and_predicted_per_run(store: Store) -> None:
    plot = memory_per_run(store.frame)
    assert len(plot.series) == 6
    llama = plot.series[LLAMA_RUN]
    assert llama["kind"] == "process_rss"
    peak = max(level["peak_memory_mib"] for level in reference_levels().values())
    assert llama["measured"] == pytest.approx(peak)
    assert llama["predicted"] == reference_levels()[1]["predicted_memory_mib"]
    gpu_ollama = plot.series["ollama__gemma3-270m__20261125T050000000000Z"]
    assert (gpu_ollama["kind"], gpu_ollama["predicted"]) == ("gpu", 5000.0)


def test_each_engine_keeps_one_colour_from_sorted_names() -> None:
    tab10 = [matplotlib.colors.to_hex(c) for c in matplotlib.colormaps["tab10"].colors]
    colours = engine_colours(["vllm", "ollama", "llamacpp", "ollama"])
    assert colours == engine_colours(["llamacpp", "vllm", "ollama"])
    assert [colours[name] for name in ("llamacpp", "ollama", "vllm")] == tab10[:3]


def test_lines_take_their_engines_colour(store: Store) -> None:
    levels = latest_levels(level_table(store.frame))
    colours = engine_colours(levels["engine"])
    for line in aggregate_throughput(levels).figure.axes[0].get_lines():
        engine = line.get_label().split(" ")[0]
        assert matplotlib.colors.to_hex(line.get_color()) == colours[engine]


def test_compare_gives_ratios_against_the_baseline_machine(store: Store) -> None:
    table, baseline = compare_machines(store.frame, baseline="vm")
    assert baseline == "vm"
    ratio = ratio_column("gpu-box", "vm")
    by_metric = table.groupby("metric")[ratio]
    assert by_metric.get_group("aggregate_output_tokens_per_s").tolist() == pytest.approx([2.0] * 8)
    p50 = table[table["stat"] == "p50"].groupby("metric")[ratio]
    assert p50.get_group("ttft_ms").tolist() == pytest.approx([0.5] * 8)
    # no p99 from 4 to 16 requests: no ratio either, the max and n in its place
    p99 = table[(table["metric"] == "ttft_ms") & (table["stat"] == "p99")]
    assert p99[ratio].isna().all() and set(p99["vm n"]) == {4, 8, 16}
    assert by_metric.get_group("peak_memory_mib").tolist() == pytest.approx([10.0] * 8)
    # the parallel=1 cell ran on vm only: nothing to set beside it
    assert set(table["engine_parallel"]) == {4}


def test_compare_default_baseline_is_the_first_machine_id(store: Store) -> None:
    table, baseline = compare_machines(store.frame)
    assert baseline == "gpu-box"
    aggregate = table[table["metric"] == "aggregate_output_tokens_per_s"]
    assert aggregate[ratio_column("vm", "gpu-box")].tolist() == pytest.approx([0.5] * 8)


def test_compare_refuses_a_store_of_one_machine() -> None:
    with pytest.raises(CompareError, match="one machine only"):
        compare_machines(load_store(REFERENCE_STORE).frame)


def test_an_empty_store_exits_2_naming_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--results", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert str(tmp_path) in error and "make bench" in error


def test_an_unknown_experiment_is_an_empty_store(
    store_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--results", str(store_root), "--experiment", "nope"]) == 2
    assert str(store_root / "nope") in capsys.readouterr().err


def test_the_cli_writes_to_the_default_out_folder(store_root: Path) -> None:
    assert main(["--results", str(store_root), "--experiment", "default"]) == 0
    out = store_root / "default" / "_report"
    assert (out / "report.html").is_file()
    assert (out / "figures" / "latency_cdf.svg").is_file()


def test_compare_cli_writes_its_tables_and_refuses_an_unknown_baseline(
    store_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "compare"
    assert (
        main(["compare", "--results", str(store_root), "--baseline", "vm", "--out", str(out)]) == 0
    )
    assert "gpu-box / vm" in (out / "compare.md").read_text()
    assert {"compare.md", "compare.csv", "compare.html"} <= {p.name for p in out.iterdir()}
    assert main(["compare", "--results", str(store_root), "--baseline", "mars"]) == 2
    assert "mars" in capsys.readouterr().err


def test_open_loop_rate_levels_stay_in_the_frame_but_not_in_concurrency_tables(
    tmp_path: Path,
) -> None:
    run_dir = write_run(tmp_path, "vm", "vllm", "20261126T000000000000Z", concurrency=(8,))
    summary = json.loads((run_dir / "summary.json").read_text())
    rate_levels = []
    for index, rate in enumerate((1.0, 2.0)):
        level = dict(summary["levels"][0], mode="rate", rate_per_s=rate, level_index=index)
        rate_levels.append(level)
    summary["levels"] = rate_levels
    (run_dir / "summary.json").write_text(json.dumps(summary))
    frame = load_store(tmp_path).frame
    assert sorted(frame["rate_per_s"].unique()) == [1.0, 2.0]
    assert len(level_table(frame)) == 2
    assert throughput_by_concurrency(frame).empty
    assert write_report(load_store(tmp_path), tmp_path / "out").is_file()


def test_client_checks_show_each_levels_flags(store_root: Path) -> None:
    from harness.report.client import client_checks
    from harness.report.frame import load_store

    summary_path = sorted(store_root.rglob("summary.json"))[0]
    summary = json.loads(summary_path.read_text())
    summary["levels"][0]["client"] = {
        "processes": 2, "cpu_fraction_max": 0.97, "loop_lag_ms": {"p99": 12.5},
        "late_send_ms": {"p99": None},
    }  # fmt: skip
    summary["levels"][0]["client_flags"] = ["client_cpu_saturated", "client_loop_lag"]
    summary_path.write_text(json.dumps(summary))
    with pytest.warns(SkippedRunWarning):  # the store holds one broken run on purpose
        table = client_checks(load_store(store_root))
    run = str(summary_path.parent.relative_to(store_root))
    flagged = table[(table["run"] == run) & (table["concurrency"] == 1)].iloc[0]
    assert flagged["flags"] == "client_cpu_saturated, client_loop_lag"
    assert (flagged["client_processes"], flagged["loop_lag_p99_ms"]) == (2, 12.5)
    assert set(table[table["run"] != run]["flags"]) <= {"not recorded", ""}


def test_runs_that_differ_in_an_engine_knob_stay_apart_and_say_how(tmp_path: Path) -> None:
    """A sweep over engine.kv_cache_type: each value its own series, named by the value;
    a knob that applies to one engine kind only never tells engines apart."""
    from tests.support.report_store import write_run

    results = tmp_path / "results"
    for stamp, kv, speed in (("20261125T010000000000Z", "f16", 1.0),
                             ("20261125T020000000000Z", "q8_0", 0.8)):  # fmt: skip
        write_run(results, "vm", "llamacpp-embedded", stamp, speed=speed,
                  engine_config={"kv_cache_type": kv, "n_gpu_layers": 0})  # fmt: skip
    write_run(results, "vm", "ollama", "20261125T030000000000Z",
              engine_config={"kv_cache_type": "f16", "n_gpu_layers": 0})  # fmt: skip
    levels = latest_levels(level_table(load_store(results).frame))
    labels = set(series_labels(levels))
    assert labels == {
        "llamacpp-embedded (kv=f16)",
        "llamacpp-embedded (kv=q8_0)",
        "ollama (kv=f16)",
    }
    by_engine = levels.drop_duplicates("engine").set_index("engine")
    assert by_engine.loc["ollama", "engine_n_gpu_layers"] == ""  # not an Ollama knob
    assert by_engine.loc["llamacpp-embedded", "engine_n_gpu_layers"] == "0"
    one = levels[levels["concurrency"] == 1]
    speed = one.set_index(series_labels(one))["aggregate_output_tokens_per_s.value"]
    assert speed["llamacpp-embedded (kv=q8_0)"] < speed["llamacpp-embedded (kv=f16)"]
