"""OR-Tools backends: SCIP (through ModelBuilder) and CP-SAT, each solved in a child process.

OR-Tools 9.15 and highspy 1.15 both ship ``libhighs.so.1`` and cannot be loaded into one process
(``import pulp`` loads highspy eagerly). So ortools is never imported here: the model is pickled
as plain arrays, ``_ortools_worker.py`` is run as a script by the same interpreter, and the result
comes back as plain data. The worker is a script rather than a ``multiprocessing`` spawn target
because spawn re-imports the parent's ``__main__`` in the child (see the worker's docstring).

CP-SAT is integer-only, so the worker scales the model to integers: continuous columns become
integers in units of 1e-6 (they need finite bounds), each row is multiplied by the smallest power
of ten up to 1e9 that makes it integral (else rounded at 1e9), right-hand sides are rounded
conservatively, and the objective is rounded with a correction added to the bound so the bound
stays valid. The reported objective is recomputed in floating point from the returned x.

Child processes (this worker and CBC, see ``start_child``) never outlive Envelope and leave no file:
each runs in its own session (a terminal's Ctrl-C reaches only Envelope, which forwards SIGINT so the
solver stops *and* its incumbent comes back), dies with its parent (``PR_SET_PDEATHSIG`` on Linux),
and exchanges data through ``ExchangeFiles``: anonymous files on Linux, so that nothing stays on
disk even when Envelope itself is killed with SIGKILL.
"""

from __future__ import annotations

import importlib.util
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from types import TracebackType
from typing import IO, Any, ClassVar

import numpy as np

from solver.backends._ortools_worker import (
    CONT_SCALE,
    INT_TOL,
    _prctl_function,
    integer_scale,
    set_parent_death_signal,
)
from solver.backends.base import Capabilities, SolveOptions, cannot_write, no_lp_duals, strict_at_scale
from solver.backends.result import ABS_GAP, LpDuals, SolutionStatus, SolveResult, Termination, normalise
from solver.errors import BackendError
from solver.mip.arrays import MILP

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ortools_worker.py")

#: Rule families (and row-name prefixes, which are more precise) in the user's terms, for refusals.
FEATURES: dict[str, str] = {
    "fair_dev": "fair shares in 'deviation' mode",
    "fair_floor": "penalised fair-share floors",
    "fair_cap": "penalised fair-share caps",
    "fair_share": "fair shares",
    "budget": "the budget rows",
    "carry_over": "carry-over",
    "match": "local match funding",
    "mandatory": "mandatory projects",
    "commitment": "commitments",
    "alternatives": "alternatives groups",
    "dependency": "dependencies",
    "standardisation": "standardisation",
}
_USE = "use --backend highs (or cbc, scip), which solve it exactly"


def _feature(model: MILP, i: int) -> str:
    name = str(model.row_names[i]) if i < len(model.row_names) else f"row {i}"
    family = str(model.row_family[i]) if i < len(model.row_family) else ""
    term = FEATURES.get(name.split("[", 1)[0]) or FEATURES.get(family) or (family or "a rule")
    return f"{term} (row {name})"


def _on_grid(v: float, S: int) -> bool:
    """True if the side ``v`` of a row scaled by ``S`` is an integer (1e-9 relative, as the worker)."""
    w = v * S
    return abs(w - round(w)) <= INT_TOL * max(1.0, abs(w))


