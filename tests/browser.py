"""Headless-Chromium harness for tests of self-contained HTML pages (the ``envelope report`` file).

A page is opened from disk with every network request recorded and aborted, and comes back as a
``PageReport``: console errors, uncaught page errors, requests, ``data:`` URLs, document size and a
full-page PNG screenshot. Playwright drives the system Chromium (Debian's ``chromium``; never a
browser download). Tests skip when no browser is available, except with ``ENVELOPE_REQUIRE_BROWSER=1``
(set by ``.ci/run``), where they fail: CI cannot pass by skipping them.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

#: Flags for Chromium as root on a closed network: no sandbox (root), no GPU, and none of Chromium's
#: own connections (background networking, component updates, sync), which the network refuses.
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync")
REQUIRE_ENV = "ENVELOPE_REQUIRE_BROWSER"
EXECUTABLE_ENV = "ENVELOPE_CHROMIUM"
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Resources a page loads from its DOM: found after loading to list data: URLs (Chromium raises no
# request event for them) and resources never requested (a lazy image below the fold).
_DOM_URLS = """() => {
  const urls = [];
  const add = (u) => {
    if (!u) return;
    try { urls.push(new URL(String(u), document.baseURI).href); } catch (error) { urls.push(String(u)); }
  };
  for (const e of document.querySelectorAll("img")) { add(e.currentSrc || e.src); }
  for (const e of document.querySelectorAll("image")) { add(e.href && e.href.baseVal); }
  for (const e of document.querySelectorAll("script[src], iframe[src], embed[src], source[src], video[src],"
                                            + " audio[src], track[src]")) { add(e.src); }
  for (const e of document.querySelectorAll("link[href]")) {
    if (!/^(alternate|canonical|author|help|license|next|prev|search|bookmark)$/i.test(e.rel)) add(e.href);
  }
  for (const e of document.querySelectorAll("object[data]")) { add(e.data); }
  for (const e of document.querySelectorAll("*")) {
    for (const m of getComputedStyle(e).backgroundImage.matchAll(/url\\("?(.*?)"?\\)/g)) add(m[1]);
  }
  const d = document.documentElement, b = document.body || d;
  return {urls, width: Math.max(d.scrollWidth, b.scrollWidth), height: Math.max(d.scrollHeight, b.scrollHeight)};
}"""


class BrowserError(RuntimeError):
    """Chromium could not be started, or a page did not load (or answer) within the time limit."""


@dataclass(frozen=True)
class PageReport:
    """What a page did when opened in headless Chromium."""

    url: str
    console_errors: tuple[str, ...]  # console messages of level error ("Failed to load resource" included)
    page_errors: tuple[str, ...]  # uncaught exceptions and unhandled promise rejections
    requests: tuple[str, ...]  # every URL other than the page itself (http(s), file, ws, ...) that the page
    #   requested (all aborted) or that its DOM refers to as a resource (e.g. a lazy image never requested)
    data_urls: tuple[str, ...]  # data: URLs the page uses (fine for a self-contained page), cut to 80 chars
    width: int  # the document's scroll width and height in CSS pixels
    height: int
    screenshot: Path  # the full-page PNG

    def problems(self) -> list[str]:
        """One line per console error, page error and request: empty for a clean self-contained page."""
        return ([f"console error: {m}" for m in self.console_errors] + [f"page error: {m}" for m in self.page_errors]
                + [f"request: {u}" for u in self.requests])


@dataclass
class _Record:
    page_url: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    in_flight: int = 0
    last_event: float = field(default_factory=time.monotonic)

    def request(self, url: str) -> None:
        in_page = url.startswith(("data:", "about:", "blob:"))  # no fetch: data: URLs are listed apart
        if url.split("#", 1)[0] != self.page_url and not in_page and url not in self.requests:
            self.requests.append(url)


def chromium_executable() -> str | None:
    """The Chromium to drive: ``$ENVELOPE_CHROMIUM``, else the first of chromium, chromium-browser, google-chrome
    on PATH."""
    if os.environ.get(EXECUTABLE_ENV):
        return os.environ[EXECUTABLE_ENV]
    return next((path for name in _CANDIDATES if (path := shutil.which(name))), None)


def browser_available() -> str | None:
    """None when Playwright and a Chromium are installed, else the reason (for a skip message)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install '.[test]')"
    executable = chromium_executable()
    if executable is None:
        return "no Chromium on PATH (apt-get install chromium chromium-driver, or set ENVELOPE_CHROMIUM)"
    if not os.access(executable, os.X_OK):
        return f"Chromium at {executable} is not an executable file"
    return None


