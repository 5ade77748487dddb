"""Running a batch: points → chunks → an engine → the results store, resumable and fault-isolated.

Engines sit behind the execution ``Context`` (``solver.run``): ``serial`` (in this process), ``local``
(one reused spawn process pool, workers dying with this process) and ``dask`` (Dask distributed's
``concurrent.futures`` executor, on a running scheduler or a ``LocalCluster`` on loopback). Every solve
is single-threaded (``threads = 1`` unless asked otherwise): the workers are the parallelism.

*Chunks.* Small solves are grouped so that the per-task cost (pickling, a scheduler round trip, a commit)
stays small: the first ``2 × workers`` points (one, serially) run alone and time the solves, then points
go in chunks of about ``TARGET_TASK_SECONDS`` of work (at most ``MAX_CHUNK``, and small enough to keep
every worker busy to the end). Each chunk's results are committed as soon as it finishes
(``store.Store.commit``), so a kill loses at most the chunks running (about a second of work each).

*Faults.* A scenario that raises is a failed row (``work.run_point``); a worker that dies is not the
scenario's fault: its points run again — on Dask by the scheduler, then once more alone; on the local
pool, each alone in a fresh one-worker pool (so one crashing scenario cannot take others down with it) —
and a point whose worker dies twice is recorded as failed with that message. Ctrl-C / SIGTERM stop the
batch: finished chunks are committed, interrupted solves are not results, and re-running resumes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pickle
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import BrokenExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import click

from solver.batch.store import BASES, DASK_SCRATCH, PLAN_STATUSES, Store, writing
from solver.batch.sweep import Base, Expansion, Point, without_scenario
from solver.batch.work import BaseRef, ChunkResult, forget, run_chunk, scenario_name
from solver.errors import BackendError, InputError
from solver.present.outputs import input_paths
from solver.run.context import Context, Failed
from solver.run.executor import ProcessPool
from solver.run.progress import BarProgress, LineProgress

ENGINES = ("serial", "local", "dask")
#: Seconds of solving one task should hold once solve times are known.
TARGET_TASK_SECONDS = 1.0
#: Most points in one task.
MAX_CHUNK = 32
#: Seconds to wait for a Dask scheduler (connecting, and a LocalCluster's workers starting).
DASK_TIMEOUT = 30.0
#: Dask settings of the LocalCluster a batch starts: no statistical profiler in the workers (it samples every
#: task thread's stack every 10 ms; off, small solves run about 10% faster), scratch files in the results
#: folder (nothing left in /tmp).
LOCAL_CLUSTER_CONFIG: dict[str, object] = {"distributed.worker.profile.enabled": False}
#: Times a point's worker may die before the point is recorded as failed.
MAX_WORKER_DEATHS = 2


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- progress


def _duration(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.0f} min" if s < 5400 else f"{s / 3600:.1f} h"


class BatchLines(LineProgress):
    """Plain progress lines (a redirected run): done, failed, remaining and ETA, every few seconds."""

    def __init__(self, stream: TextIO | None = None, interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic, heartbeat: bool = True) -> None:
        super().__init__(stream, interval, unit="scenarios", clock=clock, heartbeat=heartbeat)
        self.failed = 0

    def _status(self, now: float) -> str:
        left = self.total - self.done
        when = f"ETA {_duration((now - self.t0) / self.done * left)}" if self.done else \
            f"running for {_duration(now - self.t0)}"
        return f"{self.label}: {self.done}/{self.total} done ({self.failed} failed), {left} remaining, {when}"

    def fail(self, n: int = 1) -> None:
        """``n`` of the scenarios done failed."""
        self.failed += n

    def _closing(self, took: float) -> str:
        return f"{self.label}: {self.done}/{self.total} done ({self.failed} failed) in {_duration(took)}"


class BatchBar(BarProgress):
    """A progress bar with ETA on a terminal, the failures counted beside it."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self.failed = 0

    def start(self, label: str, total: int) -> None:
        """Draw the bar."""
        self._bar = click.progressbar(length=max(total, 1), label=label, file=self.stream or sys.stderr,
                                      show_eta=True, show_pos=True,
                                      item_show_func=lambda _: f"{self.failed} failed" if self.failed else None)
        self._bar.__enter__()

    def fail(self, n: int = 1) -> None:
        """``n`` of the scenarios done failed."""
        self.failed += n


