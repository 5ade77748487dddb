"""HiGHS through highspy: the model's arrays are passed straight in (no per-term Python)."""

from __future__ import annotations

import os
import threading
import time

import numpy as np

from solver.backends.base import MODEL_FORMATS, Capabilities, SolveOptions, cannot_write
from solver.backends.result import LpDuals, SolutionStatus, SolveResult, Termination, normalise
from solver.errors import BackendError
from solver.mip.arrays import MILP


def highs_lp(model: MILP, *, integer: bool) -> object:
    """The model as a ``highspy.HighsLp`` (maximisation), with integrality or as its LP relaxation."""
    import highspy

    lp = highspy.HighsLp()
    lp.num_col_ = model.n_cols
    lp.num_row_ = model.n_rows
    lp.col_cost_ = model.c.astype(float)
    lp.col_lower_ = model.col_lo
    lp.col_upper_ = model.col_hi
    lp.row_lower_ = np.where(np.isfinite(model.row_lo), model.row_lo, -highspy.kHighsInf)
    lp.row_upper_ = np.where(np.isfinite(model.row_hi), model.row_hi, highspy.kHighsInf)
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.offset_ = float(model.offset)
    csc = model.A.tocsc()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
    lp.a_matrix_.index_ = csc.indices.astype(np.int32)
    lp.a_matrix_.value_ = csc.data.astype(float)
    if integer:
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
            for i in model.integrality
        ]
    return lp


#: How long past its time limit HiGHS may run before it is told to stop, and then before it is left
#: behind: together within the 10% of the limit that ``--time-limit`` promises (decoding and the audit
#: take the rest).
OVERRUN = 0.01
STOP_GRACE = 0.04


def _run_with_deadline(h: object, time_limit: float) -> tuple[Termination | None, bool]:
    """Run ``h`` on a thread of its own (HiGHS releases the GIL) while this thread keeps the clock
    and the keyboard.

    HiGHS checks its time limit during presolve and the search, but not in its MIP setup (on a model
    of ~100k binaries that took 10-20 s here). Past ``time_limit`` × (1 + ``OVERRUN``) + 0.1 s it is
    told to stop (``cancelSolve``, heard through highspy's user-interrupt callback); if it has not
    stopped ``STOP_GRACE`` × the limit (+ 0.1 s) later, it is left behind (a daemon thread that stops
    at its next check) and the termination is returned, so the caller can fall back to the plan it
    started from. Ctrl-C is forwarded the same way (HiGHS keeps its incumbent, reported as
    interrupted). Returns (why it was told to stop — None if it was not —, whether it stopped).
    (highspy's own ``startSolve`` is not used: its lock
    is shared by every ``Highs`` of the process, so a solve left behind would block the next one.)
    """
    import highspy

    h.HandleUserInterrupt = True  # type: ignore[attr-defined]  # cancelSolve() is heard
    done = threading.Event()

    def run() -> None:
        try:
            highspy._core._Highs.run(h)
        finally:
            done.set()

    threading.Thread(target=run, daemon=True, name="envelope-highs").start()
    why = Termination.TIME_LIMIT
    told: float | None = None
    t0 = time.perf_counter()
    while True:
        try:
            if done.wait(0.1):
                return (why if told is not None else None), True
        except KeyboardInterrupt:
            why = Termination.INTERRUPTED
            if told is None:
                h.cancelSolve()  # type: ignore[attr-defined]
                told = time.perf_counter()
            continue
        now = time.perf_counter()
        if told is None and now - t0 > time_limit * (1 + OVERRUN) + 0.1:
            h.cancelSolve()  # type: ignore[attr-defined]
            told = now
        if told is not None and now - told > time_limit * STOP_GRACE + 0.1:
            return why, False


