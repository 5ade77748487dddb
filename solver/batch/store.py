"""The results store of a batch: one folder, readable at any moment, never holding a result twice.

Layout of ``RESULTS_DIR``::

    runs.parquet     one row per scenario: id, parameters, status, termination, objective, bound, gap,
                     times, the policy metrics, the message of a failed scenario
    plans.parquet    one row per funded project per scenario (id, project, start, money, value)
    manifest.json    the store's format, and every batch run into it: command, engine, versions, seeds, counts
    parts/           results committed since the last consolidation, one folder per commit (Arrow IPC files)
    .envelope-output the marker of an Envelope output folder

*Committed atomically.* The batch commits each finished chunk as a new folder ``parts/<seq>-…`` holding its
``runs.arrow`` and ``plans.arrow``: written under a hidden name, synced, then renamed in one step, so a
kill at any moment leaves the commit whole or absent. A result is complete once committed; nothing else
counts, so re-running the command redoes exactly what was not committed.

*Consolidated.* Every ``CONSOLIDATE_SECONDS`` while a batch runs, at its start and at its end, the parts are
merged into ``runs.parquet`` and ``plans.parquet`` (each written to a temporary file and renamed over the
old one: ``plans`` first, then ``runs``), then the merged parts are removed. A kill in between leaves parts
that are merged again next time; rows are keyed by ``id`` (a newer commit of an id, from
``--retry-failed``, replaces the older) and plan rows by ``id`` and project, so nothing is ever counted
twice. ``runs.parquet`` and ``plans.parquet`` are therefore always complete Parquet files, at most
``CONSOLIDATE_SECONDS`` behind; ``read_results`` (and ``open_results``) adds the parts not yet merged.

*One writer.* A batch holds an ``flock`` on ``.envelope-batch.lock`` while it runs; a second batch into
the same folder is refused (exit 2). Readers take no lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from solver.errors import InputError
from solver.present.outputs import MARKER, check_output_folder, listed_entries, marker_text

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks; one batch per folder is then up to you
    fcntl = None  # type: ignore[assignment]

RUNS, PLANS, MANIFEST, PARTS = "runs.parquet", "plans.parquet", "manifest.json", "parts"
PART_RUNS, PART_PLANS = "runs.arrow", "plans.arrow"
LOCK = ".envelope-batch.lock"
BASES = ".bases"
#: Scratch folder of the Dask LocalCluster workers a batch starts (removed at its end).
DASK_SCRATCH = ".dask-scratch"
FORMAT = "envelope-batch-results 1"
#: Seconds between two consolidations while a batch runs.
CONSOLIDATE_SECONDS = 30.0
#: Statuses of a scenario with a plan (the others are failures: no plan, with a message).
PLAN_STATUSES = ("optimal", "feasible", "heuristic")

RUNS_SCHEMA = pa.schema([
    ("id", pa.string()), ("seq", pa.int64()), ("base", pa.string()), ("scenario", pa.string()),
    ("label", pa.string()), ("policy", pa.string()), ("status", pa.string()), ("termination", pa.string()),
    ("has_plan", pa.bool_()), ("objective", pa.float64()), ("bound", pa.float64()), ("gap", pa.float64()),
    ("message", pa.string()), ("error", pa.string()),
])
PLANS_SCHEMA = pa.schema([
    ("id", pa.string()), ("seq", pa.int64()), ("project_id", pa.string()), ("system_id", pa.string()),
    ("org_id", pa.string()), ("category", pa.int64()), ("kind", pa.string()), ("start", pa.int64()),
    ("go_live", pa.int64()), ("national_capital", pa.float64()), ("national_revenue", pa.float64()),
    ("national_funding", pa.float64()), ("local_capital", pa.float64()), ("local_revenue", pa.float64()),
    ("run_cost", pa.float64()), ("fee", pa.float64()), ("value", pa.float64()),
])
#: Columns put last in ``runs.parquet`` (provenance), after the parameters and figures.
LAST = ("identity", "backend", "solver_version", "source", "worker", "finished_at")


# --------------------------------------------------------------------------- files


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path)
    _fsync(path)


def _write_arrow(table: pa.Table, path: Path) -> None:
    """An Arrow IPC file (a part: fast to write and read; only the consolidated files are Parquet)."""
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    _fsync(path)


def _read_arrow(path: Path) -> pa.Table:
    return pa.ipc.open_file(pa.BufferReader(path.read_bytes())).read_all()


def _replace(table: pa.Table, path: Path) -> None:
    """Write ``path`` whole or not at all: a temporary sibling, synced, renamed over it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        _write_parquet(table, tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _write_json(data: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def table_of(rows: list[dict[str, Any]], schema: pa.Schema, seq: int) -> pa.Table:
    """Rows (dicts, possibly with different keys) as one table: the schema's columns first with their types,
    then every other key in the order first met, types inferred; ``seq`` in every row."""
    names = list(schema.names)
    for row in rows:
        names += [k for k in row if k not in names]
    arrays, fields = [], []
    for name in names:
        values = [seq] * len(rows) if name == "seq" else [row.get(name) for row in rows]
        if name in schema.names:
            typ = schema.field(name).type
            arrays.append(pa.array(values, type=typ))
            fields.append(pa.field(name, typ))
        else:
            arr = pa.array(values)
            arrays.append(arr)
            fields.append(pa.field(name, arr.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _concat(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables, promote_options="permissive")


def _latest(runs: pa.Table) -> list[int]:
    """Row positions to keep: the newest commit (highest ``seq``; the first copy of a commit merged twice) of
    every id, in first-seen order."""
    ids = runs.column("id").to_pylist()
    seqs = runs.column("seq").to_pylist()
    best: dict[str, int] = {}
    for i, (key, seq) in enumerate(zip(ids, seqs)):
        if key not in best or seq > seqs[best[key]]:
            best[key] = i
    return sorted(best.values())


def merge(runs: list[pa.Table], plans: list[pa.Table]) -> tuple[pa.Table, pa.Table]:
    """``runs`` and ``plans`` tables (the consolidated files, then parts in commit order) merged: one row per
    id (its newest commit) and the plan rows of exactly those commits, each project once."""
    r = _concat(runs) if runs else RUNS_SCHEMA.empty_table()
    r = r.take(pa.array(_latest(r), type=pa.int64())) if r.num_rows else r
    p = _concat(plans) if plans else PLANS_SCHEMA.empty_table()
    if p.num_rows:
        winners = set(zip(r.column("id").to_pylist(), r.column("seq").to_pylist()))
        seen: set[tuple[str, str]] = set()
        keep = []
        for i, (key, seq, project) in enumerate(zip(p.column("id").to_pylist(), p.column("seq").to_pylist(),
                                                    p.column("project_id").to_pylist())):
            if (key, seq) in winners and (key, project) not in seen:
                seen.add((key, project))
                keep.append(i)
        p = p.take(pa.array(keep, type=pa.int64()))
    return _ordered(r), p


def _ordered(runs: pa.Table) -> pa.Table:
    names = runs.column_names
    last = [n for n in LAST if n in names]
    return runs.select([n for n in names if n not in last] + last)


# --------------------------------------------------------------------------- reading


def _parts(folder: Path) -> list[Path]:
    """Committed parts, in commit order (hidden folders are commits being written)."""
    try:
        return sorted(p for p in (folder / PARTS).iterdir() if not p.name.startswith(".") and p.is_dir())
    except FileNotFoundError:
        return []


def read_results(folder: str | Path) -> tuple[pa.Table, pa.Table]:
    """The store's ``runs`` and ``plans`` as Arrow tables, with every committed result — also while a batch
    is running (the consolidated files plus the parts not merged yet; read again if a consolidation
    removed a part meanwhile)."""
    folder = Path(folder)
    if not (folder / RUNS).is_file() and not (folder / MANIFEST).is_file():
        raise InputError(folder, f"not a batch results folder (no {RUNS} or {MANIFEST})")
    for _ in range(20):
        parts = _parts(folder)
        runs, plans = [], []
        try:
            for name, into in ((RUNS, runs), (PLANS, plans)):
                if (folder / name).is_file():
                    into.append(pq.read_table(folder / name))
            for part in parts:
                runs.append(_read_arrow(part / PART_RUNS))
                plans.append(_read_arrow(part / PART_PLANS))
        except FileNotFoundError:
            time.sleep(0.05)   # a consolidation merged and removed a part while we read: read again
            continue
        return merge(runs, plans)
    raise InputError(folder, "the results folder kept changing while it was read; try again")


@dataclass
class Results:
    """A batch's results: ``runs`` and ``plans`` as pandas DataFrames, Arrow tables, or DuckDB relations.

    ``results.sql("select policy, avg(gini) from runs group by policy")`` runs DuckDB SQL with ``runs`` and
    ``plans`` as tables (needs ``pip install 'envelope-solver[duckdb]'``)."""

    folder: Path
    runs_table: pa.Table
    plans_table: pa.Table
    _con: Any = field(default=None, repr=False)

    @property
    def runs(self) -> Any:
        """``runs`` as a pandas DataFrame."""
        return self.runs_table.to_pandas()

    @property
    def plans(self) -> Any:
        """``plans`` as a pandas DataFrame."""
        return self.plans_table.to_pandas()

    @property
    def manifest(self) -> dict[str, Any]:
        """The store's ``manifest.json``."""
        return json.loads((self.folder / MANIFEST).read_text(encoding="utf-8"))

    def connection(self) -> Any:
        """A DuckDB connection with ``runs`` and ``plans`` registered."""
        if self._con is None:
            try:
                import duckdb
            except ImportError:
                raise ImportError("querying with SQL needs DuckDB: pip install 'envelope-solver[duckdb]'") from None
            self._con = duckdb.connect()
            self._con.register("runs", self.runs_table)
            self._con.register("plans", self.plans_table)
        return self._con

    def sql(self, query: str) -> Any:
        """A DuckDB relation for ``query`` (``.df()`` gives pandas, ``.show()`` prints it)."""
        return self.connection().sql(query)


def open_results(folder: str | Path) -> Results:
    """Open a batch results folder (complete, or being written by a running batch)."""
    runs, plans = read_results(folder)
    return Results(Path(folder), runs, plans)


# --------------------------------------------------------------------------- writing


def versions() -> dict[str, str]:
    """Versions of what produced the results."""
    from solver import __version__

    out = {"envelope-solver": __version__, "python": platform.python_version(), "platform": platform.platform()}
    for name in ("highspy", "numpy", "pandas", "pyarrow", "dask", "distributed"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Store:
    """The writer of a results folder (one per folder at a time: ``open_store``)."""

    def __init__(self, folder: Path, lock_fd: int | None) -> None:
        self.folder = folder
        self._lock_fd = lock_fd
        self._seq = self._last_seq() + 1
        self._merged_at = time.monotonic()
        self._pending = 0

    # -- life cycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Release the folder for the next batch."""
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _last_seq(self) -> int:
        seqs = [int(p.name.split("-")[0]) for p in _parts(self.folder) if p.name.split("-")[0].isdigit()]
        if (self.folder / RUNS).is_file():
            col = pq.read_table(self.folder / RUNS, columns=["seq"]).column("seq").to_pylist()
            seqs += [s for s in col if s is not None]
        return max(seqs, default=0)

    # -- results --------------------------------------------------------------------------

    def commit(self, runs: list[dict[str, Any]], plans: list[dict[str, Any]]) -> None:
        """Record finished scenarios (and their plans) in one atomic step."""
        if not runs:
            return
        seq, self._seq = self._seq, self._seq + 1
        name = f"{seq:010d}-{os.getpid()}-{secrets.token_hex(4)}"
        parts = self.folder / PARTS
        parts.mkdir(exist_ok=True)
        tmp = parts / f".tmp-{name}"
        tmp.mkdir()
        try:
            _write_arrow(table_of(runs, RUNS_SCHEMA, seq), tmp / PART_RUNS)
            _write_arrow(table_of(plans, PLANS_SCHEMA, seq), tmp / PART_PLANS)
            _fsync(tmp)
            os.rename(tmp, parts / name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _fsync(parts)
        self._pending += 1

    def consolidate(self, *, if_due: bool = False) -> None:
        """Merge the committed parts into ``runs.parquet`` and ``plans.parquet`` (``if_due``: only when
        ``CONSOLIDATE_SECONDS`` have passed since the last merge)."""
        if if_due and time.monotonic() - self._merged_at < CONSOLIDATE_SECONDS:
            return
        self._merged_at = time.monotonic()
        parts = _parts(self.folder)
        if not parts:
            return
        runs = [pq.read_table(self.folder / RUNS)] if (self.folder / RUNS).is_file() else []
        plans = [pq.read_table(self.folder / PLANS)] if (self.folder / PLANS).is_file() else []
        runs += [_read_arrow(p / PART_RUNS) for p in parts]
        plans += [_read_arrow(p / PART_PLANS) for p in parts]
        r, p = merge(runs, plans)
        _replace(p, self.folder / PLANS)     # plans first: a reader never sees a run without its plan
        _replace(r, self.folder / RUNS)
        _fsync(self.folder)
        for part in parts:
            shutil.rmtree(part, ignore_errors=True)
        self._pending = 0

    def completed(self, *, retry_failed: bool = False) -> dict[str, str]:
        """Ids already recorded, with their status (without ``retry_failed``: every one; with it: only those
        with a plan, so failed scenarios run again)."""
        runs, _ = read_results(self.folder)
        ids = runs.column("id").to_pylist()
        status = runs.column("status").to_pylist()
        return {i: s for i, s in zip(ids, status) if not retry_failed or s in PLAN_STATUSES}

    # -- manifest -------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        """The manifest as it is on disk (a new one if there is none)."""
        path = self.folder / MANIFEST
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                pass
        return {"format": FORMAT, "created": _now(), "runs": []}

    def start_run(self, entry: dict[str, Any]) -> int:
        """Append a batch run to the manifest (earlier runs still marked running were stopped: they hold no
        lock any more); returns its index."""
        data = self.manifest()
        for old in data["runs"]:
            if old.get("state") == "running":
                old["state"] = "stopped (killed or crashed: its committed results are kept)"
        data["runs"].append({"started": _now(), "state": "running", "versions": versions(), **entry})
        _write_json(data, self.folder / MANIFEST)
        return len(data["runs"]) - 1

    def finish_run(self, index: int, **figures: Any) -> None:
        """Record how a batch run ended."""
        data = self.manifest()
        if index < len(data["runs"]):
            data["runs"][index].update(finished=_now(), **figures)
        _write_json(data, self.folder / MANIFEST)


def _lock(folder: Path) -> int | None:
    """Hold ``LOCK`` in ``folder`` for this process, or ``InputError`` naming the batch that holds it."""
    if fcntl is None:  # pragma: no cover
        return None
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        raise InputError(folder, f"another envelope batch (pid {other or '?'}) is writing to this results folder; "
                                 "wait for it to finish, or choose another folder (-o)") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


#: What a results folder holds (``/``: a folder), listed in its marker so that anything else found there
#: (someone's notes) makes a later run refuse the folder rather than delete it.
STORE_ENTRIES = (RUNS, PLANS, MANIFEST, f"{PARTS}/", LOCK, f"{BASES}/", f"{DASK_SCRATCH}/", ".*.tmp-*")


def _mark(target: Path) -> None:
    """Write the results folder's marker (atomically), listing the store's entries and any an earlier Envelope
    output in the folder listed."""
    names = list(STORE_ENTRIES) + sorted((listed_entries(target) or set()) - set(STORE_ENTRIES))
    tmp = target / f".{MARKER}.tmp-{os.getpid()}"
    tmp.write_text(marker_text(names), encoding="utf-8")
    os.replace(tmp, target / MARKER)


def open_store(folder: str | Path, inputs: Iterable[str | Path] = ()) -> Store:
    """Open ``folder`` for a batch to write: create it (or reuse an earlier results folder, or any Envelope
    output or empty folder; anything else is refused, as is a folder holding an input), take its lock,
    remove what a killed batch left half-written, and merge the parts it committed."""
    target = check_output_folder(folder, inputs)
    try:
        target.mkdir(parents=True, exist_ok=True)
        fd = _lock(target)
        _mark(target)
    except OSError as exc:
        raise InputError(target, f"cannot use this results folder: {exc.strerror or exc}") from None
    try:
        for leftover in target.glob(".*.tmp-*"):
            leftover.unlink(missing_ok=True)
        for leftover in (target / PARTS).glob(".tmp-*") if (target / PARTS).is_dir() else ():
            shutil.rmtree(leftover, ignore_errors=True)
        shutil.rmtree(target / BASES, ignore_errors=True)          # left by a batch that was killed
        shutil.rmtree(target / DASK_SCRATCH, ignore_errors=True)
        for name, schema in ((RUNS, RUNS_SCHEMA), (PLANS, PLANS_SCHEMA)):
            if not (target / name).is_file():
                _replace(schema.empty_table(), target / name)
        store = Store(target, fd)
        store.consolidate()
    except BaseException:
        if fd is not None:
            os.close(fd)
        raise
    return store


@contextlib.contextmanager
def writing(folder: str | Path, inputs: Iterable[str | Path] = ()) -> Iterator[Store]:
    """``open_store`` as a context: the lock is released at the end."""
    store = open_store(folder, inputs)
    try:
        yield store
    finally:
        store.close()


__all__ = ["Results", "Store", "merge", "open_results", "open_store", "read_results", "versions", "writing"]
