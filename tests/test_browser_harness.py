"""The headless-Chromium harness (tests/browser.py) can fail: it reports console errors, uncaught errors and
requests, tells a blank screenshot from one with content, stops a hung page and leaves no Chromium behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.browser import (
    REQUIRE_ENV,
    Browser,
    BrowserError,
    browser_available,
    ink_fraction,
    is_blank,
    launch_or_skip,
    open_in_browser,
    require_browser,
)

OUTPUT = Path(__file__).resolve().parent / "output" / "browser_harness"  # ignored by git; a CI artifact
PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the module: skipped without one, failed in CI (ENVELOPE_REQUIRE_BROWSER=1)."""
    with launch_or_skip() as started:
        yield started


def page(tmp_path: Path, body: str, head: str = "") -> Path:
    path = tmp_path / "page.html"
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'>{head}</head><body>{body}</body></html>")
    return path


def test_console_error_is_reported(browser: Browser, tmp_path: Path) -> None:
    report = browser.open(page(tmp_path, "<p>text</p><script>console.error('x'); console.log('fine')</script>"),
                          OUTPUT / "console-error.png")
    assert report.console_errors == ("x",)
    assert report.page_errors == ()
    assert report.requests == ()
    assert report.problems() == ["console error: x"]


def test_uncaught_exception_is_reported(browser: Browser, tmp_path: Path) -> None:
    body = "<script>throw new TypeError('boom')</script><script>Promise.reject(new Error('later'))</script>"
    report = browser.open(page(tmp_path, body), OUTPUT / "page-error.png")
    assert report.page_errors == ("TypeError: boom", "Error: later")


def test_requests_are_recorded_and_aborted_and_data_urls_kept_apart(browser: Browser,
                                                                     tmp_path: Path) -> None:
    body = (f"<img src='http://example.com/a.png'><img src='data:image/png;base64,{PNG_1PX}'><img src='b.png'>"
            "<script>fetch('https://cdn.example/x.js').then(() => console.log('LOADED'))</script>"
            "<div style='height: 9000px'></div><img loading='lazy' src='http://lazy.example/never-requested.png'>")
    (tmp_path / "b.png").write_bytes(b"")  # a file next to the page is still a request: the page must be standalone
    report = browser.open(page(tmp_path, body), OUTPUT / "requests.png")
    local = (tmp_path / "b.png").as_uri()
    assert set(report.requests) == {"http://example.com/a.png", "https://cdn.example/x.js", local,
                                    "http://lazy.example/never-requested.png"}
    assert report.data_urls == (f"data:image/png;base64,{PNG_1PX}"[:80],)
    assert "LOADED" not in report.console_errors
    assert "TypeError: Failed to fetch" in report.page_errors


def test_blank_page_is_blank(browser: Browser, tmp_path: Path) -> None:
    report = browser.open(page(tmp_path, "", "<style>body { background: #fdf6e3 }</style>"), OUTPUT / "blank.png")
    assert report.problems() == []
    assert ink_fraction(report.screenshot) == 0.0
    assert is_blank(report.screenshot)


def test_content_is_not_blank_and_the_screenshot_is_the_full_page(browser: Browser,
                                                                  tmp_path: Path) -> None:
    body = ("<h1>Envelope report</h1><p>Who misses out under a £350m cut.</p>"
            "<svg width='400' height='200'><rect x='10' y='10' width='300' height='150' fill='steelblue'/></svg>"
            "<div style='height: 2400px'></div><p>end of the page</p>")
    report = browser.open(page(tmp_path, body), OUTPUT / "content.png")
    assert report.problems() == []
    assert report.data_urls == ()
    assert not is_blank(report.screenshot)
    assert ink_fraction(report.screenshot) > 0.01
    assert report.height > 2400
    assert report.width == 1280
    with Image.open(report.screenshot) as image:
        assert image.size == (report.width, report.height)


def test_a_closed_browser_leaves_no_process(tmp_path: Path) -> None:
    with launch_or_skip() as started:
        started.open(page(tmp_path, "<p>again</p>"), OUTPUT / "again.png")
        assert started.alive()  # the browser's processes are seen...
    assert len(started.processes) >= 2
    assert started.alive() == []  # ...and gone, without having to be killed
    assert started.survivors == []


@pytest.mark.slow
def test_one_shot_open(tmp_path: Path) -> None:
    require_browser()
    report = open_in_browser(page(tmp_path, "<h1>One shot</h1>"), OUTPUT / "one-shot.png")
    assert report.problems() == []
    assert not is_blank(report.screenshot)


@pytest.mark.slow
def test_a_hung_page_is_stopped_within_the_time_limit(tmp_path: Path) -> None:
    """A script that never returns after the load event: the watchdog kills Chromium, the call raises."""
    hung = page(tmp_path, "<script>addEventListener('load', () => setTimeout(() => { for (;;) {} }, 0))</script>")
    require_browser()
    with Browser(timeout=1) as started:
        with pytest.raises(BrowserError, match="killed"):
            started.open(hung, OUTPUT / "hung.png")
    assert started.killed
    assert started.alive() == []


def test_no_browser_skips_locally_and_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVELOPE_CHROMIUM", "/nonexistent/chromium")
    assert "not an executable file" in (browser_available() or "")
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="not an executable"):
        require_browser()
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE_ENV}=1"):
        require_browser()
    with pytest.raises(pytest.fail.Exception):
        launch_or_skip()