class QuietProgress:
    """No display (tests, library use); counts failures all the same."""

    failed = 0

    def start(self, label: str, total: int) -> None:
        """Nothing."""

    def advance(self, n: int = 1) -> None:
        """Nothing."""

    def fail(self, n: int = 1) -> None:
        """Count."""
        self.failed += n

    def finish(self) -> None:
        """Nothing."""


def batch_progress(stream: TextIO | None = None) -> BatchLines | BatchBar:
    """A bar on a terminal, plain lines otherwise."""
    out = stream if stream is not None else sys.stderr
    try:
        tty = out.isatty()
    except (AttributeError, ValueError):
        tty = False
    return BatchBar(stream) if tty else BatchLines(stream)


# --------------------------------------------------------------------------- engines


class Engine:
    """An execution context for chunks, and how it ships base scenarios to its workers."""

    name = "serial"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.context = Context(workers, progress=False)

    @property
    def parallel(self) -> bool:
        """More than one worker."""
        return self.workers > 1

    def ship(self, base: Base) -> object:
        """What a chunk carries for ``base`` (here: the scenario itself; nothing is pickled in-process)."""
        if base.scenario is None:
            return BaseRef(base.key, base=base)
        return base.scenario

    def broken(self, error: BaseException) -> bool:
        """True if ``error`` means the engine itself is unusable (then ``reset``)."""
        return isinstance(error, BrokenExecutor)

    def reset(self) -> None:
        """A new context after the old one broke."""
        self.context.close(abort=True)
        self.context = Context(self.workers, progress=False)

    def isolated(self, item: tuple[Sequence[object], Sequence[tuple[int, Point]]]) -> ChunkResult | Failed:
        """Run one chunk where no other task can be hurt by it (here: as usual)."""
        return next(iter(self.context.stream(run_chunk, [item])))[1]

    def close(self, abort: bool = False) -> None:
        """Stop the workers."""
        self.context.close(abort=abort)
        forget()


class LocalEngine(Engine):
    """One local spawn process pool; file bases are pickled once into the results folder and each worker
    reads one when it first needs it."""

    name = "local"

    def __init__(self, workers: int, folder: Path) -> None:
        super().__init__(workers)
        self.folder = folder / BASES
        self._solo: ProcessPool | None = None

    def ship(self, base: Base) -> object:
        """A reference: a pickle file (written once) or the generator recipe."""
        if base.scenario is None:
            return BaseRef(base.key, base=without_scenario(base))
        path = self.folder / f"{base.key}.pickle"
        if not path.is_file():
            self.folder.mkdir(exist_ok=True)
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
            with open(tmp, "wb") as fh:
                pickle.dump(base.scenario, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        return BaseRef(base.key, pickle=str(path))

    def isolated(self, item: tuple[Sequence[object], Sequence[tuple[int, Point]]]) -> ChunkResult | Failed:
        """Run one chunk alone in a one-worker pool (a suspect of crashing its worker: if it does, no other
        task is lost with it); the pool is reused until a task breaks it."""
        if self._solo is None:
            self._solo = ProcessPool(1)
        try:
            return self._solo.submit(run_chunk, item).result()
        except KeyboardInterrupt:
            self._solo.abort()
            self._solo = None
            raise
        except BrokenExecutor as exc:
            self._solo.shutdown(wait=True, cancel_futures=True)
            self._solo = None
            return Failed(0, exc)

    def close(self, abort: bool = False) -> None:
        """Stop the workers (and the one-worker pool of suspects)."""
        if self._solo is not None:
            if abort:
                self._solo.abort()
            else:
                self._solo.shutdown(wait=True, cancel_futures=True)
            self._solo = None
        super().close(abort)


def _hold(value: object) -> object:
    """A Dask task returning its argument: a base scenario kept on the cluster (recomputed if lost)."""
    return value


class DaskEngine(Engine):
    """Dask distributed: a running scheduler (``address``) or a ``LocalCluster`` of ``workers`` single-threaded
    worker processes on loopback. A file base is held on the cluster as a task result, moved to each worker
    that needs it once, and recomputed if the workers holding it die; generated bases are made by the workers."""

    name = "dask"

    def __init__(self, workers: int | None, address: str | None, scratch: Path | None = None) -> None:
        try:
            import dask
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise BackendError("--engine dask needs Dask distributed: pip install 'envelope-solver[dask]'") from None
        self.cluster = None
        self.scratch: Path | None = None
        if address:
            try:
                self.client = Client(address, timeout=DASK_TIMEOUT)
            except (OSError, TimeoutError, ValueError) as exc:
                raise BackendError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
            threads = sum(int(w.get("nthreads", 1)) for w in self.client.scheduler_info()["workers"].values())
            n = max(threads, workers or 1)
        else:
            n = workers or usable_cores()
            self.scratch = Path(tempfile.mkdtemp(prefix="envelope-dask-")) if scratch is None else scratch
            with dask.config.set(LOCAL_CLUSTER_CONFIG | {"temporary-directory": str(self.scratch)}):
                self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                            dashboard_address=None, silence_logs=logging.ERROR,
                                            local_directory=str(self.scratch))
            try:
                self.client = Client(self.cluster, timeout=DASK_TIMEOUT)
            except BaseException:
                self.cluster.close(timeout=10)
                shutil.rmtree(self.scratch, ignore_errors=True)
                raise
        self.address = address or self.cluster.scheduler_address   # type: ignore[union-attr]
        self.workers = n
        self.context = Context(n, executor=self.client.get_executor(), progress=False)
        self._held: dict[str, Any] = {}

    def ship(self, base: Base) -> object:
        """A future of the base (file bases), or the generator recipe."""
        if base.scenario is None:
            return BaseRef(base.key, base=without_scenario(base))
        if base.key not in self._held:
            self._held[base.key] = self.client.submit(_hold, base.scenario, pure=False)
        return self._held[base.key]

    def broken(self, error: BaseException) -> bool:
        """The client lost its scheduler."""
        return self.client.status not in ("running", "connecting")

    def reset(self) -> None:
        """A lost scheduler cannot be replaced from here: stop (committed results are kept)."""
        raise BackendError(f"lost the Dask scheduler at {self.address} (client {self.client.status}); re-run the "
                           "command to resume")

    def close(self, abort: bool = False) -> None:
        """Close the client (and the LocalCluster this engine started)."""
        self._held.clear()
        self.context.close(abort=abort)
        with contextlib.suppress(Exception):
            self.client.close(timeout=10)
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close(timeout=10)
        if self.scratch is not None:   # the LocalCluster workers' scratch folder
            shutil.rmtree(self.scratch, ignore_errors=True)


