"""Child-process worker for the OR-Tools backends (SCIP via ModelBuilder, CP-SAT).

Run as a *script*: ``python _ortools_worker.py TASK IN.pkl OUT.pkl``. It reads a pickled dict of
plain numpy arrays, solves, and writes a pickled dict of plain data. It imports only the standard
library, numpy, scipy and ortools, never the ``solver`` package (so nothing can pull in pulp or
highspy, whose ``libhighs.so.1`` clashes with the copy inside the ortools wheel).

It is deliberately not started through ``multiprocessing`` "spawn": spawn re-imports the parent's
``__main__`` module in the child, so a user script with ``import pulp`` at the top would load
highspy into the child before ortools and break it (reproduced with pulp 3.3.2, highspy 1.15.1,
ortools 9.15).

The module is also importable (the scaling helpers are pure numpy and are unit-tested); ortools
is imported only inside the solve functions. ``set_parent_death_signal`` lives here because this
script (which may import nothing from ``solver``) and the parent-side process plumbing both use it.

The worker never outlives its parent: the parent starts it with ``PR_SET_PDEATHSIG`` (Linux) and
the script also watches ``os.getppid()`` from a daemon thread (the portable fallback). Its files
are whatever paths the parent passes (on Linux ``/proc/self/fd/N`` of anonymous files, see
``solver.backends.ortools.ExchangeFiles``); it creates no file of its own.
"""

from __future__ import annotations

import math
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

#: CP-SAT represents a continuous column x as an integer z with x = z * CONT_SCALE.
CONT_SCALE = 1e-6
#: Largest power of ten a CP-SAT row or objective is multiplied by.
MAX_EXP = 9
#: Relative tolerance for "this scaled coefficient is an integer".
INT_TOL = 1e-9
#: Bound on |activity| of a scaled CP-SAT row or objective, well inside int64.
ACTIVITY_LIMIT = 2.0**62


def integer_scale(values: np.ndarray, max_exp: int = MAX_EXP) -> tuple[int, bool]:
    """Smallest ``10**k`` (k <= max_exp) making every value integral within ``INT_TOL`` relative.

    Returns ``(10**k, True)``, or ``(10**max_exp, False)`` when no such power exists; the caller
    then rounds ``values * 10**max_exp`` to integers, which perturbs a coefficient v by at most
    ``0.5e-9 / |v|`` relative (large for tiny v, e.g. small coefficients on continuous columns).
    """
    v = np.asarray(values, dtype=float)
    v = v[v != 0.0]
    if v.size == 0:
        return 1, True
    for k in range(max_exp + 1):
        s = v * float(10**k)
        if np.all(np.abs(s - np.round(s)) <= INT_TOL * np.abs(s)):
            return 10**k, True
    return 10**max_exp, False


def _ceil_tol(v: float) -> float:
    """ceil with a small relative tolerance against float noise (3.0000000000000004 -> 3)."""
    return float(math.ceil(v - INT_TOL * max(1.0, abs(v))))


def _floor_tol(v: float) -> float:
    """floor with a small relative tolerance against float noise (2.9999999999999996 -> 3)."""
    return float(math.floor(v + INT_TOL * max(1.0, abs(v))))


