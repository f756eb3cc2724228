"""A comparison across different weights says so, naming what each side served; one across
the same file does not (both directions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.report.compare import write_compare
from harness.report.comparison import comparison_view, engine_comparison
from harness.report.frame import load_store
from harness.report.headline import headline
from tests.support.report_store import write_current_run

GGUF = ("Q4_K_M", "Q4_K_M gguf a5fd3b62230a", "a5fd3b62230a...:Q4_K_M")
LIBRARY = ("Q8_0", "Q8_0 Ollama library gemma3:270m 3bc1d2e4f5a6", "3bc1d2e4f5a6...:Q8_0")


def served(run_dir: Path, weights: tuple[str, str, str]) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["run"].update(quant=weights[0], weights=weights[1], weights_id=weights[2])
    (run_dir / "summary.json").write_text(json.dumps(summary))


def store(tmp_path: Path, ollama_weights: tuple[str, str, str]) -> Path:
    results = tmp_path / "results"
    served(write_current_run(results, "vm", "llamacpp-embedded", "20261201T010000000000Z"), GGUF)
    other = write_current_run(results, "vm", "ollama", "20261201T020000000000Z", speed=1.5)
    served(other, ollama_weights)
    return results


def test_rows_of_other_weights_carry_weights_differ_naming_both(tmp_path: Path) -> None:
    table = engine_comparison(load_store(store(tmp_path, LIBRARY)).frame)
    by_engine = dict(zip(table["engine"], table["flags"], strict=True))
    assert (
        "weights_differ (this: Q4_K_M gguf a5fd3b62230a; also in the table: ollama"
        in (by_engine["llamacpp-embedded"])
    )
    assert "Q8_0 Ollama library gemma3:270m" in by_engine["llamacpp-embedded"]
    assert by_engine["ollama"].startswith("weights_differ (this: Q8_0 Ollama library")
    view = comparison_view(table, 1)
    assert "weights served" in view.headers
    assert "a difference between them is not the engine's alone" in view.caption


def test_rows_of_the_same_file_carry_no_weights_flag(tmp_path: Path) -> None:
    table = engine_comparison(load_store(store(tmp_path, GGUF)).frame)
    assert not any("weights_differ" in flags for flags in table["flags"])
    view = comparison_view(table, 1)
    assert "weights served" not in view.headers  # the same for every row: in the caption
    assert "weights served Q4_K_M gguf a5fd3b62230a" in view.caption
    assert "not the engine's alone" not in view.caption


@pytest.mark.parametrize(("other", "differs"), [(LIBRARY, True), (GGUF, False)])
def test_compare_by_engine_names_what_each_side_served(
    tmp_path: Path, other: tuple[str, str, str], differs: bool
) -> None:
    frame = load_store(store(tmp_path, other)).frame
    view = write_compare(frame, tmp_path / "out", by="engine")
    assert f"llamacpp-embedded = served {GGUF[1]}" in view.caption
    assert f"ollama = served {other[1]}" in view.caption
    assert ("weights_differ: the difference is not the engine's alone" in view.caption) is differs


@pytest.mark.parametrize(("other", "differs"), [(LIBRARY, True), (GGUF, False)])
def test_the_headline_ranks_no_engines_across_weights_unsaid(
    tmp_path: Path, other: tuple[str, str, str], differs: bool
) -> None:
    sentences = " ".join(headline(load_store(store(tmp_path, other))))
    assert ("The rows serve different weights" in sentences) is differs