def make_engine(kind: str, workers: int | None, scheduler: str | None, folder: Path) -> Engine:
    """The engine for ``--engine``, ``--workers`` and ``--scheduler``."""
    if kind not in ENGINES:
        raise InputError(None, f"option --engine: choose one of {', '.join(ENGINES)} (got '{kind}')")
    if scheduler and kind != "dask":
        raise InputError(None, "option --scheduler: needs --engine dask")
    if kind == "dask":
        return DaskEngine(workers, scheduler, folder / DASK_SCRATCH)
    n = 1 if kind == "serial" else (workers or usable_cores())
    return LocalEngine(n, folder) if n > 1 else Engine(1)


@contextlib.contextmanager
def engine_context(engine: str = "local", workers: int | None = None, scheduler: str | None = None,
                   progress: Any = None) -> Iterator[Context]:
    """An execution ``Context`` on a batch engine, for the sensitivity analyses too:
    ``with engine_context("dask", 2) as ctx: ladder(scenario, context=ctx)`` runs the ladder's re-solves on a
    Dask LocalCluster (or on ``scheduler``); ``local`` is ``Context(workers)``. Closed at the end."""
    if engine == "dask" or scheduler:
        if engine != "dask":
            raise InputError(None, "option --scheduler: needs --engine dask")
        eng = DaskEngine(workers, scheduler)
        ctx = Context(eng.workers, executor=eng.client.get_executor(), progress=progress)
        try:
            yield ctx
        finally:
            eng.close(abort=sys.exc_info()[0] is not None)
        return
    if engine not in ENGINES:
        raise InputError(None, f"option --engine: choose one of {', '.join(ENGINES)} (got '{engine}')")
    with Context(1 if engine == "serial" else (workers or usable_cores()), progress=progress) as ctx:
        yield ctx


# --------------------------------------------------------------------------- the run


