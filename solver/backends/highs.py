"""HiGHS through highspy: the model's arrays are passed straight in (no per-term Python)."""

from __future__ import annotations

import time

import numpy as np

from solver.backends.base import Capabilities, SolveOptions
from solver.backends.result import SolutionStatus, SolveResult, Termination, relative_gap
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


class HighsBackend:
    """Default backend: fastest to build and to reach 0.1% on the England instance."""

    name = "highs"
    install_hint = "pip install highspy"

    capabilities = Capabilities(mip_start=True, lp_duals=True)

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

        h.passModel(highs_lp(model, integer=True))
        if start is not None:
            # integer part only: HiGHS completes the continuous part itself
            idx = np.flatnonzero(model.integrality).astype(np.int32)
            h.setSolution(int(idx.size), idx, np.round(np.asarray(start, dtype=float)[idx]))

        # Ctrl-C cancels the solve and keeps the incumbent (reported as interrupted/feasible).
        h.HandleKeyboardInterrupt = True
        t0 = time.perf_counter()
        h.solve()
        seconds = time.perf_counter() - t0

        ms = h.getModelStatus()
        info = h.getInfo()
        has_point = info.primal_solution_status == 2  # kSolutionStatusFeasible
        x = np.asarray(h.getSolution().col_value, dtype=float) if has_point else None
        objective = float(info.objective_function_value) if has_point else None
        replaced = False
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
                objective, replaced = own, True     # report what the returned plan is worth, never more
        bound = float(info.mip_dual_bound) if model.n_integer else objective
        if bound is not None and not np.isfinite(bound):
            bound = None
        MS = highspy.HighsModelStatus
        if ms == MS.kOptimal:
            term, status = Termination.OPTIMAL, SolutionStatus.OPTIMAL
        elif ms == MS.kInfeasible:
            term, status = Termination.INFEASIBLE, SolutionStatus.INFEASIBLE
        elif ms == MS.kTimeLimit:
            term = Termination.TIME_LIMIT
            status = SolutionStatus.FEASIBLE if has_point else SolutionStatus.NO_SOLUTION
        elif ms == MS.kInterrupt:
            term = Termination.INTERRUPTED
            status = SolutionStatus.FEASIBLE if has_point else SolutionStatus.NO_SOLUTION
        elif ms in (MS.kUnbounded, MS.kUnboundedOrInfeasible):
            term, status = Termination.UNBOUNDED, SolutionStatus.ERROR
        else:
            term = Termination.ERROR
            status = SolutionStatus.FEASIBLE if has_point else SolutionStatus.ERROR
        gap = relative_gap(objective, bound) if has_point else None
        if replaced and status == SolutionStatus.OPTIMAL and gap is not None and gap > options.mip_gap + 1e-9:
            status = SolutionStatus.FEASIBLE    # the plan returned is worth less than the solver proved
        return SolveResult(
            backend=self.name,
            termination=term,
            status=status,
            x=x,
            objective=objective,
            bound=bound,
            gap=gap,
            solve_seconds=seconds,
            solver_version=self.version(),
            message=h.modelStatusToString(ms),
            options=options.as_dict(),
        )
