"""The whole report from a store of older and current runs: byte-identical when
regenerated, one self-contained report.html, and that page as a browser draws it."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from harness.report.frame import SkippedRunWarning, Store, load_store
from harness.report.html import write_report
from harness.report.view import fmt
from tests.support.report_store import add_current_runs, build_store
from tests.unit.test_report import reference_levels

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FIGURES = 6


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    results = add_current_runs(build_store(tmp_path_factory.mktemp("store") / "results"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedRunWarning)
        return load_store(results)


@pytest.fixture(scope="module")
def report(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(store, tmp_path_factory.mktemp("report"))


def test_the_report_is_byte_identical_when_regenerated(
    store: Store, report: Path, tmp_path: Path
) -> None:
    first = report.parent
    write_report(store, tmp_path)
    names = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert {n.suffix for n in names} == {".md", ".csv", ".png", ".svg", ".html"}
    assert names == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    for name in names:
        assert (first / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_report_html_needs_no_network(report: Path) -> None:
    html = report.read_text()
    assert "<script" not in html and "<link" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html)


def test_report_html_holds_the_tables_and_every_figure_inline(report: Path) -> None:
    html = report.read_text()
    # 3 throughput, comparison, client checks, runs, metric definitions
    assert html.count("<table>") >= 7
    interrupted = reference_levels()[2]["output_tokens_per_s_per_request"]["mean"]
    assert "8 concurrent" in html and f"{fmt(interrupted)} (interrupted)" in html
    images = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html)
    assert len(images) == FIGURES
    for encoded in images:
        assert base64.b64decode(encoded).lstrip().startswith(b"<?xml")
    assert "skipped" in html  # the half-written run is reported, not hidden
    assert "short_outputs (c=8)" in html and "(whole level)" in html


def _browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def test_a_headless_browser_draws_the_report(report: Path, tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip(f"no headless browser found (looked for {', '.join(BROWSERS)})")
    screenshot = tmp_path / "report.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",  # tests may run as root in a container
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={screenshot}",
            "--window-size=1280,2000",
            report.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    pixels = image.imread(screenshot)
    assert pixels.shape[:2] == (2000, 1280)
    colours = np.unique(pixels[..., :3].reshape(-1, 3), axis=0)
    assert len(colours) > 50, "the page looks blank"
    # tables and figures, not only a white page with a heading: the lower half is drawn too
    assert pixels[1000:, :, :3].std() > 0.05