def browser_required() -> bool:
    """Whether a missing browser fails tests instead of skipping them (CI sets ENVELOPE_REQUIRE_BROWSER=1)."""
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str) -> None:
    """Skip the test with ``reason``, or fail it when ENVELOPE_REQUIRE_BROWSER=1."""
    if browser_required():
        pytest.fail(f"{REQUIRE_ENV}=1 but the browser tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def require_browser() -> None:
    """Skip (locally) or fail (in CI) the calling test when no browser is available."""
    reason = browser_available()
    if reason is not None:
        skip_or_fail(reason)


class _Driver:
    """Playwright's node driver, shared by the Browsers open at once (its sync API allows one driver per thread),
    stopped when the last one closes."""

    def __init__(self) -> None:
        self.users = 0
        self.processes: dict[int, int] = {}

    def acquire(self) -> Any:
        from playwright.sync_api import sync_playwright

        if self.users == 0:
            before = _children(os.getpid())
            self.playwright = sync_playwright().start()
            self.processes = _identify(_children(os.getpid()) - before)
        self.users += 1
        return self.playwright

    def release(self) -> list[int]:
        """Stop the driver if this was its last user; the pids that had to be killed."""
        self.users -= 1
        if self.users > 0:
            return []
        try:
            self.playwright.stop()
        finally:
            survivors = _reap(self.processes)
        return survivors

    def pids(self) -> set[int]:
        return set(self.processes)


_DRIVER = _Driver()


class Browser:
    """One headless Chromium; ``open`` opens each page in a fresh context. Use it as a context manager: on exit the
    browser (and Playwright's driver, when no other Browser uses it) is closed, and any of its processes still alive
    after 5 s is killed by pid, so no Chromium outlives it, whatever the test did. Each ``open`` is bounded in time:
    every step by ``timeout`` seconds, and a watchdog kills Chromium when the whole call overruns (e.g. a page
    whose script never returns); the call then raises ``BrowserError``."""

    def __init__(self, executable: str | None = None, timeout: float = 30.0) -> None:
        executable = executable or chromium_executable()
        if executable is None:
            raise BrowserError(browser_available() or "no Chromium")
        self.executable = executable
        self.timeout = timeout
        self.processes: dict[int, int] = {}  # pid -> start time, of this Chromium's processes
        self.survivors: list[int] = []  # pids that had to be killed on close (expected: none)
        self.killed = False  # whether the watchdog killed Chromium
        playwright = _DRIVER.acquire()
        before = _descendants(_DRIVER.pids())
        # Chromium leaves its singleton socket folders (org.chromium.Chromium.*) in TMPDIR: give it one of its own,
        # removed on close
        self._tmp = tempfile.mkdtemp(prefix="envelope-chromium-")
        try:
            started = time.perf_counter()
            self._browser = playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS),
                                                       timeout=timeout * 1000, env={**os.environ, "TMPDIR": self._tmp})
            self.launch_seconds = time.perf_counter() - started
            self.version: str = self._browser.version
        except Exception as error:
            self.survivors = _DRIVER.release()
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise BrowserError(f"Chromium at {executable} failed to start: {str(error).splitlines()[0]}") from error
        self._roots = _descendants(_DRIVER.pids()) - before - _DRIVER.pids()
        self._track()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self, html: Path, screenshot: Path, *, viewport: tuple[int, int] = (1280, 800),
             settle: float = 0.15) -> PageReport:
        """Open ``html`` from disk, wait for its load event and until no request has been in flight for ``settle``
        seconds, and write a full-page PNG to ``screenshot``. Requests other than the page itself are recorded and
        aborted; requests started later than that (a timer firing after ``settle``) are not seen."""
        html, screenshot = Path(html).resolve(), Path(screenshot)
        record = _Record(html.as_uri())
        watchdog = threading.Timer(self.timeout + min(self.timeout, 5), self._kill)
        watchdog.daemon = True
        watchdog.start()
        context = None
        try:
            context = self._browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                                service_workers="block")
            context.set_default_timeout(self.timeout * 1000)
            context.route("**/*", lambda route: route.continue_() if route.request.url.split("#", 1)[0]
                          == record.page_url else route.abort())
            page = context.new_page()
            page.on("console", lambda m: record.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: record.page_errors.append(f"{e.name}: {e.message}" if e.name else str(e)))
            page.on("websocket", lambda ws: record.request(ws.url))
            context.on("request", lambda r: (record.request(r.url), _count(record, +1)))
            context.on("requestfinished", lambda r: _count(record, -1))
            context.on("requestfailed", lambda r: _count(record, -1))
            page.goto(record.page_url, wait_until="load")
            deadline = time.monotonic() + self.timeout
            while record.in_flight > 0 or time.monotonic() - record.last_event < settle:
                if time.monotonic() > deadline:
                    raise BrowserError(f"{html}: requests still in flight after {self.timeout:g} s")
                page.wait_for_timeout(25)
            found = page.evaluate(_DOM_URLS)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=screenshot, full_page=True, animations="disabled", caret="hide")
        except BrowserError:
            raise
        except Exception as error:
            killed = " (the browser was killed: it overran the time limit)" if self.killed else ""
            raise BrowserError(f"{html}: {str(error).splitlines()[0]}{killed}") from error
        finally:
            watchdog.cancel()
            try:
                if context is not None:
                    context.close()
            except Exception:  # the watchdog killed the browser: close() reaps it
                pass
        for url in found["urls"]:
            record.request(url)
        data_urls = tuple(dict.fromkeys(u[:80] for u in found["urls"] if u.startswith("data:")))
        return PageReport(record.page_url, tuple(record.console_errors), tuple(record.page_errors),
                          tuple(record.requests), data_urls, int(found["width"]), int(found["height"]), screenshot)

    def close(self) -> None:
        """Close the browser (and the driver if no other Browser uses it); kill by pid whatever is left after 5 s."""
        self._track()
        try:
            self._browser.close()
        except Exception:  # already closed, or killed by the watchdog
            pass
        try:
            self.survivors = _reap(self.processes)
        finally:
            self.survivors += _DRIVER.release()
            shutil.rmtree(self._tmp, ignore_errors=True)

    def alive(self) -> list[int]:
        """The pids of this browser's processes that are still running."""
        return _alive(self.processes)

    def _track(self) -> None:
        for pid, start in _identify(self._roots | _descendants(self._roots)).items():
            self.processes.setdefault(pid, start)

    def _kill(self) -> None:
        """The watchdog: kill Chromium; the driver then tells the waiting call that the browser has closed."""
        self.killed = True
        self._track()
        for pid in _alive(self.processes):
            _signal(pid, signal.SIGKILL)