def cpsat_refusal(model: MILP) -> str | None:
    """Why CP-SAT cannot solve ``model`` exactly, or None. See ``CpSatBackend.refusal``."""
    integ = np.asarray(model.integrality, dtype=bool)
    col_scale = np.where(integ, 1.0, CONT_SCALE)
    free = ~integ & (np.asarray(model.col_hi) > np.asarray(model.col_lo))   # continuous and not fixed
    costed = free & (np.asarray(model.c) != 0.0)
    A = model.A.tocsr()
    lo, hi = np.asarray(model.row_lo, dtype=float), np.asarray(model.row_hi, dtype=float)
    eq = np.isfinite(lo) & (lo == hi)
    pattern = abs(A).astype(bool).astype(float)
    has_costed = (pattern @ costed.astype(float)) > 0
    drift: dict[int, float] = {}           # costed continuous columns whose optimal value may be rounded
    first_drift = -1
    for i in np.flatnonzero(eq | (has_costed & (np.isfinite(lo) | np.isfinite(hi)))).tolist():
        s, e = int(A.indptr[i]), int(A.indptr[i + 1])
        cols = A.indices[s:e]
        coefs = A.data[s:e] * col_scale[cols]
        S, exact = integer_scale(coefs)
        q = np.abs(np.round(coefs * float(S)))
        sides = [v for v in (lo[i], hi[i]) if math.isfinite(v)]
        sides_ok = all(_on_grid(v, S) for v in sides)
        if eq[i]:
            if not exact:
                return (f"{_feature(model, i)} cannot be kept exactly: CP-SAT cannot scale the equality's "
                        f"coefficients to integers, so it would report no plan or a worse one; {_USE}")
            f = free[cols]
            if f.any() and not (sides_ok and np.any(q[f] == 1.0)):
                return (f"{_feature(model, i)} cannot be kept exactly: the equality's continuous amounts meet it "
                        f"only off CP-SAT's £1 grid, so it would report no plan or a worse one; {_USE}")
            continue
        c = costed[cols]
        if exact and sides_ok and np.all(q[c] == 1.0):
            continue
        for j in cols[c].tolist():
            drift[j] = abs(float(model.c[j]))
        if first_drift < 0:
            first_drift = i
    total = sum(drift.values()) * CONT_SCALE
    if total > ABS_GAP:
        return (f"{_feature(model, first_drift)} cannot be kept exactly: CP-SAT rounds the penalised amounts to "
                f"its £1 grid, which can move the objective by up to {total:.3g} and break the plan audit; {_USE}")
    return None


def _payload(model: MILP, options: SolveOptions) -> dict[str, Any]:
    A = model.A.tocsr()
    return {
        "c": np.asarray(model.c, dtype=float),
        "col_lo": np.asarray(model.col_lo, dtype=float),
        "col_hi": np.asarray(model.col_hi, dtype=float),
        "integrality": np.asarray(model.integrality, dtype=bool),
        "indptr": np.asarray(A.indptr, dtype=np.int64),
        "indices": np.asarray(A.indices, dtype=np.int64),
        "data": np.asarray(A.data, dtype=float),
        "row_lo": np.asarray(model.row_lo, dtype=float),
        "row_hi": np.asarray(model.row_hi, dtype=float),
        "offset": float(model.offset),
        "options": options.as_dict(),
    }


#: Anonymous exchange files (``/proc/self/fd/N``) where the platform offers them.
ANONYMOUS_FILES = sys.platform.startswith("linux") and os.path.isdir("/proc/self/fd")