@dataclass
class BatchReport:
    """How a batch run went."""

    folder: Path
    total: int
    skipped: int
    done: int = 0
    failed: int = 0
    engine: str = "serial"
    workers: int = 1
    seconds: float = 0.0
    duplicates: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The summary printed at the end."""
        rate = f" ({self.done / self.seconds:.2f} scenarios/s)" if self.seconds > 0 and self.done else ""
        out = [f"batch: {self.total} scenarios: {self.skipped} already in {self.folder}, {self.done} solved now"
               f"{rate}, {self.failed} of them failed; engine {self.engine} × {self.workers}, {self.seconds:.1f} s"]
        if self.duplicates:
            out.append(f"  {self.duplicates} duplicate scenario(s) (same base and parameters) counted once")
        for label, message in self.failures[:5]:
            out.append(f"  failed: {label}: {message}")
        if len(self.failures) > 5:
            out.append(f"  … and {len(self.failures) - 5} more (status and message in runs.parquet)")
        return out


Chunk = tuple[tuple[object, ...], tuple[tuple[int, Point], ...]]
"""A task: the bases it uses (as shipped), and its points, each with the index of its base."""


def _chunks(points: Sequence[Point], size: int, shipped: dict[str, object]) -> list[Chunk]:
    """Points in chunks of ``size``, each with the bases it uses (shipped once per engine)."""
    out = []
    for i in range(0, len(points), size):
        group = points[i:i + size]
        keys = list(dict.fromkeys(p.base for p in group))
        out.append((tuple(shipped[k] for k in keys), tuple((keys.index(p.base), p) for p in group)))
    return out


class _Run:
    """One batch run's state: the store, the engine, counts and the solve-time estimate."""

    def __init__(self, expansion: Expansion, store: Store, engine: Engine, progress: Any, report: BatchReport,
                 chunk: int | None) -> None:
        self.expansion, self.store, self.engine, self.progress = expansion, store, engine, progress
        self.report, self.chunk = report, chunk
        self.shipped: dict[str, object] = {}
        self.seconds: list[float] = []
        self.deaths: dict[str, int] = {}

    def record(self, result: ChunkResult) -> None:
        """Commit a chunk's finished points and count them; an interrupted solve stops the batch."""
        self.store.commit(result.runs, result.plans)
        failed = [r for r in result.runs if r.get("status") not in PLAN_STATUSES]
        self.report.done += len(result.runs)
        self.report.failed += len(failed)
        self.report.failures += [(str(r.get("scenario") or r.get("label")), str(r.get("message"))) for r in failed]
        self.seconds += [float(r["wall_seconds"]) for r in result.runs if r.get("wall_seconds") is not None]
        self.progress.advance(len(result.runs))
        if failed:
            self.progress.fail(len(failed))
        if result.interrupted:
            raise KeyboardInterrupt
        self.store.consolidate(if_due=True)

    def died(self, points: Sequence[Point], error: BaseException) -> list[Point]:
        """Points whose worker died: those that may run again (the others are recorded as failed)."""
        again = []
        for p in points:
            self.deaths[p.id] = self.deaths.get(p.id, 0) + 1
            if self.deaths[p.id] < MAX_WORKER_DEATHS:
                again.append(p)
                continue
            base = self.expansion.bases[p.base]
            row = {"id": p.id, "label": p.label, **dict(p.params), "scenario": scenario_name(base.name, p.label),
                   "status": "error", "termination": "error", "error": type(error).__name__, "has_plan": False,
                   "message": f"the worker solving this scenario died {self.deaths[p.id]} times "
                              f"({type(error).__name__}: {error})".replace("\n", " ")}
            self.record(ChunkResult(runs=[row]))
        return again

    def size(self, remaining: int) -> int:
        """Points per task, from the solve times seen so far (a serial engine chunks too: each task's results
        are one commit)."""
        if self.chunk:
            return self.chunk
        if not self.seconds:
            return 1
        mean = max(sum(self.seconds) / len(self.seconds), 1e-3)
        balance = math.ceil(remaining / (4 * self.engine.workers)) if self.engine.parallel else MAX_CHUNK
        return max(1, min(MAX_CHUNK, round(TARGET_TASK_SECONDS / mean), balance))

    def ship(self, points: Sequence[Point]) -> None:
        for key in dict.fromkeys(p.base for p in points):
            if key not in self.shipped:
                self.shipped[key] = self.engine.ship(self.expansion.bases[key])

    def run(self, todo: list[Point]) -> None:
        """Solve ``todo``: a timing round of single points, then chunks; worker deaths handled as above."""
        pending = list(todo)
        while pending:
            if not self.seconds and not self.chunk:      # time the first solves, one per task
                first = 2 * self.engine.workers if self.engine.parallel else 1
                now, pending = pending[:first], pending[first:]
                size = 1
            else:
                now, pending, size = pending, [], self.size(len(pending))
            self.ship(now)
            suspects = self.round(_chunks(now, size, self.shipped))
            for point in suspects:        # each alone, so one crashing scenario hurts no other
                again = [point]
                while again:
                    res = self.engine.isolated(_chunks(again, 1, self.shipped)[0])
                    if isinstance(res, Failed):
                        if self.engine.broken(res.error):
                            self.engine.reset()
                        again = self.died(again, res.error)
                    else:
                        self.record(res)
                        again = []

    def round(self, chunks: list[Chunk]) -> list[Point]:
        """Run chunks on the engine, committing each as it finishes; returns the points of tasks whose worker
        died (or that never ran because the engine broke)."""
        finished: set[int] = set()
        suspects: list[Point] = []
        try:
            for i, res in self.engine.context.stream(run_chunk, chunks, label="batch"):
                if isinstance(res, Failed):
                    if self.engine.broken(res.error):
                        raise res.error      # this chunk and every other unfinished one run again
                    finished.add(i)
                    suspects += [p for _, p in chunks[i][1]]
                    continue
                finished.add(i)
                self.record(res)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - the engine broke: what did not finish runs again
            if not self.engine.broken(exc):
                raise
            self.engine.reset()
            suspects += [p for i, c in enumerate(chunks) if i not in finished for _, p in c[1]]
        return suspects


