"""The exploration notebook still runs against a store (BENCH_RESULTS) and draws its figure."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.report_store import build_store

nbformat = pytest.importorskip("nbformat", reason="nbformat is in the dev extra")
nbclient = pytest.importorskip("nbclient", reason="nbclient is in the dev extra")
pytest.importorskip("ipykernel", reason="ipykernel is in the dev extra")

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "explore_store.ipynb"


def test_the_notebook_runs_against_a_store_and_draws_a_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BENCH_RESULTS", str(build_store(tmp_path / "results")))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(REPO / "notebooks")}},
    )
    client.execute()
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output["output_type"] == "error"]
    text = "".join(output.get("text", "") for output in outputs)
    assert "6 runs" in text
    assert any("image/png" in output.get("data", {}) for output in outputs)
