"""What make prints: no credential from URL= on the console, and a refused config leaves
no results folder behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.runs import make_bench


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:s3cret-pw@127.0.0.1:9/v1", "engine.url='http://***@127.0.0.1:9/v1'"),
        ("http://127.0.0.1:9/v1?api_key=s3cret-pw", "engine.url='http://127.0.0.1:9/v1?***'"),
        (
            "http://u:s3cret-pw@127.0.0.1:9/v1?token=s3cret-pw",
            "engine.url='http://***@127.0.0.1:9/v1?***'",
        ),
    ],
)
def test_make_echoes_no_credential_carried_by_url(tmp_path: Path, url: str, shown: str) -> None:
    result = make_bench(tmp_path, ENGINE="openai", MODEL="x", URL=url)
    said = result.stdout + result.stderr
    assert result.returncode == 2, said[-2000:]
    assert "s3cret-pw" not in said
    assert shown in said  # the masked command line
    assert "config error: engine.url=" in said and "carries credentials" in said


def test_a_refused_config_leaves_no_results_folder(tmp_path: Path) -> None:
    results = tmp_path / "fresh"
    result = make_bench(
        results, ENGINE="openai", MODEL="x", URL="http://127.0.0.1:9/v1", ARGS="load.mode=sideways"
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "load.mode" in result.stderr
    assert not results.exists()