def run_batch(expansion: Expansion, folder: str | Path, *, engine: str = "local", workers: int | None = None,
              scheduler: str | None = None, retry_failed: bool = False, progress: Any = None,
              command: Sequence[str] | None = None, chunk: int | None = None) -> BatchReport:
    """Solve every point of ``expansion`` not yet in the results store at ``folder`` and record each result
    there as it finishes (``retry_failed``: run failed ones again). ``progress``: a sink with ``start``,
    ``advance``, ``fail`` and ``finish`` (default: a bar on a terminal, plain lines otherwise; ``False``: none).
    ``chunk`` fixes the points per task (default: from the solve times). Returns the counts; a Ctrl-C or
    SIGTERM stops it with ``KeyboardInterrupt`` after committing what finished."""
    t0 = time.perf_counter()
    inputs = [p for b in expansion.bases.values() if b.scenario is not None for p in input_paths(b.scenario)]
    if expansion.sweep.get("path"):
        inputs.append(Path(str(expansion.sweep["path"])))
    sink = batch_progress() if progress is None else QuietProgress() if progress is False else progress
    with writing(folder, inputs) as store:
        done = store.completed(retry_failed=retry_failed)
        todo = [p for p in expansion.points if p.id not in done]
        unloadable = [r for r in expansion.failed if r["id"] not in done]
        report = BatchReport(store.folder, expansion.total, expansion.total - len(todo) - len(unloadable),
                             duplicates=expansion.duplicates)
        seeds = sorted({int(b.generator.seed) for b in expansion.bases.values() if b.generator is not None})
        entry = store.start_run({
            "command": list(command) if command is not None else None, "cwd": os.getcwd(), "engine": engine,
            "workers": workers, "scheduler": scheduler, "scenarios": expansion.total, "to_run": len(todo)
            + len(unloadable), "retry_failed": retry_failed, "sweep": expansion.sweep, "solver": expansion.solver,
            "generator_seeds": seeds, "pid": os.getpid()})
        state = "interrupted"
        eng: Engine | None = None
        started = False
        try:
            if todo:    # before the progress display: starting a cluster or reaching a scheduler takes a while
                eng = make_engine(engine, workers, scheduler, store.folder)
                report.engine, report.workers = eng.name, eng.workers
            run = _Run(expansion, store, eng or Engine(1), sink, report, chunk)
            sink.start("batch", len(todo) + len(unloadable))
            started = True
            for row in unloadable:
                run.record(ChunkResult(runs=[{**row, "has_plan": False}]))
            if todo:
                run.run(todo)
            state = "complete"
        except Exception as exc:
            state = f"stopped: {type(exc).__name__}: {exc}"
            raise
        finally:
            if started:
                sink.finish()
            if eng is not None:
                eng.close(abort=state != "complete")
            report.seconds = time.perf_counter() - t0
            try:
                store.consolidate()
                store.finish_run(entry, state=state, engine=report.engine, workers=report.workers,
                                 solved=report.done, failed=report.failed, skipped=report.skipped,
                                 seconds=round(report.seconds, 3))
            except Exception:
                if state == "complete":
                    raise   # else: the stop's own error matters more; the next run merges the parts
            shutil.rmtree(store.folder / BASES, ignore_errors=True)
    return report


__all__ = ["BatchReport", "DaskEngine", "Engine", "LocalEngine", "batch_progress", "engine_context", "make_engine",
           "run_batch"]