def cpsat_columns(p: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer domains of the CP-SAT columns and their scale (1 or ``CONT_SCALE``)."""
    integ = np.asarray(p["integrality"], dtype=bool)
    scale = np.where(integ, 1.0, CONT_SCALE)
    lo = np.array([_ceil_tol(v) for v in (p["col_lo"] / scale).tolist()])
    hi = np.array([_floor_tol(v) for v in (p["col_hi"] / scale).tolist()])
    return lo, hi, scale


def scale_row(
    coefs: np.ndarray, lo: float, hi: float, y_absmax: np.ndarray
) -> tuple[np.ndarray, float, float, int, bool]:
    """One row in integer form: (integer coefficients, lb, ub, row scale, exact?).

    ``coefs`` are already multiplied by the column scale. The right-hand sides are rounded
    conservatively (ceil the lower side, floor the upper side, with a 1e-9 relative tolerance
    for float noise); infinite sides stay infinite.
    """
    S, exact = integer_scale(coefs)
    q = np.round(coefs * float(S))
    lb = _ceil_tol(lo * S) if math.isfinite(lo) else -math.inf
    ub = _floor_tol(hi * S) if math.isfinite(hi) else math.inf
    if float(np.abs(q) @ y_absmax) >= ACTIVITY_LIMIT:
        raise OverflowError
    return q, lb, ub, S, exact


def scale_objective(d: np.ndarray, y_absmax: np.ndarray) -> tuple[np.ndarray, int, float]:
    """Integer objective coefficients, their scale S, and the bound correction.

    ``d`` is the objective on the integer columns (c times the column scale). For every feasible
    y, ``d @ y <= (r @ y) / S + correction``, so adding ``correction`` to CP-SAT's bound keeps it
    a valid bound on the true objective even when the coefficients had to be rounded. S is lowered
    below ``integer_scale``'s choice only if the objective's activity would overflow int64.
    """
    S, _ = integer_scale(d)
    while S > 1 and float(np.abs(np.round(d * float(S))) @ y_absmax) >= ACTIVITY_LIMIT:
        S //= 10
    r = np.round(d * float(S))
    correction = float(np.abs(d - r / float(S)) @ y_absmax)
    return r, S, correction


#: ``prctl`` option number of ``PR_SET_PDEATHSIG`` (linux/prctl.h).
PR_SET_PDEATHSIG = 1
_prctl: Callable[..., int] | None | bool = False   # False: not looked up yet


def _prctl_function() -> Callable[..., int] | None:
    """libc's ``prctl`` on Linux (looked up once, before any fork), else None."""
    global _prctl
    if _prctl is False:
        _prctl = None
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                _prctl = ctypes.CDLL(None, use_errno=True).prctl
            except (OSError, AttributeError):  # pragma: no cover - unusual libc
                _prctl = None
    return _prctl  # type: ignore[return-value]


def set_parent_death_signal(sig: int) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies; False where unsupported.

    Linux ``prctl(PR_SET_PDEATHSIG)``: the signal is sent when the parent *thread* that started this
    process exits, so start children from a thread that outlives them (the thread that waits for
    them does). Callers re-check ``os.getppid()`` afterwards: a parent that died before the call
    sends nothing.
    """
    fn = _prctl_function()
    if fn is None:
        return False
    return fn(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def watch_parent(parent: int, on_orphan: Callable[[], None], interval: float = 0.5) -> threading.Thread:
    """Start a daemon thread that calls ``on_orphan()`` once ``os.getppid()`` is no longer ``parent``
    (the portable fallback for ``set_parent_death_signal``)."""

    def loop() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        on_orphan()

    thread = threading.Thread(target=loop, name="envelope-parent-watch", daemon=True)
    thread.start()
    return thread


_stop_requested = False


def _note_sigint(signum: int, frame: object) -> None:
    global _stop_requested
    _stop_requested = True


def _ignore_sigint() -> None:
    """Outside the solve, note Ctrl-C instead of dying when running as the worker script (see
    ``__main__``): a stop asked for before the solve starts skips the solve (``_stopped_early``)."""
    if __name__ == "__main__":
        signal.signal(signal.SIGINT, _note_sigint)


def _stopped_early(out: dict[str, Any], status: str) -> bool:
    """True (and ``out`` says so) if the parent asked us to stop before the solver started."""
    if _stop_requested:
        out.update(status=status, message="interrupted before the solve started", seconds=0.0)
    return _stop_requested


def _rows(p: dict[str, Any]) -> list[tuple[np.ndarray, np.ndarray, float, float]]:
    indptr, indices, data = p["indptr"], p["indices"], p["data"]
    out = []
    for i in range(len(p["row_lo"])):
        s, e = int(indptr[i]), int(indptr[i + 1])
        out.append((indices[s:e], data[s:e], float(p["row_lo"][i]), float(p["row_hi"][i])))
    return out


def solve_cpsat(p: dict[str, Any]) -> dict[str, Any]:
    """Solve with CP-SAT after scaling the model to integers (see ``scale_row``)."""
    import ortools
    from ortools.sat.python import cp_model

    opts = p["options"]
    out: dict[str, Any] = {"version": f"ortools {ortools.__version__} (CP-SAT)", "notes": []}
    lo, hi, col_scale = cpsat_columns(p)
    empty = np.flatnonzero(lo > hi)
    if empty.size:
        j = int(empty[0])
        out.update(status="MODEL_INVALID", message=f"column {j} has no value on the CP-SAT integer grid")
        return out
    if max(np.abs(lo).max(initial=0.0), np.abs(hi).max(initial=0.0)) >= 2.0**53:
        out.update(status="MODEL_INVALID", message="a column bound is too large for CP-SAT (|bound| >= 2^53)")
        return out
    y_absmax = np.maximum(np.abs(lo), np.abs(hi))

    t_build = time.perf_counter()
    m = cp_model.CpModel()
    y = [m.new_int_var(int(a), int(b), "") for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]
    n_inexact = 0
    for i, (cols, vals, rlo, rhi) in enumerate(_rows(p)):
        if not (math.isfinite(rlo) or math.isfinite(rhi)):
            continue
        try:
            q, lb, ub, _, exact = scale_row(vals * col_scale[cols], rlo, rhi, y_absmax[cols])
        except OverflowError:
            out.update(status="MODEL_INVALID", message=f"row {i} overflows int64 after integer scaling")
            return out
        n_inexact += not exact
        lbi = cp_model.INT_MIN if lb < -(2.0**62) else int(lb)
        ubi = cp_model.INT_MAX if ub > 2.0**62 else int(ub)
        expr = cp_model.LinearExpr.weighted_sum([y[k] for k in cols.tolist()], [int(v) for v in q.tolist()])
        m.add_linear_constraint(expr, lbi, ubi)
    if n_inexact:
        out["notes"].append(f"{n_inexact} rows rounded to integers after scaling by 1e{MAX_EXP}")

    d = np.asarray(p["c"], dtype=float) * col_scale
    r, S, correction = scale_objective(d, y_absmax)
    nz = np.flatnonzero(r)
    has_objective = nz.size > 0
    if has_objective:
        terms = [y[k] for k in nz.tolist()]
        m.maximize(cp_model.LinearExpr.weighted_sum(terms, [int(v) for v in r[nz].tolist()]))
    if correction > 0.0:
        out["notes"].append(f"objective rounded at scale {S:g}; bound loosened by {correction:.3g}")
    invalid = m.validate()
    if invalid:
        out.update(status="MODEL_INVALID", message=invalid)
        return out
    out["build_seconds"] = time.perf_counter() - t_build

    solver = cp_model.CpSolver()
    prm = solver.parameters
    prm.max_time_in_seconds = float(opts["time_limit"])
    prm.relative_gap_limit = float(opts["mip_gap"])
    prm.num_workers = int(opts["threads"]) or 2
    prm.random_seed = int(opts["seed"])
    prm.log_search_progress = bool(opts["verbose"])
    if _stopped_early(out, "UNKNOWN"):
        return out
    t0 = time.perf_counter()
    status = solver.solve(m)
    out["seconds"] = time.perf_counter() - t0
    _ignore_sigint()  # CP-SAT resets SIGINT to the default (kill) handler after solving
    name = solver.status_name(status)
    out["status"] = name
    out["message"] = name
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        z = np.asarray(list(solver.response_proto.solution), dtype=float)[: len(y)]
        x = z * col_scale
        out["x"] = x
        out["objective"] = float(np.dot(p["c"], x) + p["offset"])
    if has_objective and status in (cp_model.OPTIMAL, cp_model.FEASIBLE, cp_model.UNKNOWN):
        b = float(solver.best_objective_bound)
        if math.isfinite(b):
            out["bound"] = b / float(S) + correction + float(p["offset"])
    elif status == cp_model.OPTIMAL:
        out["bound"] = out["objective"]
    return out


def solve_scip(p: dict[str, Any]) -> dict[str, Any]:
    """Solve with SCIP through OR-Tools ModelBuilder, the model passed as sparse arrays."""
    import ortools
    import scipy.sparse as sp
    from ortools.linear_solver.python import model_builder as mb
    from ortools.linear_solver.python import model_builder_helper as mbh

    opts = p["options"]
    out: dict[str, Any] = {"version": f"ortools {ortools.__version__} (SCIP)", "notes": []}
    n, n_rows = len(p["c"]), len(p["row_lo"])
    t_build = time.perf_counter()
    model = mb.Model()
    h = model.helper
    A = sp.csr_matrix((p["data"], p["indices"], p["indptr"]), shape=(n_rows, n))
    h.fill_model_from_sparse_data(
        np.asarray(p["col_lo"], dtype=float),
        np.asarray(p["col_hi"], dtype=float),
        np.asarray(p["c"], dtype=float),
        np.asarray(p["row_lo"], dtype=float),
        np.asarray(p["row_hi"], dtype=float),
        A,
    )
    for j in np.flatnonzero(p["integrality"]).tolist():
        h.set_var_integrality(j, True)
    h.set_maximize(True)
    h.set_objective_offset(float(p["offset"]))
    out["build_seconds"] = time.perf_counter() - t_build

    solver = mbh.ModelSolverHelper("scip")
    if not solver.solver_is_supported():
        out.update(status="SOLVER_TYPE_UNAVAILABLE", message="this ortools build has no SCIP")
        return out
    solver.enable_output(bool(opts["verbose"]))
    solver.set_time_limit_in_seconds(float(opts["time_limit"]))
    params = [f"limits/gap = {float(opts['mip_gap'])!r}"]
    if int(opts["seed"]):
        params.append(f"randomization/randomseedshift = {int(opts['seed'])}")
    if opts.get("tolerance") is not None:   # a strict re-solve asked by the solve core (exact money)
        params.append(f"numerics/feastol = {float(opts['tolerance'])!r}")
    # SCIP in OR-Tools is single-threaded; options.threads is ignored.
    solver.set_solver_specific_parameters("\n".join(params))
    if _stopped_early(out, "NOT_SOLVED"):
        return out
    t0 = time.perf_counter()
    solver.solve(h)
    out["seconds"] = time.perf_counter() - t0
    _ignore_sigint()
    status = mb.SolveStatus(solver.status())
    out["status"] = status.name
    out["message"] = solver.status_string() or status.name
    if solver.has_solution():
        out["x"] = np.asarray(solver.variable_values(), dtype=float)
        out["objective"] = float(solver.objective_value())
        b = float(solver.best_objective_bound())
        if math.isfinite(b):
            out["bound"] = b
    return out


def probe() -> dict[str, Any]:
    """Import both OR-Tools entry points and report the version (availability check)."""
    import ortools
    from ortools.linear_solver.python import model_builder_helper as mbh
    from ortools.sat.python import cp_model  # noqa: F401

    return {"version": ortools.__version__, "scip": bool(mbh.ModelSolverHelper("scip").solver_is_supported())}


TASKS = {"scip": solve_scip, "cpsat": solve_cpsat}


def main(argv: list[str]) -> int:
    """Entry point: ``TASK IN.pkl OUT.pkl``; the result is pickled to OUT.pkl.

    The parent trusts OUT.pkl only when this process exits with 0 (after the write completed), so
    OUT may be an anonymous file the parent passed as ``/proc/self/fd/N``.
    """
    task, in_path, out_path = argv
    if task == "probe":
        result = probe()
    else:
        with open(in_path, "rb") as fh:
            payload = pickle.load(fh)
        result = TASKS[task](payload)
    with open(out_path, "wb") as fh:
        pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return 0


if __name__ == "__main__":
    # Run as a script, sys.path[0] is this directory, where solver/backends/ortools.py would
    # shadow the real ortools package: drop it before anything imports ortools.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [q for q in sys.path if os.path.abspath(q or os.curdir) != here]
    # The parent forwards Ctrl-C as SIGINT. CP-SAT and SCIP install their own SIGINT handlers while
    # solving (they stop and keep the incumbent); outside the solve it is noted, so that the result
    # is still written (and a solve not yet started is skipped) and the parent reports the interrupt.
    _ignore_sigint()
    # Never outlive the parent (it also set PR_SET_PDEATHSIG on Linux before exec): a parent killed
    # with SIGKILL cannot stop us, and nobody would read the result.
    parent = os.getppid()
    if parent != 1:
        watch_parent(parent, lambda: os._exit(1))
    sys.exit(main(sys.argv[1:]))
