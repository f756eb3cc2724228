"""Reports of runs in today's shape beside older ones: what makes a cell (the workload's
shape, engine arguments and version), steady throughput first, output lengths, the prefix
cache, flags, and percentiles shown with their sample counts, never from too few."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

from harness.report.cells import CELL_KEYS, latest_levels, series_labels
from harness.report.client import client_checks, client_view
from harness.report.comparison import engine_comparison
from harness.report.frame import SkippedRunWarning, Store, level_table, load_store
from harness.report.html import write_report
from harness.report.tables import throughput_by_concurrency, write_tables
from harness.report.view import fmt, percentile_cell
from tests.support.report_store import (
    REFERENCE_RUN,
    add_current_runs,
    build_store,
    write_current_run,
)

SHORT = "vllm (prompt=128)"  # half its requests at concurrency 8 stopped at 40 tokens
CHUNKED = "vllm (prompt=512)"  # two tokens per chunk, a quarter of each prompt cached


@pytest.fixture
def current(tmp_path: Path) -> Store:
    return load_store(add_current_runs(tmp_path / "results"))


@pytest.fixture
def mixed(tmp_path: Path) -> Store:
    """The older runs of build_store and the current ones, in one store."""
    results = add_current_runs(build_store(tmp_path / "results"))
    with pytest.warns(SkippedRunWarning):
        return load_store(results)


def rows_of(markdown: str, title: str) -> list[dict[str, str]]:
    """The rows of the markdown table under the heading that starts with `title`, each by
    its column titles."""
    section = markdown.split(f"### {title}", 1)[1].split("\n### ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    headers = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    return [dict(zip(headers, row, strict=True)) for row in rows]


def row_where(rows: list[dict[str, str]], **cells: str) -> dict[str, str]:
    (row,) = [row for row in rows if all(row[k.replace("_", " ")] == v for k, v in cells.items())]
    return row


def test_runs_that_differ_only_in_prompt_length_are_two_series(current: Store) -> None:
    levels = latest_levels(level_table(current.frame))
    assert set(series_labels(levels)) == {SHORT, CHUNKED}
    assert set(levels["workload_prompt_tokens"]) == {"128", "512"}
    assert len(levels) == 8  # neither run supersedes the other


def test_a_cell_is_the_workloads_shape_engine_arguments_and_version(tmp_path: Path) -> None:
    for key in ("workload_kind", "workload_prompt_tokens", "workload_prompt_tokens_stddev",
                "workload_shared_prefix_tokens", "workload_api", "workload_ignore_eos",
                "engine_extra_args", "engine_version"):  # fmt: skip
        assert key in CELL_KEYS
    results = tmp_path / "results"
    version = {"engine": "vllm", "version": "0.11.0"}
    runs = (
        ("20261126T010000000000Z", version, {}, {}),
        ("20261126T020000000000Z", {**version, "version": "0.11.1"}, {}, {}),
        ("20261126T030000000000Z", version, {"extra_args": ["--enforce-eager"]}, {}),
        ("20261126T040000000000Z", version, {}, {"shared_prefix_tokens": 256}),
        ("20261126T050000000000Z", version, {}, {"api": "completions"}),
        ("20261126T060000000000Z", version, {}, {"ignore_eos": False}),
        ("20261126T070000000000Z", version, {}, {"prompt_tokens_stddev": 32.0}),
    )
    for stamp, engine_version, engine, workload in runs:
        write_current_run(results, "vm", "vllm", stamp, version=engine_version,
                          engine_config=engine, workload=workload)  # fmt: skip
    levels = latest_levels(level_table(load_store(results).frame))
    labels = sorted(set(series_labels(levels)))
    assert len(labels) == len(runs)
    assert (
        "vllm (version=0.11.1, args=none, api=chat, prompt_sd=0, prefix=0, ignore_eos=true)"
        in labels
    )
    assert any("args=--enforce-eager" in label for label in labels)
    assert any("prefix=256" in label for label in labels)
    assert any("api=completions" in label for label in labels)
    assert any("ignore_eos=false" in label for label in labels)
    assert any("prompt_sd=32" in label for label in labels)


def test_older_runs_keep_unrecorded_identity_apart_and_named(mixed: Store) -> None:
    runs = mixed.frame.drop_duplicates("run_path").set_index("engine")
    old, new = runs.loc["ollama"].iloc[0], runs.loc["vllm"].iloc[0]
    assert old["workload_shared_prefix_tokens"] == "unknown"  # not recorded before
    assert old["workload_prompt_tokens"] == ""  # the prompts workload has no such knob
    assert old["engine_version"] == "2026.10.11549 b0-unknown"
    assert (new["workload_shared_prefix_tokens"], new["engine_version"]) == ("0", "0.11.0")
    # engine and workload names tell these series apart: labels stay short
    labels = set(series_labels(latest_levels(level_table(mixed.frame))))
    assert "vllm (parallel=4, kv=auto, workload=synthetic, prompt=512) @ vm" in labels
    assert "ollama (parallel=4, kv=f16, workload=original) @ vm" in labels


def test_the_frame_carries_the_new_level_figures_and_flags(current: Store) -> None:
    levels = level_table(current.frame)
    short = levels[(levels["workload_prompt_tokens"] == "128") & (levels["concurrency"] == 8)]
    row = short.iloc[0]
    assert row["level_flags"] == "short_outputs"
    assert row["output_tokens_mean.value"] == 52.0  # 8 of 16 at 40 tokens, 8 at 64
    assert row["reached_max_tokens_share.value"] == 0.5
    assert pd.isna(row["prefix_cache_hit_rate.value"])  # the engine did not say
    assert row["steady_output_tokens_per_s.value"] > 0
    assert row["finish_reasons"] == "length: 8, stop: 8"
    assert "ttft_ms.p99" not in levels.columns  # no level has 100 requests
    chunked = levels[levels["workload_prompt_tokens"] == "512"]
    assert set(chunked["level_flags"]) == {"multi_token_chunks"}
    assert set(chunked["prefix_cache_hit_rate.value"]) == {0.25}
    assert set(chunked["tokens_per_chunk.value"]) == {2.0}


def test_the_engine_comparison_shows_output_lengths_cache_and_flags(
    current: Store, tmp_path: Path
) -> None:
    table = engine_comparison(current.frame).set_index("series")
    assert table.loc[SHORT, "at_concurrency"] == 8
    assert table.loc[SHORT, "flags"] == "short_outputs (c=8)"
    assert table.loc[CHUNKED, "flags"] == "multi_token_chunks (c=1, 2, 4, 8)"
    write_tables(current.frame, tmp_path)
    rows = rows_of((tmp_path / "engine_comparison.md").read_text(), "Engines compared")
    short, chunked = (row_where(rows, prompt_tokens=length) for length in ("128", "512"))
    assert short["mean output tokens (tok)"] == "52.0"
    assert short["reached max_tokens (fraction)"] == "0.50"
    assert short["flags"] == "short_outputs (c=8)"
    assert short["prefix-cache hit rate (fraction)"] == "-"
    assert chunked["prefix-cache hit rate (fraction)"] == "0.25"
    assert chunked["flags"] == "multi_token_chunks (c=1, 2, 4, 8)"


def test_throughput_leads_with_the_steady_window(current: Store, tmp_path: Path) -> None:
    views = write_tables(current.frame, tmp_path)
    titles = [view.title for view in views["throughput_by_concurrency"]]
    assert titles[0] == "steady tok/s (tok/s)"
    assert "aggregate tok/s whole level (tok/s)" in titles
    comparison = views["engine_comparison"][0]
    assert comparison.title == "Engines compared at 8 concurrent"
    assert comparison.headers[:3] == ["engine", "prompt tokens", "steady tok/s (tok/s)"]
    table = throughput_by_concurrency(current.frame)
    assert set(table["aggregate_window"]) == {"steady window"}
    assert (table["aggregate_tok_s"] == table["steady_output_tokens_per_s"]).all()


def test_an_older_run_shows_its_whole_level_figure_named_so(mixed: Store, tmp_path: Path) -> None:
    write_tables(mixed.frame, tmp_path)
    text = (tmp_path / "engine_comparison.md").read_text()
    at_2 = json.loads((REFERENCE_RUN / "summary.json").read_text())["levels"][1]
    assert f"{fmt(at_2['aggregate_output_tokens_per_s'])} (whole level)" in text
    steady = (tmp_path / "throughput_by_concurrency.md").read_text().split("\n### ")[0]
    assert "(whole level)" in steady and "Marked (whole level)" in steady


def test_percentiles_show_their_count_and_no_p99_from_fewer_than_100(
    mixed: Store, tmp_path: Path
) -> None:
    write_tables(mixed.frame, tmp_path, concurrency=8)
    rows = rows_of((tmp_path / "engine_comparison.md").read_text(), "Engines compared")
    level = json.loads((REFERENCE_RUN / "summary.json").read_text())["levels"][3]["ttft_ms"]
    vm_llama = row_where(rows, machine="vm", engine="llamacpp-embedded", parallel="4")
    assert vm_llama["TTFT p50 (ms)"] == f"{fmt(level['p50'])} (n=16)"
    # the stored p99 of 16 requests is not shown: the max is, named so
    assert vm_llama["TTFT p99 (ms)"] == f"max {fmt(level['max'])} (n=16)"
    assert fmt(level["p99"]) not in (tmp_path / "engine_comparison.md").read_text()


def test_a_percentile_cell_names_its_count() -> None:
    assert percentile_cell("p99", 12.34, 20.0, 100) == "12.3 (n=100)"
    assert percentile_cell("p99", 12.34, 20.0, 99) == "max 20.0 (n=99)"
    assert percentile_cell("p90", None, 20.0, 9) == "max 20.0 (n=9)"
    assert percentile_cell("p50", 3.0, 4.0, 1) == "3.0 (n=1)"
    assert percentile_cell("p99", None, None, 0) == "-"


def test_client_checks_show_the_clients_wait_and_its_flag(current: Store) -> None:
    table = client_checks(current)
    flagged = table[(table["concurrency"] == 8) & table["run"].str.contains("T01")].iloc[0]
    assert "client_wait" in flagged["flags"]
    assert flagged["client_wait_p50_ms"] == pytest.approx(2.0, abs=1e-3)
    view = client_view(table)
    assert "client wait p99 (ms)" in view.headers
    row = next(r for r in view.rows if r[0] == flagged["run"] and r[3] == "8")
    assert row[7:9] == ["2.00 (n=16)", "max 2.00 (n=16)"]
    assert "client_wait" in view.caption


def test_older_and_current_runs_render_in_one_report(mixed: Store, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        html = write_report(mixed, tmp_path).read_text()
    assert "short_outputs (c=8)" in html and "multi_token_chunks" in html
    assert "mean output tokens" in html and "prefix-cache hit rate" in html
    assert "(whole level)" in html  # the older runs, named so
