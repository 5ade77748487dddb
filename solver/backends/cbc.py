"""CBC through PuLP (the bundled ``cbc`` binary), built term by term from the model's arrays.

Status comes from ``prob.sol_status`` (what CBC wrote on the first line of its solution file),
never from ``prob.status``: PuLP reports ``Optimal`` after a time limit with an incumbent. The
one place ``prob.status`` is consulted is to tell "integer infeasible" apart from "stopped with
nothing": CBC 2.10.3 writes ``Integer infeasible`` for a MIP whose LP relaxation is feasible,
which PuLP maps to ``sol_status == NoSolutionFound`` but ``status == Infeasible``.

The best bound is not exposed by PuLP, so it is parsed from the CBC log (the final ``Result -``
block). Measured with CBC 2.10.3 and ``-max``: the block reports ``Objective value`` and
``Upper bound`` in the *user's* (maximisation) sense, and both exclude the objective constant
(CBC ignores the MPS objective-row RHS), so the model's ``offset`` is added back here. The bound
is printed with three decimals only; when CBC claims optimality the bound is clipped to the
range implied by its own stopping rule, so rounding in the log cannot fake a gap above
``mip_gap``.

CBC runs as our own child (``solver.backends.ortools.start_child``), not through ``prob.solve``:
PuLP writes the MPS file and reads the solution file exactly as its ``COIN_CMD`` does, with the same
command line, but we hold the process. So Ctrl-C (or SIGTERM through the CLI) is forwarded as SIGINT,
repeated until CBC stops (it ignores SIGINT before its branch and bound starts; measured with CBC
2.10.3: stops within 0.1 s during the search, within 2 s at the start), and CBC then writes its
incumbent ("Stopped on iterations - objective value …", log "User ctrl-c"); the solve returns it as
``interrupted``. The child dies with Envelope, and its MPS, solution and log files are anonymous
(``ExchangeFiles``), so nothing is left behind even after a SIGKILL.

PuLP is imported lazily: ``import pulp`` imports highspy, and keeping it out of module import
keeps ``import solver.backends.cbc`` cheap and free of the libhighs clash with OR-Tools.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from solver.backends.base import Capabilities, SolveOptions, cannot_write, no_lp_duals, strict_at_scale
from solver.backends.ortools import ExchangeFiles, interrupt_repeatedly, reap, start_child
from solver.backends.result import LpDuals, SolutionStatus, SolveResult, Termination, normalise
from solver.errors import BackendError
from solver.mip.arrays import MILP

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pulp


def build_pulp_problem(model: MILP) -> tuple[pulp.LpProblem, list[pulp.LpVariable]]:
    """The model as a PuLP ``LpProblem`` (maximise), built term by term in Python.

    Columns are named ``x{j}`` and rows ``r{i}`` (``r{i}_lo``/``r{i}_hi`` for ranged rows) so
    that names are unique and legal whatever the model's labels; infinite row sides are dropped
    and rows free on both sides are skipped. Returns the problem and the variables in column
    order.
    """
    import pulp

    prob = pulp.LpProblem("envelope", pulp.LpMaximize)
    variables: list[pulp.LpVariable] = []
    for j, (lo, hi, is_int) in enumerate(
        zip(model.col_lo.tolist(), model.col_hi.tolist(), model.integrality.tolist(), strict=True)
    ):
        low = lo if math.isfinite(lo) else None
        up = hi if math.isfinite(hi) else None
        if is_int:
            cat = pulp.LpBinary if (low == 0.0 and up == 1.0) else pulp.LpInteger
        else:
            cat = pulp.LpContinuous
        variables.append(prob.add_variable(f"x{j}", low, up, cat=cat))
    # Columns in no row and with zero cost are left out of the problem (PuLP would write their
    # bounds but not their columns to the MPS file, which CBC rejects); they get no value back.

    c = model.c
    nz = np.flatnonzero(c)
    terms = [(variables[j], float(c[j])) for j in nz.tolist()]
    prob.setObjective(pulp.LpAffineExpression(terms, constant=float(model.offset)))

    A = model.A.tocsr()
    indptr, indices, data = A.indptr, A.indices.tolist(), A.data.tolist()
    row_lo, row_hi = model.row_lo.tolist(), model.row_hi.tolist()
    for i in range(model.n_rows):
        lo, hi = row_lo[i], row_hi[i]
        has_lo, has_hi = math.isfinite(lo), math.isfinite(hi)
        if not (has_lo or has_hi):
            continue
        s, e = indptr[i], indptr[i + 1]
        row_vars = [variables[k] for k in indices[s:e]]
        expr = pulp.LpAffineExpression(list(zip(row_vars, data[s:e], strict=True)))
        if has_lo and has_hi and lo == hi:
            prob.addConstraint(pulp.LpConstraint(expr, pulp.LpConstraintEQ, f"r{i}", hi))
        elif has_lo and has_hi:
            prob.addConstraint(pulp.LpConstraint(expr, pulp.LpConstraintGE, f"r{i}_lo", lo))
            prob.addConstraint(pulp.LpConstraint(expr.copy(), pulp.LpConstraintLE, f"r{i}_hi", hi))
        elif has_lo:
            prob.addConstraint(pulp.LpConstraint(expr, pulp.LpConstraintGE, f"r{i}", lo))
        else:
            prob.addConstraint(pulp.LpConstraint(expr, pulp.LpConstraintLE, f"r{i}", hi))
    return prob, variables


@dataclass
class CbcLog:
    """Figures read from the final ``Result -`` block of a CBC log (user sense, no offset)."""

    result_line: str = ""
    objective: float | None = None
    bound: float | None = None
    version: str = ""


_NUM = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf(?:inity)?)"


def parse_cbc_log(text: str) -> CbcLog:
    """Parse the last ``Result -`` block of a CBC 2.10 log; missing figures stay ``None``."""
    log = CbcLog()
    v = re.search(r"^Version:\s*(\S+)", text, re.MULTILINE)
    if v:
        log.version = v.group(1)
    start = text.rfind("Result - ")
    if start < 0:
        return log
    block = text[start:].splitlines()
    log.result_line = block[0][len("Result - ") :].strip()
    for line in block[1:]:
        m = re.match(r"\s*(Objective value|Upper bound|Lower bound):\s*" + _NUM, line)
        if not m:
            continue
        value = float(m.group(2))
        if m.group(1) == "Objective value":
            log.objective = value
        else:
            log.bound = value
    return log


class CbcBackend:
    """CBC 2.10 via PuLP's bundled binary: the fallback backend that ships with pulp."""

    name = "cbc"
    install_hint = "pip install pulp"
    _cbc_version = ""  # filled from the first log this instance parses

    capabilities = Capabilities()

    def refusal(self, model: MILP) -> str | None:
        """None: this backend solves every model Envelope builds."""
        return None

    def lp_duals(self, model: MILP) -> LpDuals:
        """Not available through PuLP's CBC: raises ``BackendError`` naming the backend to use."""
        raise BackendError(no_lp_duals(self.name))

    def write_model(self, model: MILP, path: str, fmt: str, comment: str = "") -> None:
        """Not offered (``capabilities.writes`` is empty): raises ``BackendError`` naming the backends that write."""
        from solver.backends import backends_with

        raise BackendError(cannot_write(self.name, fmt, backends_with("writes")))

    def available(self) -> bool:
        """True if pulp imports and its bundled CBC binary is executable."""
        try:
            import pulp

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                return bool(pulp.PULP_CBC_CMD(msg=False).available())
        except Exception:
            return False

    def version(self) -> str:
        """pulp version, plus CBC's once a solve has logged it (the binary is not run for this)."""
        from importlib.metadata import version

        text = f"pulp {version('pulp')}"
        return f"{text} / CBC {self._cbc_version}" if self._cbc_version else text

    def solve(self, model: MILP, options: SolveOptions, start: np.ndarray | None = None) -> SolveResult:
        """Build with PuLP, solve with CBC, read status from ``sol_status`` and bound from the log
        (strictly when the model's rows reach £1bn: ``strict_at_scale``)."""
        import pulp

        options = strict_at_scale(model, options)
        prob, variables = build_pulp_problem(model)
        gap = float(options.mip_gap)
        # CBC stops when bound - obj < ratio * max(|obj|, |bound|); our gap divides by |obj|, so
        # ratio = g / (1 + g) guarantees our gap <= g when CBC says "optimal".
        ratio = gap / (1.0 + gap)
        extra = []
        if options.seed > 0:  # 0 would mean "seed from the clock" in CBC; keep CBC's fixed default
            extra += [f"randomSeed {int(options.seed)}", f"randomCbcSeed {int(options.seed)}"]
        if options.tolerance is not None:   # a strict re-solve asked by the solve core (exact money)
            extra += [f"primalTolerance {options.tolerance!r}", f"integerTolerance {options.tolerance!r}"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            cmd = pulp.PULP_CBC_CMD(
                msg=False,
                timeLimit=float(options.time_limit),
                gapRel=ratio,
                threads=int(options.threads) or None,
                options=extra,
            )
        if not cmd.available():
            raise BackendError(f"cbc failed: cannot execute {cmd.path}; reinstall with: {self.install_hint}")
        interrupted = False
        was_none, dummy = prob.fixObjective()          # as LpProblem.solve does
        with ExchangeFiles("cbc") as files:
            mps_path, _ = files.new("model.mps")
            sol_path, sol_file = files.new("model.sol")
            _, log_file = files.new("cbc.log")
            vs, var_names, con_names, _ = prob.writeMPS(mps_path, rename=1)
            # PuLP's COIN_CMD.solve_CBC command line, with our files
            args = [cmd.path, mps_path, "-max", "-sec", str(cmd.timeLimit)]
            for option in cmd.options + cmd.getOptions():
                args += ("-" + option).split()
            args += ["-solve", "-printingOptions", "all", "-solution", sol_path]
            t0 = time.perf_counter()
            proc = start_child(args, files, stdout=log_file, stderr=subprocess.STDOUT)
            timeout = 2.0 * float(options.time_limit) + 120.0   # reading and presolve are not in -sec
            try:
                try:
                    code = proc.wait(timeout=timeout)
                except KeyboardInterrupt:
                    interrupted = True
                    code = interrupt_repeatedly(proc)   # kills CBC and re-raises if it will not stop
                except subprocess.TimeoutExpired:
                    raise BackendError(f"cbc did not finish within {timeout:.0f} s") from None
            finally:
                reap(proc)
            seconds = time.perf_counter() - t0
            text = files.read(log_file).decode("utf-8", errors="replace")
            has_sol = code == 0 and bool(files.read(sol_file).strip())
            if has_sol:
                status_code, values, _, _, _, sol_code = cmd.readsol_MPS(sol_path, prob, vs, var_names, con_names)
                prob.assignVarsVals(values)
                prob.assignStatus(status_code, sol_code)
        prob.restoreObjective(was_none, dummy)
        if not has_sol and not interrupted:
            raise BackendError(f"cbc failed (exit code {code}, no solution file); "
                               f"reinstall with: {self.install_hint}")
        if options.verbose:
            sys.stdout.write(text)
        log = parse_cbc_log(text)
        if log.version:
            self._cbc_version = log.version
        if interrupted and not has_sol:
            return self._result(
                Termination.INTERRUPTED,
                SolutionStatus.NO_SOLUTION,
                None,
                None,
                None,
                seconds,
                "interrupted",
                options,
            )

        sol = prob.sol_status
        has_point = sol in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
        x = objective = None
        if has_point:
            vals = [v.varValue for v in variables]
            x = np.array([np.nan if v is None else v for v in vals], dtype=float)
            missing = np.isnan(x)  # columns left out of the problem (see build_pulp_problem)
            lo, hi = model.col_lo[missing], model.col_hi[missing]
            integ = model.integrality[missing]
            lo, hi = np.where(integ, np.ceil(lo), lo), np.where(integ, np.floor(hi), hi)
            x[missing] = np.minimum(np.maximum(0.0, lo), hi)
            objective = model.objective_value(x)

        offset = float(model.offset)
        if objective is not None and log.objective is not None and offset != 0.0:
            if abs(objective - log.objective) <= 1e-6 * max(1.0, abs(objective)):
                offset = 0.0  # this CBC did include the objective constant
        bound = log.bound + offset if log.bound is not None and math.isfinite(log.bound) else None
        stopped_by_user = "ctrl-c" in log.result_line.lower()
        if sol == pulp.LpSolutionOptimal:
            term, status = Termination.OPTIMAL, SolutionStatus.OPTIMAL
            assert objective is not None
            # CBC proved bound - obj < ratio*max(|obj|,|bound|), i.e. bound <= obj + gap*|obj|. When the
            # log states no bound (search completed) only that much is proved, not a zero gap: CBC
            # prunes nodes within the gap.
            hi = objective + gap * abs(objective)
            bound = hi if bound is None else min(max(bound, objective), hi)
        elif sol == pulp.LpSolutionIntegerFeasible:
            term = Termination.INTERRUPTED if stopped_by_user else Termination.TIME_LIMIT
            status = SolutionStatus.FEASIBLE
            if bound is not None and objective is not None:
                bound = max(bound, objective)
        elif sol == pulp.LpSolutionInfeasible:
            term, status = Termination.INFEASIBLE, SolutionStatus.INFEASIBLE
        elif sol == pulp.LpSolutionUnbounded:
            term, status = Termination.UNBOUNDED, SolutionStatus.ERROR
        elif sol == pulp.LpSolutionNoSolutionFound and prob.status == pulp.LpStatusInfeasible:
            # "Integer infeasible" / pre-processing infeasible: see module docstring.
            term, status = Termination.INFEASIBLE, SolutionStatus.INFEASIBLE
        elif sol == pulp.LpSolutionNoSolutionFound:
            term = Termination.INTERRUPTED if stopped_by_user else Termination.TIME_LIMIT
            status = SolutionStatus.NO_SOLUTION
        else:
            term, status = Termination.ERROR, SolutionStatus.ERROR
        message = log.result_line or pulp.LpSolution.get(sol, str(sol))
        return self._result(term, status, x, objective, bound, seconds, message, options)

    def _result(
        self,
        term: Termination,
        status: SolutionStatus,
        x: np.ndarray | None,
        objective: float | None,
        bound: float | None,
        seconds: float,
        message: str,
        options: SolveOptions,
    ) -> SolveResult:
        return normalise(self.name, term, status, x=x, objective=objective, bound=bound, seconds=seconds,
                         version=self.version(), message=message, options=options.as_dict())