class ExchangeFiles:
    """Files shared with a child process that leave nothing on disk, even if Envelope is killed.

    On Linux each file is anonymous (``tempfile.TemporaryFile``: ``O_TMPFILE``, or unlinked at once),
    inherited by the child (``fds``) and named ``/proc/self/fd/N`` in both processes. Elsewhere the
    files are named ones in a private directory ``envelope-<label>-<pid>-*`` removed on exit. Use as
    a context manager; ``new(name)`` gives ``(path, file object)``.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self._files: list[IO[bytes]] = []
        self._dir: str | None = None

    def __enter__(self) -> ExchangeFiles:
        if not ANONYMOUS_FILES:
            self._dir = tempfile.mkdtemp(prefix=f"envelope-{self.label}-{os.getpid()}-")
        return self

    def new(self, name: str) -> tuple[str, IO[bytes]]:
        """A new empty file: the path to give the child (and ``open`` here) and an open handle."""
        if self._dir is None:
            fh: IO[bytes] = tempfile.TemporaryFile(prefix=f"envelope-{self.label}-")
            path = f"/proc/self/fd/{fh.fileno()}"
        else:
            path = os.path.join(self._dir, name)
            fh = open(path, "w+b")  # noqa: SIM115 - closed in __exit__
        self._files.append(fh)
        return path, fh

    @property
    def fds(self) -> tuple[int, ...]:
        """Descriptors the child must inherit (``pass_fds``)."""
        return tuple(fh.fileno() for fh in self._files) if self._dir is None else ()

    @staticmethod
    def read(fh: IO[bytes]) -> bytes:
        """Everything in ``fh`` (written by the child through its path)."""
        fh.seek(0)
        return fh.read()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for fh in self._files:
            fh.close()
        self._files.clear()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _child_setup(parent: int) -> Callable[[], None]:
    """``preexec_fn`` for a solver child: SIGKILL when the parent (thread) dies; exit at once if the
    parent is already gone. libc's ``prctl`` is looked up here, before the fork."""
    _prctl_function()

    def setup() -> None:
        set_parent_death_signal(signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)

    return setup


def start_child(args: list[str], files: ExchangeFiles, **popen: Any) -> subprocess.Popen[bytes]:
    """Start a solver child that cannot outlive this process (see the module docstring).

    POSIX: own session (signals reach it only through us), ``PR_SET_PDEATHSIG`` SIGKILL (Linux),
    the exchange files inherited. Wait for it from the thread that started it.
    """
    if os.name == "posix":
        popen.update(start_new_session=True, pass_fds=files.fds, preexec_fn=_child_setup(os.getpid()))
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, **popen)


def reap(proc: subprocess.Popen[bytes]) -> None:
    """Make sure ``proc`` is gone: kill it if it still runs, and wait for it (bounded)."""
    if proc.poll() is None:
        proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - unkillable (D state)
            pass


def run_worker(
    task: str, payload: dict[str, Any] | None, *, backend: str, timeout: float, verbose: bool
) -> dict[str, Any]:
    """Run ``_ortools_worker.py TASK`` in a fresh interpreter and return its result dict.

    Raises ``BackendError`` if the child fails, crashes or overruns ``timeout``. On
    ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM through the CLI) the child is asked to stop (SIGINT:
    CP-SAT and SCIP stop and keep their incumbent); its result comes back with
    ``"interrupted": True``, or, if it has none within ``INTERRUPT_GRACE`` seconds, the child is
    killed and the interrupt re-raised. The child never outlives this call.
    """
    hint = "pip install ortools"
    with ExchangeFiles("ortools") as files:
        in_path, in_fh = files.new("in.pkl")
        out_path, out_fh = files.new("out.pkl")
        _, err = files.new("stderr.txt")
        pickle.dump(payload, in_fh, protocol=pickle.HIGHEST_PROTOCOL)
        in_fh.flush()
        interrupted = False
        proc = start_child([sys.executable, WORKER, task, in_path, out_path], files,
                           stdout=None if verbose else subprocess.DEVNULL, stderr=err)
        try:
            try:
                code = proc.wait(timeout=timeout)
            except KeyboardInterrupt:
                interrupted = True
                code = _interrupt(proc)
            except subprocess.TimeoutExpired:
                msg = f"{backend}: the OR-Tools worker did not finish within {timeout:.0f} s"
                raise BackendError(msg) from None
        finally:
            reap(proc)
        data = files.read(out_fh)
        if interrupted:
            try:
                result: dict[str, Any] = pickle.loads(data)
            except Exception:  # noqa: BLE001 - no (complete) result: the interrupt wins
                raise KeyboardInterrupt from None
        elif code != 0 or not data:
            tail = files.read(err).decode("utf-8", errors="replace").strip().splitlines()[-3:]
            detail = " | ".join(tail) if tail else "no output"
            raise BackendError(
                f"{backend}: the OR-Tools worker failed (exit code {code}): {detail}; "
                f"install or repair with: {hint}"
            )
        else:
            result = pickle.loads(data)
    result["interrupted"] = interrupted
    return result


