"""End to end: `make bench` on the embedded llama.cpp engine with the packaged model."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harness.report.timeline import run_timeline
from tests.support.runs import make_bench, only_run_dir, read_summary

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    results = tmp_path_factory.mktemp("results")
    result = make_bench(results, CONCURRENCY="1,2,4", REQUESTS="8", MAX_TOKENS="32")
    assert result.returncode == 0, result.stderr[-3000:]
    return only_run_dir(results), result.stdout


# REQUESTS=8, raised to 4 per worker at concurrency 4
SENT = {1: 8, 2: 8, 4: 16}


def test_every_request_succeeds_at_three_levels(embedded_run: tuple[Path, str]) -> None:
    summary = read_summary(embedded_run[0])
    assert summary["status"] == "complete"
    assert [lv["concurrency"] for lv in summary["levels"]] == [1, 2, 4]
    for level in summary["levels"]:
        sent = SENT[level["concurrency"]]
        assert level["status"] == "ok"
        assert level["requests_failed"] == 0 and level["requests_ok"] == sent
        assert level["ttft_ms"]["p50"] > 0
        assert level["output_tokens_per_s_per_request"]["mean"] > 0
        assert level["output_tokens_source"] == {"usage": sent}
        # every prompt was new to the engine: it took at most its chat template's opening
        # tokens from its cache
        assert level["prefix_cache_hit_rate"] < 0.1
        assert level["reached_max_tokens_share"] == 1.0 and "short_outputs" not in level["flags"]


def test_aggregate_throughput_grows_from_one_to_four(embedded_run: tuple[Path, str]) -> None:
    levels = {lv["concurrency"]: lv for lv in read_summary(embedded_run[0])["levels"]}
    assert (
        levels[4]["aggregate_output_tokens_per_s"]
        > 1.1 * levels[1]["aggregate_output_tokens_per_s"]
    ), {c: lv["aggregate_output_tokens_per_s"] for c, lv in levels.items()}


def test_memory_is_the_engine_rss_labelled_so(embedded_run: tuple[Path, str]) -> None:
    for level in read_summary(embedded_run[0])["levels"]:
        assert level["peak_memory_kind"] == "process_rss"
        # the 253 MB model is mapped and read, so the server holds at least that much
        assert 200 < level["peak_memory_mib"] < 4000


def test_the_run_directory_describes_itself(embedded_run: tuple[Path, str]) -> None:
    run_dir, stdout = embedded_run
    environment = json.loads((run_dir / "environment.json").read_text())
    assert environment["model"]["sha256"] == (
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    )
    assert environment["engine"]["settings_in_effect"]["total_slots"] == 4
    requested = environment["engine"]["settings_requested"]
    assert (requested["parallel"], requested["kv_cache_type"]) == (4, "f16")
    assert read_summary(run_dir)["memory_baseline_mib"] == {}  # a CPU engine: no GPU baseline
    assert environment["machine"]["cpu_cores_logical"] >= 1
    lines = (run_dir / "requests.jsonl").read_text().splitlines()
    assert len(lines) == sum(SENT.values())
    assert "llama" in (run_dir / "engine.log").read_text().lower()
    header = (run_dir / "telemetry.csv").read_text().splitlines()[0]
    assert header.startswith("t_mono_s,")
    table = (run_dir / "table.md").read_text()
    assert table.count("| llamacpp-embedded") == 3
    assert "llamacpp-embedded" in stdout


def test_the_weights_and_knobs_in_effect_are_read_back(embedded_run: tuple[Path, str]) -> None:
    environment = json.loads((embedded_run[0] / "environment.json").read_text())
    weights = environment["weights"]
    assert weights["sha256"] == environment["model"]["sha256"]
    assert (weights["format"], weights["quant"]) == ("gguf", "Q4_K_M")
    assert weights["quant_from"] == "general.file_type of the file /props names"
    assert weights["loaded_path"] == environment["model"]["path"]  # /props model_path
    in_effect = environment["engine"]["settings_in_effect"]
    assert in_effect["cache_ram_mib"] == 0  # the prompt cache pinned off, as logged
    assert in_effect["gpu_layers_offloaded"] == 0
    summary = read_summary(embedded_run[0])
    assert summary["run"]["weights"] == f"Q4_K_M gguf {weights['sha256'][:12]}"


def test_engine_metrics_are_scraped_around_each_level(embedded_run: tuple[Path, str]) -> None:
    for level in read_summary(embedded_run[0])["levels"]:
        before, after = level["engine_metrics"]["before"], level["engine_metrics"]["after"]
        predicted = "llamacpp:tokens_predicted_total"
        assert after[predicted] - before[predicted] == level["output_tokens_total"]


def test_each_second_of_each_level_has_a_scrape_of_the_engines_metrics(
    embedded_run: tuple[Path, str],
) -> None:
    run_dir = embedded_run[0]
    series = pd.read_csv(run_dir / "timeseries.csv")
    for level in read_summary(run_dir)["levels"]:
        mine = series[series["level_index"] == level["level_index"]]
        scrapes = mine[
            (mine["source"] == "engine") & (mine["name"] == "llamacpp:requests_processing")
        ]
        times = sorted(scrapes["t_level_s"])
        assert times[0] < 0.5 and times[-1] >= level["wall_time_s"] - 0.5
        gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
        assert max(gaps) < 1.5, gaps  # one a second, however busy the engine's CPU
        assert len(times) >= int(level["wall_time_s"])
        in_flight = mine[(mine["source"] == "client") & (mine["name"] == "in_flight")]
        assert in_flight["value"].max() == pytest.approx(level["concurrency"], abs=0.5)
    report = run_timeline(run_dir, "embedded")
    assert report is not None and report.series["engine: running"]


def test_every_level_stands_beside_the_measured_bandwidth_ceiling(
    embedded_run: tuple[Path, str],
) -> None:
    run_dir = embedded_run[0]
    environment = json.loads((run_dir / "environment.json").read_text())
    ceilings = environment["ceilings"]
    assert ceilings["device"] == "cpu" and ceilings["memory_bandwidth_gbs"] > 0
    assert ceilings["memory_bandwidth_source"].startswith("measured")
    summary = read_summary(run_dir)
    # the packaged GGUF's tensors less the embedding lookup (tied: read once as the output)
    assert summary["ceiling"]["weights"]["weight_bytes"] == 246_587_904
    for level in summary["levels"]:
        assert 0 < level["decode_bandwidth_utilisation"] <= 1.2, level["ceiling_inputs"]
        assert level["decode_ceiling_tokens_per_s"] > 0
        assert "far_from_ceiling" not in level["flags"]  # a CPU run is never flagged
    single = summary["levels"][0]
    assert single["prefill_compute_utilisation"] > 0
    assert "% of bandwidth ceiling" in embedded_run[1]  # the run table's column
