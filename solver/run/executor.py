"""Independent re-solves (samples, ladder levels, thresholds) run through one small executor
interface, serial or on a local process pool, so that a distributed engine (e.g. Dask's
``Client``, which offers the same ``submit``/``result`` shape) can be plugged in later without
touching the analyses.

Tasks and results must be picklable plain data. Analyses run through ``solver.run.context.Context``
(one pool per analysis, streaming results, progress on a terminal *and* when redirected).

Pool workers never outlive the main process (``_worker_init``): each asks the kernel for SIGHUP
when its parent dies (``PR_SET_PDEATHSIG``, Linux) and watches ``os.getppid()`` from a thread (the
portable fallback). Either way, or on SIGTERM from ``ProcessPool.abort``, a busy worker raises
``Terminated`` inside its task — so the task's solver child is stopped and its files removed — and
then exits; an idle worker exits at once. With the workers gone, multiprocessing's resource tracker
(which ignores signals and exits when the last holder of its pipe does) exits too.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from types import FrameType
from typing import Any, TypeVar

from solver.backends._ortools_worker import set_parent_death_signal, watch_parent

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


class Terminated(KeyboardInterrupt):
    """SIGTERM turned into the same orderly stop as Ctrl-C (caught wherever ``KeyboardInterrupt`` is)."""


#: Seconds a pool worker gets to stop its task (and the task's solver child) before it is killed.
STOP_GRACE = 12.0

_parent = 0          # pid of the process that started this pool worker
_busy = False        # a task is running in this worker
_stopping = False    # asked to stop: exit as soon as the running task has unwound
#: The parent-death signal of pool workers (a distinct one: SIGTERM means "stop" unconditionally).
_DEATH_SIGNAL = getattr(signal, "SIGHUP", None)


def _worker_stop(signum: int, frame: FrameType | None) -> None:
    """Pool worker's SIGTERM/SIGHUP handler: unwind the running task, else exit now."""
    global _stopping
    if signum == _DEATH_SIGNAL and os.getppid() == _parent:
        return  # the parent's thread that started us ended (PR_SET_PDEATHSIG), not the parent
    _stopping = True
    if _busy:
        raise Terminated
    os._exit(0)


def _worker_sigint(signum: int, frame: FrameType | None) -> None:
    """Pool worker's SIGINT handler (a terminal's Ctrl-C reaches the whole process group): the
    running task sees ``KeyboardInterrupt`` (solvers keep their incumbent); an idle worker waits for
    the parent's decision."""
    if _busy:
        raise KeyboardInterrupt


def _orphaned() -> None:
    """The parent is gone (watchdog thread): stop as on SIGTERM; exit for good after a grace."""
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(STOP_GRACE)
    os._exit(1)


def _worker_init(parent: int) -> None:
    """Initializer of every pool worker: die with the parent, stop in order on SIGTERM."""
    global _parent
    _parent = parent
    signal.signal(signal.SIGTERM, _worker_stop)
    signal.signal(signal.SIGINT, _worker_sigint)
    if _DEATH_SIGNAL is not None:   # POSIX
        signal.signal(_DEATH_SIGNAL, _worker_stop)
        set_parent_death_signal(_DEATH_SIGNAL)
    if os.getppid() != parent:   # the parent died before we asked
        os._exit(1)
    watch_parent(parent, _orphaned)


def _run_task(fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
    """Run one task in a pool worker, marked busy so that a stop unwinds it (see ``_worker_stop``)."""
    global _busy
    _busy = True
    try:
        return fn(*args, **kwargs)
    finally:
        _busy = False
        if _stopping:
            os._exit(0)   # asked to stop: nobody wants the result


class ProcessPool(ProcessPoolExecutor):
    """A spawn process pool whose workers die with this process and can be stopped at once."""

    def __init__(self, workers: int) -> None:
        super().__init__(max_workers=workers, mp_context=mp.get_context("spawn"),
                         initializer=_worker_init, initargs=(os.getpid(),))

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        """Submit ``fn(*args, **kwargs)`` (run through ``_run_task`` in the worker)."""
        return super().submit(_run_task, fn, *args, **kwargs)

    def abort(self, grace: float = STOP_GRACE) -> None:
        """Stop now: cancel tasks not started, SIGTERM every worker (a busy one unwinds its task,
        stopping its solver child), SIGKILL any still alive after ``grace`` seconds, then shut down."""
        procs = list((getattr(self, "_processes", None) or {}).values())
        self.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.terminate()
        deadline = time.monotonic() + grace
        for p in procs:
            p.join(timeout=max(0.0, deadline - time.monotonic()))
        for p in procs:
            if p.is_alive():  # pragma: no cover - a task that ignored the stop
                p.kill()
                p.join(timeout=5)
        self.shutdown(wait=True)


def make_executor(workers: int = 1) -> Executor:
    """A serial executor for 1 worker, else a local process pool (spawned children: no forked
    solver threads; see ``ProcessPool``)."""
    if workers <= 1:
        return SerialExecutor()
    return ProcessPool(workers)