#: Seconds an interrupted child gets to stop its solver and write what it has.
INTERRUPT_GRACE = 10.0


def _interrupt(proc: subprocess.Popen[bytes]) -> int:
    """Stop a child after Ctrl-C in the parent; its exit code, or re-raise if it will not stop."""
    try:
        if os.name != "posix":
            raise subprocess.TimeoutExpired(proc.args, 0)
        proc.send_signal(signal.SIGINT)  # the child is in its own session: only we can tell it
        return proc.wait(timeout=INTERRUPT_GRACE)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        reap(proc)
        raise KeyboardInterrupt from None


def interrupt_repeatedly(proc: subprocess.Popen[bytes], grace: float = INTERRUPT_GRACE,
                         every: float = 0.25) -> int:
    """Send SIGINT every ``every`` seconds until ``proc`` exits (CBC ignores SIGINT until its
    branch and bound starts); its exit code. Kills it and re-raises ``KeyboardInterrupt`` after
    ``grace`` seconds or on another interrupt."""
    deadline = time.monotonic() + grace
    try:
        if os.name != "posix":
            raise subprocess.TimeoutExpired(proc.args, 0)
        while True:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(proc.args, grace)
            try:
                return proc.wait(timeout=min(every, left))
            except subprocess.TimeoutExpired:
                continue
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        reap(proc)
        raise KeyboardInterrupt from None


class _OrToolsBackend:
    """Shared child-process plumbing; subclasses set ``name``, ``_task`` and ``_statuses``."""

    name = ""
    install_hint = "pip install ortools"
    _task = ""
    #: solver status name -> (termination, status when no point is returned)
    _statuses: ClassVar[dict[str, tuple[Termination, SolutionStatus]]] = {}

    capabilities = Capabilities()

    def refusal(self, model: MILP) -> str | None:
        """None: this backend solves every model Envelope builds."""
        return None

    def lp_duals(self, model: MILP) -> LpDuals:
        """Not offered by the OR-Tools backends: raises ``BackendError`` naming the backend to use."""
        raise BackendError(no_lp_duals(self.name))

    def write_model(self, model: MILP, path: str, fmt: str, comment: str = "") -> None:
        """Not offered (``capabilities.writes`` is empty): raises ``BackendError`` naming the backends that write."""
        from solver.backends import backends_with

        raise BackendError(cannot_write(self.name, fmt, backends_with("writes")))

    def available(self) -> bool:
        """True if ortools is installed; checked without importing it (see module docstring)."""
        return importlib.util.find_spec("ortools") is not None

    def version(self) -> str:
        """Installed ortools version."""
        from importlib.metadata import version

        return version("ortools")

    def _check(self, model: MILP) -> None:
        """Raise ``BackendError`` for models this backend cannot take."""

    def solve(self, model: MILP, options: SolveOptions, start: np.ndarray | None = None) -> SolveResult:
        """Solve in a child process and normalise the result."""
        self._check(model)
        timeout = 2.0 * float(options.time_limit) + 120.0  # model build and imports are not in the limit
        raw = run_worker(
            self._task, _payload(model, options), backend=self.name, timeout=timeout, verbose=options.verbose
        )
        return self._result(raw, options)

    def _result(self, raw: dict[str, Any], options: SolveOptions) -> SolveResult:
        name = str(raw.get("status", "ERROR"))
        term, status = self._statuses.get(name, (Termination.ERROR, SolutionStatus.ERROR))
        if raw.get("interrupted") and term == Termination.TIME_LIMIT:
            term = Termination.INTERRUPTED  # the solver stopped early because we asked it to
        x = raw.get("x")
        return normalise(self.name, term, status, x=x, objective=raw.get("objective") if x is not None else None,
                         bound=raw.get("bound"), seconds=float(raw.get("seconds", 0.0)),
                         version=str(raw.get("version", "")), message=str(raw.get("message", name)),
                         options=options.as_dict(), notes=list(raw.get("notes", [])))


