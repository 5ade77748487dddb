"""The report opened in a real browser (headless Chromium): no console errors, no network requests, a
page that is not blank and fits a laptop screen; hostile names never run. Screenshots are kept in
tests/output/ (ignored by git; CI keeps them as artifacts)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from solver.cli import main
from tests.browser import Browser, ink_fraction, launch_or_skip

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "instances" / "tiny"
ENGLAND_CUT = ROOT / "instances" / "england" / "cut-350m.toml"
OUTPUT = Path(__file__).resolve().parent / "output"
LAPTOP = (1280, 800)
#: Names that would make a request or log an error if the page ever ran them as markup.
HOSTILE_PROJECT = '<script>console.error("xss-1"); fetch("http://evil.example/1")</script>'
HOSTILE_SYSTEM = "<img src=\"http://evil.example/2\" onerror=\"console.error('xss-2')\">"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_or_skip() as started:
        yield started
    assert not started.survivors, f"Chromium processes had to be killed: {started.survivors}"


def solve_with_report(scenario: Path, out: Path) -> Path:
    result = CliRunner().invoke(main, ["solve", str(scenario), "-o", str(out), "--report"])
    assert result.exit_code == 0, result.output
    return out / "report.html"


def check_page(browser: Browser, html: Path, screenshot: str, min_ink: float) -> None:
    page = browser.open(html, OUTPUT / screenshot, viewport=LAPTOP)
    assert page.problems() == []
    assert page.data_urls == ()                       # nothing embedded as a resource either: figures are inline
    assert page.width <= LAPTOP[0], f"the page is {page.width}px wide: it scrolls sideways on a laptop"
    assert page.height > 1500
    assert ink_fraction(page.screenshot) > min_ink, "the screenshot is (nearly) blank"


def test_tiny_report_opens_cleanly(browser: Browser, tmp_path: Path) -> None:
    check_page(browser, solve_with_report(TINY / "baseline.toml", tmp_path / "out"), "report-tiny.png", 0.05)


def test_hostile_names_never_run(browser: Browser, tmp_path: Path) -> None:
    inst = tmp_path / "inst"
    shutil.copytree(TINY, inst)
    projects = pd.read_csv(inst / "projects.csv", dtype=str, keep_default_na=False)
    projects["name"] = [f"{HOSTILE_PROJECT} {i}" for i in range(len(projects))]
    projects.to_csv(inst / "projects.csv", index=False)
    systems = pd.read_csv(inst / "systems.csv", dtype=str, keep_default_na=False)
    systems["name"] = [f"{HOSTILE_SYSTEM} {i}" for i in range(len(systems))]
    systems.to_csv(inst / "systems.csv", index=False)
    (tmp_path / "base.toml").write_text(f'instance = "{inst.as_posix()}"\nmodel = "need-first"\n')
    cut = tmp_path / "cut.toml"
    cut.write_text(f'instance = "{inst.as_posix()}"\nmodel = "need-first"\nbaseline = "base.toml"\n'
                   '[[envelope.cuts]]\nyear = 2025\npot = "capital"\namount = 3.0\n')
    html = solve_with_report(cut, tmp_path / "out")
    assert "&lt;script&gt;" in html.read_text(encoding="utf-8")      # the names are on the page, as text
    check_page(browser, html, "report-hostile.png", 0.05)


@pytest.mark.slow
def test_england_cut_report_opens_cleanly(browser: Browser, tmp_path: Path) -> None:
    """The issue's report: envelope solve instances/england/cut-350m.toml --report (42 systems, the cut against
    its baseline); its screenshot is the CI artifact tests/output/report-england-cut-350m.png."""
    html = solve_with_report(ENGLAND_CUT, tmp_path / "out")
    check_page(browser, html, "report-england-cut-350m.png", 0.08)
