"""Progress of a long run, told to a *sink*: a bar on a terminal, plain lines otherwise.

A redirected run (a batch job, CI, ``2> log``) must never be silent for minutes: ``LineProgress``
writes ``ladder: 7/11 solves, 4 remaining, ETA 12 s`` every few seconds while a stage runs and
once at its end (stages over within a few seconds stay quiet). On a terminal ``BarProgress``
draws click's progress bar on stderr.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

import click


class Progress(Protocol):
    """Where a context reports how far a stage of work has got."""

    def start(self, label: str, total: int) -> None:
        """A stage of ``total`` units (solves) begins."""
        ...

    def advance(self, n: int = 1) -> None:
        """``n`` more units are done."""
        ...

    def finish(self) -> None:
        """The stage has ended (completed, failed or interrupted)."""
        ...


LINE_INTERVAL = 5.0
"""Seconds between two progress lines of a redirected run."""


class NullProgress:
    """Reports nothing."""

    def start(self, label: str, total: int) -> None:
        """Nothing."""

    def advance(self, n: int = 1) -> None:
        """Nothing."""

    def finish(self) -> None:
        """Nothing."""


def _seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


class LineProgress:
    """Plain lines on ``stream`` (default stderr) for a stage that takes a while: one every
    ``interval`` seconds while it runs — from a heartbeat thread, so a single long solve is not
    silent either — and one when it ends. A stage over within ``interval`` prints nothing, so a
    quick run's stderr holds only what it has to say (e.g. one error line)."""

    def __init__(self, stream: TextIO | None = None, interval: float | None = None, unit: str = "solves",
                 clock: Callable[[], float] = time.monotonic, heartbeat: bool = True) -> None:
        self.stream = stream
        self.interval = LINE_INTERVAL if interval is None else interval
        self.unit = unit
        self.clock = clock
        self.heartbeat = heartbeat
        self.label, self.total, self.done = "", 0, 0
        self.t0 = self.last = 0.0
        self.spoke = False
        self._lock = threading.Lock()
        self._stop: threading.Event | None = None

    def _write(self, text: str) -> None:
        out = self.stream if self.stream is not None else sys.stderr
        print(text, file=out, flush=True)
        self.spoke = True

    def _status(self, now: float) -> str:
        left = self.total - self.done
        if self.done:
            eta = (now - self.t0) / self.done * left
            return f"{self.label}: {self.done}/{self.total} {self.unit}, {left} remaining, ETA {_seconds(eta)}"
        return f"{self.label}: {self.done}/{self.total} {self.unit}, running for {_seconds(now - self.t0)}"

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            with self._lock:
                if stop.is_set():          # finish() came first: never a stale line after "done"
                    return
                now = self.clock()
                if now - self.last >= self.interval * 0.99 and self.done < self.total:
                    self.last = now
                    self._write(self._status(now))

    def start(self, label: str, total: int) -> None:
        """Begin a stage (prints nothing yet: short stages stay quiet)."""
        self.finish_quietly()
        with self._lock:
            self.label, self.total, self.done = label, total, 0
            self.t0 = self.last = self.clock()
            self.spoke = False
        if self.heartbeat and self.interval > 0:
            self._stop = threading.Event()
            threading.Thread(target=self._beat, args=(self._stop,), daemon=True, name="envelope-progress").start()

    def advance(self, n: int = 1) -> None:
        """Count ``n`` done; print a line if ``interval`` seconds passed since the last one."""
        with self._lock:
            self.done += n
            self.total = max(self.total, self.done)   # a stage's total may be an estimate (refinements)
            now = self.clock()
            if now - self.last >= self.interval and self.done < self.total:
                self.last = now
                self._write(self._status(now))

    def finish_quietly(self) -> None:
        """Stop the heartbeat without a closing line."""
        with self._lock:
            if self._stop is not None:
                self._stop.set()
                self._stop = None

    def finish(self) -> None:
        """End the stage: a closing line if it ran long enough to have been reported."""
        self.finish_quietly()
        with self._lock:
            took = self.clock() - self.t0
            if self.spoke or took >= self.interval:
                self._write(self._closing(took))

    def _closing(self, took: float) -> str:
        """The closing line of a stage that took ``took`` seconds."""
        return f"{self.label}: {self.done}/{self.total} {self.unit} done in {_seconds(took)}"


class BarProgress:
    """click's progress bar on stderr (for a terminal)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._bar: Any = None

    def start(self, label: str, total: int) -> None:
        """Draw a new bar."""
        self._bar = click.progressbar(length=max(total, 1), label=label, file=self.stream or sys.stderr,
                                      show_eta=True, show_pos=True)
        self._bar.__enter__()

    def advance(self, n: int = 1) -> None:
        """Move the bar."""
        if self._bar is not None:
            self._bar.update(n)

    def finish(self) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def default_progress(stream: TextIO | None = None) -> Progress:
    """A bar when ``stream`` (default stderr) is a terminal, plain lines otherwise."""
    out = stream if stream is not None else sys.stderr
    try:
        tty = out.isatty()
    except (AttributeError, ValueError):
        tty = False
    return BarProgress(stream) if tty else LineProgress(stream)