class ScipBackend(_OrToolsBackend):
    """SCIP through OR-Tools ModelBuilder (arrays passed in with one sparse-matrix call)."""

    name = "scip"
    _task = "scip"
    _statuses: ClassVar[dict[str, tuple[Termination, SolutionStatus]]] = {
        "OPTIMAL": (Termination.OPTIMAL, SolutionStatus.OPTIMAL),
        "FEASIBLE": (Termination.TIME_LIMIT, SolutionStatus.FEASIBLE),
        "INFEASIBLE": (Termination.INFEASIBLE, SolutionStatus.INFEASIBLE),
        "UNBOUNDED": (Termination.UNBOUNDED, SolutionStatus.ERROR),
        "NOT_SOLVED": (Termination.TIME_LIMIT, SolutionStatus.NO_SOLUTION),
        "CANCELLED_BY_USER": (Termination.INTERRUPTED, SolutionStatus.NO_SOLUTION),
    }

    def solve(self, model: MILP, options: SolveOptions, start: np.ndarray | None = None) -> SolveResult:
        """Solve in a child process (strictly when the model's rows reach £1bn: ``strict_at_scale``)."""
        return super().solve(model, strict_at_scale(model, options), start)

    def _result(self, raw: dict[str, Any], options: SolveOptions) -> SolveResult:
        if raw.get("x") is None:
            raw = {**raw, "bound": None}  # SCIP reports bound 0.0 when it stops with no solution
        return super()._result(raw, options)


class CpSatBackend(_OrToolsBackend):
    """CP-SAT on an integer-scaled copy of the model (see module docstring)."""

    name = "cpsat"
    _task = "cpsat"
    capabilities = Capabilities(exact_continuous=False)
    _statuses: ClassVar[dict[str, tuple[Termination, SolutionStatus]]] = {
        "OPTIMAL": (Termination.OPTIMAL, SolutionStatus.OPTIMAL),
        "FEASIBLE": (Termination.TIME_LIMIT, SolutionStatus.FEASIBLE),
        "INFEASIBLE": (Termination.INFEASIBLE, SolutionStatus.INFEASIBLE),
        "MODEL_INVALID": (Termination.ERROR, SolutionStatus.ERROR),
        "UNKNOWN": (Termination.TIME_LIMIT, SolutionStatus.NO_SOLUTION),
    }

    def refusal(self, model: MILP) -> str | None:
        """Why CP-SAT cannot solve ``model`` exactly (None when it can).

        CP-SAT solves an integer copy: continuous columns in £1 steps (1e-6 £m), each row scaled by a
        power of ten up to 1e9 (see the module docstring). That copy is exact unless (a) an equality
        row has coefficients that no such power makes integral, or continuous amounts that cannot
        meet it on the grid (fair shares in 'deviation' mode with shares like 1/3: CP-SAT reported
        "infeasible" or only the empty plan), or (b) penalised continuous amounts (fair-share slack in
        penalty mode) sit in rows off the grid, so their rounding moves the objective by more than
        ``ABS_GAP`` (the audit then rejected the plan). Models with neither are solved as before.
        """
        return cpsat_refusal(model)

    def _check(self, model: MILP) -> None:
        refusal = self.refusal(model)
        if refusal is not None:
            raise BackendError(f"backend {self.name} cannot solve this model exactly: {refusal}")
        cont = ~np.asarray(model.integrality, dtype=bool)
        bad = ~(np.isfinite(model.col_lo) & np.isfinite(model.col_hi))
        if np.any(bad & cont):
            raise BackendError("cpsat needs finite bounds on continuous variables")
        if np.any(bad & ~cont):
            raise BackendError("cpsat needs finite bounds on integer variables")