class HighsBackend:
    """Default backend: fastest to build and to reach 0.1% on the England instance."""

    name = "highs"
    install_hint = "pip install highspy"

    capabilities = Capabilities(mip_start=True, lp_duals=True, writes=frozenset(MODEL_FORMATS))

    def refusal(self, model: MILP) -> str | None:
        """None: this backend solves every model Envelope builds."""
        return None

    def available(self) -> bool:
        """True if highspy imports."""
        try:
            import highspy  # noqa: F401
        except Exception:
            return False
        return True

    def version(self) -> str:
        """highspy version."""
        from importlib.metadata import version

        return version("highspy")

    def solve(self, model: MILP, options: SolveOptions, start: np.ndarray | None = None) -> SolveResult:
        """Solve with HiGHS; status read from the model status and the solution info. A ``start``
        point's integer values are passed as a MIP start (HiGHS completes and checks it, and ignores it
        if it cannot be completed to a feasible point)."""
        import highspy

        h = highspy.Highs()
        h.setOptionValue("output_flag", bool(options.verbose))
        h.setOptionValue("time_limit", float(options.time_limit))
        h.setOptionValue("mip_rel_gap", float(options.mip_gap))
        h.setOptionValue("random_seed", int(options.seed))
        if options.threads:
            h.setOptionValue("threads", int(options.threads))
        if options.tolerance is not None:
            # strict re-solve (see ``SolveOptions.tolerance``): presolve off too, as its reductions
            # with tight tolerances proved a wrong bound on £k-tie knapsacks at £100bn
            h.setOptionValue("primal_feasibility_tolerance", float(options.tolerance))
            h.setOptionValue("mip_feasibility_tolerance", float(options.tolerance))
            h.setOptionValue("presolve", "off")

        h.passModel(highs_lp(model, integer=True))
        if start is not None:
            # integer part only: HiGHS completes the continuous part itself
            idx = np.flatnonzero(model.integrality).astype(np.int32)
            h.setSolution(int(idx.size), idx, np.round(np.asarray(start, dtype=float)[idx]))

        t0 = time.perf_counter()
        cancelled, stopped = _run_with_deadline(h, float(options.time_limit))
        seconds = time.perf_counter() - t0
        if not stopped:
            return SolveResult(backend=self.name, termination=cancelled or Termination.TIME_LIMIT,
                               status=SolutionStatus.NO_SOLUTION,
                               x=None, objective=None, bound=None, gap=None, solve_seconds=seconds,
                               solver_version=self.version(), options=options.as_dict(),
                               message=f"HiGHS did not stop within {seconds:.1f} s of a {options.time_limit:g} s "
                                       "limit (it does not check the clock in its MIP setup); left behind")

        ms = h.getModelStatus()
        info = h.getInfo()
        has_point = info.primal_solution_status == 2  # kSolutionStatusFeasible
        x = np.asarray(h.getSolution().col_value, dtype=float) if has_point else None
        objective = float(info.objective_function_value) if has_point else None
        if x is not None and objective is not None:
            own = model.objective_value(x)
            if abs(own - objective) > 1e-6 * max(1.0, abs(objective)):
                if start is not None and ms != highspy.HighsModelStatus.kInterrupt:
                    # highspy 1.16.0, after a MIP start, can report the incumbent's objective with a
                    # stale solution vector: solve again without the start (the audit caught this).
                    again = self.solve(model, options, None)
                    again.solve_seconds += seconds
                    again.message = f"{again.message} (re-solved without the start: the solver's " \
                                    f"solution did not match its objective {objective:.6f})"
                    return again
                objective = own     # report what the returned plan is worth, never more
        bound = float(info.mip_dual_bound) if model.n_integer else objective
        MS = highspy.HighsModelStatus
        if ms == MS.kOptimal:
            term, status = Termination.OPTIMAL, SolutionStatus.OPTIMAL
        elif ms == MS.kInfeasible:
            term, status = Termination.INFEASIBLE, SolutionStatus.INFEASIBLE
        elif ms == MS.kTimeLimit:
            term, status = Termination.TIME_LIMIT, SolutionStatus.NO_SOLUTION
        elif ms == MS.kInterrupt:   # told to stop: by the clock (our deadline) or by Ctrl-C
            term = Termination.TIME_LIMIT if cancelled == Termination.TIME_LIMIT else Termination.INTERRUPTED
            status = SolutionStatus.NO_SOLUTION
        elif ms in (MS.kUnbounded, MS.kUnboundedOrInfeasible):
            term, status = Termination.UNBOUNDED, SolutionStatus.ERROR
        else:
            term, status = Termination.ERROR, SolutionStatus.ERROR
        # a returned point makes NO_SOLUTION/ERROR "feasible", and a plan worth less than the bound the
        # solver proved (objective recomputed above) "optimal" only within mip_gap: both in ``normalise``
        return normalise(self.name, term, status, x=x, objective=objective, bound=bound, seconds=seconds,
                         version=self.version(), message=h.modelStatusToString(ms), options=options.as_dict())

    def lp_duals(self, model: MILP) -> LpDuals:
        """Solve the LP relaxation of ``model`` (integrality dropped) and return its solution and duals.

        Raises ``BackendError`` unless HiGHS proves the relaxation optimal.
        """
        import highspy

        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.passModel(highs_lp(model, integer=False))  # no integrality: the LP relaxation
        h.run()
        ms = h.getModelStatus()
        if ms != highspy.HighsModelStatus.kOptimal:
            raise BackendError(f"backend {self.name}: LP relaxation not solved: {h.modelStatusToString(ms)}")
        sol = h.getSolution()
        return LpDuals(backend=self.name, objective=float(h.getInfo().objective_function_value),
                       row_activity=np.asarray(sol.row_value, dtype=float),
                       row_dual=np.asarray(sol.row_dual, dtype=float),
                       col_value=np.asarray(sol.col_value, dtype=float),
                       col_dual=np.asarray(sol.col_dual, dtype=float))

    def write_model(self, model: MILP, path: str, fmt: str, comment: str = "") -> None:
        """Write ``model`` with HiGHS's own writer (``writeModel``: the format follows the file's extension,
        so ``path`` must end in ``.mps`` or ``.lp``), names as given, then prepend ``comment``.

        HiGHS writes the sense (MPS ``OBJSENSE MAX``, LP ``max``) and the objective offset (MPS: the
        objective row's RHS, ``-offset`` by the MPS convention; LP: a constant term). One line is changed:
        HiGHS 1.15 heads the LP binaries section ``bin``, which CBC 2.10's LP reader does not know (it reads
        ``bin`` as a variable and the binaries as continuous); ``binary`` — a keyword of the CPLEX LP format,
        read by HiGHS and CBC alike (tested) — is written instead. (No name can be ``bin``: callers keep LP
        keywords out of names, so the line is always the section's head.)
        """
        import highspy

        if fmt not in self.capabilities.writes:
            raise BackendError(cannot_write(self.name, fmt, []))
        if not path.endswith(f".{fmt}"):
            raise ValueError(f"HiGHS picks the format by the file's extension: {path} does not end in .{fmt}")
        if len(model.col_names) != model.n_cols or len(model.row_names) != model.n_rows:
            raise ValueError("every column and row needs a name")
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        lp = highs_lp(model, integer=True)
        lp.col_names_ = list(model.col_names)
        lp.row_names_ = list(model.row_names)
        if h.passModel(lp) != highspy.HighsStatus.kOk:
            raise BackendError(f"backend {self.name}: HiGHS refused the model it was to write")
        scratch = f"{path[: -len(fmt) - 1]}.highs.{fmt}"
        try:
            if h.writeModel(scratch) != highspy.HighsStatus.kOk:
                raise BackendError(f"backend {self.name}: HiGHS could not write {scratch}")
            mark = "*" if fmt == "mps" else "\\"
            with open(scratch, encoding="utf-8") as src, open(path, "w", encoding="utf-8", newline="\n") as out:
                for line in comment.splitlines():
                    out.write(f"{mark} {line}\n")
                for line in src:
                    out.write("binary\n" if fmt == "lp" and line.rstrip("\n") == "bin" else line)
                out.flush()
                os.fsync(out.fileno())
        finally:
            if os.path.lexists(scratch):
                os.remove(scratch)
