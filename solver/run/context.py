"""The execution context of an analysis: where its tasks run and where its progress is told.

An analysis runs several stages of independent tasks (re-solves). Creating a process pool costs
about 2.3 s (spawned interpreters importing the solver), so a ``Context`` creates at most ONE
pool, lazily, and reuses it for every stage until it is closed. Any ``concurrent.futures``-shaped
executor (``submit`` returning futures, ``shutdown``) can be handed in instead — e.g. a Dask
``Client`` — and is then the caller's to shut down.

Results stream back as tasks complete and are reassembled in order where needed. A task that
raises becomes a ``Failed`` record (the others still complete); only ``KeyboardInterrupt`` stops
everything. Tasks and results must be picklable plain data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass
from typing import Any, TypeVar

from solver.run.executor import SerialExecutor, make_executor
from solver.run.progress import NullProgress, Progress, default_progress

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Failed:
    """A task that raised: its position, the error, and the error's message."""

    index: int
    error: BaseException

    @property
    def message(self) -> str:
        """``Type: message`` of the error."""
        return f"{type(self.error).__name__}: {self.error}"


class Context:
    """Where an analysis's tasks run (one executor for all its stages) and where progress goes.

    ``Context(workers=4)`` runs on one local spawn process pool of 4, created on first use and
    shut down by ``close()`` (or at the end of a ``with`` block); ``workers=1`` runs in this
    process. ``Context(executor=client)`` uses an executor you own (not shut down here);
    ``workers`` is then the parallelism analyses plan for (chains, probe sizes). ``factory``
    builds the pool from ``workers`` (default ``make_executor``). ``progress``: a ``Progress``
    sink, ``None`` for a bar on a terminal and plain lines otherwise, ``False`` for none.
    """

    def __init__(self, workers: int = 1, *, executor: Executor | None = None,
                 factory: Callable[[int], Executor] | None = None,
                 progress: Progress | bool | None = None) -> None:
        if executor is not None and workers == 1:
            workers = int(getattr(executor, "_max_workers", 1) or 1)
        self.workers = max(1, int(workers))
        self._executor = executor
        self._own = executor is None
        self._factory = factory
        if progress is None or progress is True:
            self.progress: Progress = default_progress()
        elif progress is False:
            self.progress = NullProgress()
        else:
            self.progress = progress
        self._stage_depth = 0

    # -- life cycle ----------------------------------------------------------------------

    @property
    def executor(self) -> Executor:
        """The executor, created on first use (one per context)."""
        if self._executor is None:
            factory = self._factory if self._factory is not None else make_executor
            self._executor = factory(self.workers)
        return self._executor

    def close(self, *, abort: bool = False) -> None:
        """Shut down the pool this context created (an executor handed in is left alone).

        ``abort=True`` (leaving a ``with`` block on an exception, e.g. Ctrl-C or SIGTERM) does not
        wait for running tasks: their workers are stopped at once (``ProcessPool.abort``)."""
        if self._own and self._executor is not None:
            ex, self._executor = self._executor, None
            stop = getattr(ex, "abort", None)
            if abort and stop is not None:
                stop()
            else:
                ex.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Context:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close(abort=exc_type is not None)

    # -- progress ------------------------------------------------------------------------

    @contextlib.contextmanager
    def stage(self, label: str, total: int) -> Iterator[None]:
        """Group the work inside (several ``map`` calls) under one progress stage of ``total``
        units; ``map`` calls inside advance it instead of starting their own."""
        if self._stage_depth:
            yield
            return
        self.progress.start(label, total)
        self._stage_depth += 1
        try:
            yield
        finally:
            self._stage_depth -= 1
            self.progress.finish()

    # -- running -------------------------------------------------------------------------

    def stream(self, fn: Callable[[T], R], items: Sequence[T], *, label: str = "solving",
               weights: Sequence[int] | None = None) -> Iterator[tuple[int, R | Failed]]:
        """``(index, fn(item))`` as tasks complete; a task that raised gives ``Failed``.

        At most ``2 × workers`` tasks are in flight (one on a serial executor), so stopping the
        iteration (e.g. on an interrupted result) leaves the rest unsubmitted; pending ones are
        cancelled. ``KeyboardInterrupt`` from a task propagates. ``weights`` are the progress
        units of each item (default 1 each).
        """
        w = list(weights) if weights is not None else [1] * len(items)
        ex = self.executor
        window = 1 if isinstance(ex, SerialExecutor) else 2 * self.workers
        todo: Iterator[tuple[int, T]] = iter(enumerate(items))
        pending: dict[Future[R], int] = {}

        def fill() -> None:
            while len(pending) < window:
                nxt = next(todo, None)
                if nxt is None:
                    return
                pending[ex.submit(fn, nxt[1])] = nxt[0]

        with self.stage(label, sum(w)):
            try:
                fill()
                while pending:
                    done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                    for fut in sorted(done, key=lambda f: pending[f]):
                        i = pending.pop(fut)
                        try:
                            res: R | Failed = fut.result()
                        except KeyboardInterrupt:
                            raise
                        except BaseException as exc:  # noqa: BLE001 - a failed task is a result
                            res = Failed(i, exc)
                        self.progress.advance(w[i])
                        yield i, res
                    fill()
            finally:
                for fut in pending:
                    fut.cancel()

    def map(self, fn: Callable[[T], R], items: Iterable[T], *, label: str = "solving",
            weights: Sequence[int] | None = None,
            stop: Callable[[R | Failed], bool] | None = None) -> list[R | Failed]:
        """``[fn(item) for item in items]`` in order (failures as ``Failed``). ``stop(result)``
        returning True ends the run at once with ``KeyboardInterrupt`` (the one interrupt policy
        of ``solver.analyses.engine.solve_many``)."""
        seq = list(items)
        out: list[Any] = [None] * len(seq)
        with contextlib.closing(self.stream(fn, seq, label=label, weights=weights)) as results:
            for i, res in results:
                if stop is not None and stop(res):
                    raise KeyboardInterrupt
                out[i] = res
        return out
