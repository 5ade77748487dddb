"""Independent re-solves (samples, ladder levels, thresholds) run through one small executor
interface, serial or on a local process pool, so that a distributed engine (e.g. Dask's
``Client``, which offers the same ``submit``/``result`` shape) can be plugged in later without
touching the analyses.

Tasks and results must be picklable plain data. Analyses run through ``solver.run.context.Context``
(one pool per analysis, streaming results, progress on a terminal *and* when redirected);
``run_all`` is kept only until its last caller moves to the context.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

import click

T = TypeVar("T")
R = TypeVar("R")


class SerialExecutor(Executor):
    """Runs each task at once in this process (the ``concurrent.futures`` interface, no pool)."""

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        """Run ``fn`` now and return a completed future."""
        fut: Future[R] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except (KeyboardInterrupt, SystemExit):
            raise                     # Ctrl-C stops the run now, not after every remaining task
        except BaseException as exc:  # noqa: BLE001 - delivered through the future like a pool would
            fut.set_exception(exc)
        return fut


def make_executor(workers: int = 1) -> Executor:
    """A serial executor for 1 worker, else a local process pool (spawned children: no forked
    solver threads)."""
    if workers <= 1:
        return SerialExecutor()
    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))


def run_all(fn: Callable[[T], R], items: Sequence[T], *, workers: int = 1, label: str = "solving",
            executor: Executor | None = None, progress: bool | None = None) -> list[R]:
    """``[fn(item) for item in items]``, in order, on ``executor`` (or a new one with ``workers``).

    Shows a progress bar on stderr when it is a terminal (``progress=None``) or when asked.
    """
    own = executor is None
    ex = executor or make_executor(workers)
    show = sys.stderr.isatty() if progress is None else progress
    try:
        futures = {ex.submit(fn, item): i for i, item in enumerate(items)}
        results: list[Any] = [None] * len(items)
        if show:
            with click.progressbar(length=len(items), label=label, file=sys.stderr, show_eta=True,
                                   show_pos=True) as bar:
                for fut in as_completed(futures):
                    results[futures[fut]] = fut.result()
                    bar.update(1)
        else:
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
        return results
    finally:
        if own:
            ex.shutdown(wait=True, cancel_futures=True)