def open_in_browser(html: Path, screenshot: Path, *, viewport: tuple[int, int] = (1280, 800), settle: float = 0.15,
                    timeout: float = 30.0) -> PageReport:
    """Open one page in a Chromium started for it (see ``Browser.open``); the browser is gone on return."""
    with Browser(timeout=timeout) as browser:
        return browser.open(html, screenshot, viewport=viewport, settle=settle)


def launch_or_skip(timeout: float = 30.0) -> Browser:
    """A started ``Browser``; skips the test when none can start, or fails it with ENVELOPE_REQUIRE_BROWSER=1.
    A test module's fixture::

        @pytest.fixture(scope="module")
        def browser() -> Iterator[Browser]:
            with launch_or_skip() as started:
                yield started
    """
    require_browser()
    try:
        return Browser(timeout=timeout)
    except BrowserError as error:
        skip_or_fail(str(error))
        raise  # unreachable: skip_or_fail raises


def ink_fraction(png: Path, tolerance: int = 8) -> float:
    """The fraction of pixels that differ from the background (the image's most common colour) by more than
    ``tolerance`` (of 255) in some channel."""
    from PIL import Image  # Pillow: a dependency of matplotlib

    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGBA"))
    packed = np.ascontiguousarray(pixels).view(np.uint32).ravel()
    colours, counts = np.unique(packed[:: max(1, packed.size // 200_000)], return_counts=True)
    background = np.frombuffer(colours[np.argmax(counts)].tobytes(), dtype=np.uint8).astype(np.int16)
    differs = (np.abs(pixels.astype(np.int16) - background) > tolerance).any(axis=-1)
    return float(differs.mean())


def is_blank(png: Path, min_ink: float = 0.001) -> bool:
    """Whether a screenshot shows (almost) nothing: fewer than ``min_ink`` of its pixels differ from the background.
    The default takes a short heading on a 1280x800 page (0.2%) as content; an empty page has 0. For a page that
    must show figures, assert a larger ``ink_fraction`` (a 300x150 box on a 1280x2800 page is 1.3%)."""
    return ink_fraction(png) < min_ink


def _count(record: _Record, step: int) -> None:
    record.in_flight += step
    record.last_event = time.monotonic()


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from the state on (the name may hold spaces)


def _start_time(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def _zombie(pid: int) -> bool:
    fields = _stat(pid)
    return fields is None or fields[0] in {"Z", "X"}


def _parents() -> dict[int, list[int]]:
    """Parent pid -> its live children (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _stat(int(entry.name))
        if fields and fields[0] not in {"Z", "X"}:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def _children(pid: int) -> set[int]:
    return set(_parents().get(pid, []))


def _descendants(roots: set[int]) -> set[int]:
    """The live descendants of ``roots``."""
    children = _parents()
    found, todo = set(), list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _identify(pids: set[int]) -> dict[int, int]:
    """pid -> start time (a pid may be reused once its process has ended; the pair is unique)."""
    return {pid: start for pid in pids if (start := _start_time(pid)) is not None}


def _alive(processes: dict[int, int]) -> list[int]:
    return [pid for pid, start in processes.items() if _start_time(pid) == start and not _zombie(pid)]


def _reap(processes: dict[int, int], grace: float = 5.0) -> list[int]:
    """Wait up to ``grace`` seconds for the processes to end, then kill the rest; the pids killed."""
    deadline = time.monotonic() + grace
    while _alive(processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = _alive(processes)
    for pid in survivors:
        _signal(pid, signal.SIGKILL)
    return survivors


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
