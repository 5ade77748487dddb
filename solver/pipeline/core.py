"""The one solve pipeline: formulate → (extend) → solve → decode → audit → ``Outcome``.

Every command and analysis solves through ``solve_scenario``. It never explains infeasibility
(that costs an extra MILP; ``solver.api.solve`` asks for it) and never raises for an outcome a
caller may expect — infeasible, stopped without a plan, interrupted: those are statuses and
terminations of the returned ``Outcome``. It raises only for what is a failure: a backend that is
missing, refuses the model or crashes (``BackendError``), and a plan that breaks a rule when
re-checked from the tables (``AuditError``, a bug).

Exact money (``_retry``): amounts are whole £k, but solvers accept a row within a feasibility
tolerance relative to its size (about 1e-6), and binaries within an integrality tolerance; at
£1bn-£100bn a plan can then overspend by £1k or more, or be worth less once its binaries are
rounded than the solver claimed. When the rounded plan breaks a row of the model it was solved
from (money rows: the audit names them) or falls short of a claimed optimum, the model is re-solved
at most ``MAX_RETRIES`` times with strict tolerances (``SolveOptions.tolerance``) and the broken
rows moved to the midpoint between whole £k (the first retry, an exact reformulation for rows whose
terms are all whole £k of binaries), then inward by what the solver overstepped (the second). A
plan that still breaks a money row raises ``BackendError`` naming the backend and another to use;
a plan that breaks a rule the model keeps is an ``AuditError``. "Optimal" is reported only when
the largest bound any attempt proved is within ``mip_gap`` of the *audited* objective.

Interrupt policy (one, here): a Ctrl-C during the solve returns the incumbent with termination
``interrupted``. The caller decides what that means: ``envelope solve`` writes the plan and exits
130; an analysis stops as a whole (``Outcome.interrupted`` → ``KeyboardInterrupt`` in the engine).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from solver.backends import available_backends, get_backend
from solver.backends.base import Backend, SolveOptions
from solver.backends.result import SolutionStatus, SolveResult, Termination, relative_gap, within_gap
from solver.data.scenario import Scenario
from solver.errors import AuditError, BackendError, InputError
from solver.mip.arrays import MILP
from solver.mip.formulation import Formulation, formulate
from solver.pipeline.audit import OBJ_RTOL, AuditReport, audit
from solver.pipeline.baselines import allocate
from solver.pipeline.decisions import Decisions
from solver.pipeline.encoding import decode, encode
from solver.pipeline.greedy import greedy_start
from solver.pipeline.outcome import Outcome

Extension = Callable[[Formulation], MILP]
"""Builds the model actually solved from a formulation: its own columns first (so the plan decodes
as usual), then any extra columns and rows, bounds or another objective (``MILP.extended``)."""

#: Re-solves after a plan broke a row by the solver's tolerance (or fell short of its claimed optimum).
MAX_RETRIES = 2
#: Absolute primal feasibility and integrality tolerance of a strict re-solve (``SolveOptions.tolerance``).
STRICT_TOLERANCE = 1e-9
#: The data's money resolution (£m): amounts have at most three decimals.
MONEY_STEP = 1e-3
#: Integer columns from which a model's solve starts from the greedy plan (England has ~2,200; the
#: setup of a MIP solver on 50x England can outlast a short time limit before it finds any plan).
GREEDY_START_MIN = 20_000
#: The least time a solver is given, whatever building the model took.
MIN_SOLVE_SECONDS = 1.0
#: Backends suggested, in this order, when one cannot deliver an exact plan.
PREFERRED = ("highs", "cpsat", "cbc", "scip")


@dataclass(eq=False)
class _Attempt:
    """One backend call and what its rounded plan is worth."""

    result: SolveResult
    model: MILP
    x: np.ndarray | None = None                  # all columns of ``model``, integers rounded
    decisions: Decisions | None = None
    report: AuditReport | None = None
    objective: float = float("nan")              # what the status is judged on (audited, or the model's)
    broken: dict[int, float] = field(default_factory=dict)   # model row -> amount outside its original bounds

    @property
    def valid(self) -> bool:
        """True when the attempt has a plan that passed the audit."""
        return self.report is not None and self.report.ok


def solve_scenario(scenario: Scenario, *, form: Formulation | None = None, extend: Extension | None = None,
                   start: Decisions | None = None, label: str = "") -> Outcome:
    """Solve ``scenario`` with its own solver settings and return the audited ``Outcome``.

    ``form`` reuses a formulation already built for this scenario; ``extend`` modifies the model
    solved (the plan is still audited against the scenario, and its objective recomputed from the
    tables); ``start`` is a warm start (e.g. a neighbouring scenario's plan).
    """
    t_begin = time.perf_counter()
    if scenario.policy.allocation.method != "optimise":
        if extend is not None:
            raise InputError(Path(scenario.model_path), f"model {scenario.policy.name} is rule-based: its plan is "
                                                        "made by its rule, so the model cannot be extended")
        return allocate(scenario, form, label=label)
    engine = get_backend(scenario.backend)
    built_before = form.build_seconds if form is not None else 0.0
    form = form if form is not None else formulate(scenario)
    model = extend(form) if extend is not None else form.model
    tiers: list[dict[str, object]] = []
    tier_wall = 0.0
    if model.stages:
        t_tiers = time.perf_counter()
        model, tiers, stopped, tier_x = _tiers(model, engine, scenario.solve_options(), t_begin, built_before)
        tier_wall = time.perf_counter() - t_tiers
        if stopped is not None:
            return Outcome(scenario=scenario, status=SolutionStatus.NO_SOLUTION, termination=stopped.termination,
                           backend=stopped.backend, solver_version=stopped.solver_version,
                           build_seconds=form.build_seconds, solve_seconds=stopped.solve_seconds,
                           model_size=model.size(), message=f"tier {len(tiers) + 1}: {stopped.message}",
                           label=label, tiers=tiers)
    refusal = engine.refusal(model)
    if refusal is not None:
        raise BackendError(f"backend {engine.name} cannot solve this model exactly: {refusal}")
    x0, greedy = None, None
    if tiers and engine.capabilities.mip_start and tier_x is not None:
        x0 = tier_x                                  # the last tier's plan keeps every floor
    elif start is not None and engine.capabilities.mip_start:
        x0 = np.zeros(model.n_cols)
        x0[:form.model.n_cols] = encode(form, start)
    elif engine.capabilities.mip_start and model.n_integer >= GREEDY_START_MIN:
        x0 = greedy = greedy_start(model, form.x)    # a large model starts from a plan, not from nothing
    options = scenario.solve_options()
    # the time limit is the whole solve's: the solver gets what is left after building the model, less
    # as much again for reading its plan back and auditing it (work of the same size as building)
    spent = time.perf_counter() - t_begin + built_before
    building = spent - tier_wall                 # reserved once more for decoding and the audit (not the tiers)
    given = dataclasses.replace(options, time_limit=max(MIN_SOLVE_SECONDS, options.time_limit - spent - building))
    result = engine.solve(model, given if spent > 0.01 * options.time_limit else options, start=x0)
    if result.status == SolutionStatus.NO_SOLUTION:
        result = _fall_back(model, form, result, greedy)
    tier_seconds = sum(float(t["seconds"]) for t in tiers)  # type: ignore[arg-type]
    common = dict(scenario=scenario, termination=result.termination, backend=result.backend,
                  solver_version=result.solver_version, build_seconds=form.build_seconds,
                  solve_seconds=result.solve_seconds + tier_seconds, model_size=model.size(),
                  options={**result.options, "time_limit": options.time_limit},   # as asked, not as left
                  message=result.message, label=label, tiers=tiers)
    if result.status == SolutionStatus.ERROR:
        raise BackendError(f"backend {result.backend} failed: {result.message}")
    if not result.has_solution or result.x is None:
        status = SolutionStatus.INFEASIBLE if result.status == SolutionStatus.INFEASIBLE else \
            SolutionStatus.NO_SOLUTION
        return Outcome(status=status, **common)
    first = _evaluate(scenario, form, model, model, result, extend is not None)
    attempts = [first]
    if _needs_retry(first, options):
        attempts += _retry(scenario, form, model, engine, options, first, extend is not None,
                           deadline=t_begin + options.time_limit)
    valid = [a for a in attempts if a.valid]
    if not valid and first.result.termination == Termination.INTERRUPTED:
        # Ctrl-C with an incumbent the solver's tolerance let break a money row: the greedy plan if it
        # keeps every rule, else no plan (the caller stops as for any interrupt)
        fallback = _fall_back(model, form, dataclasses.replace(first.result, x=None, status=SolutionStatus.NO_SOLUTION),
                              greedy)
        if fallback.has_solution:
            attempts.append(_evaluate(scenario, form, model, model, fallback, extend is not None))
            valid = [a for a in attempts if a.valid]
        if not valid:
            return Outcome(status=SolutionStatus.NO_SOLUTION, **common)
    if not valid:
        if first.broken:
            raise BackendError(_inexact(engine.name, model, first, len(attempts) - 1))
        assert first.report is not None
        raise AuditError(first.report.violations)
    best = max(valid, key=lambda a: a.objective)
    res = best.result
    assert best.report is not None
    bounds = [a.result.bound for a in attempts if a.result.bound is not None]
    bound = max(bounds) if bounds else None
    if bound is not None and bound < best.objective:
        bound = best.objective       # a bound below an audited plan's value is the solver's tolerance
    mip_gap = float(options.mip_gap)
    status = res.status
    message = res.message
    if status == SolutionStatus.OPTIMAL and not within_gap(best.objective, bound, mip_gap):
        status = SolutionStatus.FEASIBLE
        message += f" (the rounded plan is worth {best.objective:.6f}, bound {bound:.6f}: not optimal " \
                   f"within mip_gap {mip_gap:g})"
    gap = res.gap
    if bound != res.bound or abs(best.objective - (res.objective or 0.0)) > 1e-9 * max(1.0, abs(best.objective)):
        gap = relative_gap(best.objective, bound)
    if len(attempts) > 1:
        message += f" ({_story(engine.name, model, attempts, best)})"
    if tiers:
        short = _check_tiers(tiers, best.report.penalties)
        if short:
            raise AuditError(short)
        unproved = [str(t["criterion"]) for t in tiers if not t["proved"]]
        if unproved:
            if status == SolutionStatus.OPTIMAL:
                status = SolutionStatus.FEASIBLE
            message += f" (tier(s) {', '.join(unproved)} not proved within their tolerance: the plan is " \
                       "judged against the tiers as kept, not proved lexicographically optimal)"
    common.update(termination=res.termination,
                  solve_seconds=sum(a.result.solve_seconds for a in attempts) + tier_seconds,
                  options={**res.options, "time_limit": options.time_limit}, message=message)
    return Outcome(status=status, objective=best.report.objective, bound=bound, gap=gap,
                   model_objective=res.objective, decisions=best.decisions, audit=best.report, **common)


#: Relative allowance under a tier's optimum for the solver's own feasibility tolerance (a tier kept "exactly").
TIER_SLACK = 1e-6


def _tiers(model: MILP, engine: Backend, options: SolveOptions, t_begin: float, built_before: float
           ) -> tuple[MILP, list[dict[str, object]], SolveResult | None, np.ndarray | None]:
    """Solve a lexicographic objective's earlier tiers (``MILP.stages``) in turn, each with its share of
    the time limit and the scenario's gap, starting from the previous tier's plan, and return the last
    tier's model with every earlier tier kept at its floor (the tier's value less ``tolerance`` of it,
    less ``TIER_SLACK``), what each tier reached, the result that stopped the tiers without a plan
    (interrupted, or a first tier with none), and the last tier's point (it keeps every floor, so it
    starts the last solve). A first tier proved infeasible ends the tiers: the last solve reports it,
    as for any infeasible model. A tier is *proved* when its solve proved optimality within the gap."""
    current = dataclasses.replace(model, stages=())
    info: list[dict[str, object]] = []
    x: np.ndarray | None = None
    n = len(model.stages)
    least = min(MIN_SOLVE_SECONDS, options.time_limit / (n + 1))
    for k, st in enumerate(model.stages):
        left = options.time_limit - (time.perf_counter() - t_begin + built_before)
        share = max(least, left / (n - k + 1))
        res = engine.solve(dataclasses.replace(current, c=st.c, offset=0.0),
                           dataclasses.replace(options, time_limit=share),
                           start=x if engine.capabilities.mip_start else None)
        if res.status == SolutionStatus.ERROR:
            raise BackendError(f"backend {res.backend} failed on tier {st.name}: {res.message}")
        if res.termination == Termination.INTERRUPTED:
            return current, info, res, None      # Ctrl-C in a tier stops the whole solve (no plan yet)
        if res.status == SolutionStatus.INFEASIBLE:
            if x is None:
                break
            other = _other_backend(res.backend)
            raise BackendError(f"backend {res.backend} reported tier {st.name} infeasible, though the plan of the "
                               f"tier before keeps every floor; use another backend, e.g. '{other}'")
        if res.has_solution and res.x is not None:
            point = np.array(res.x, dtype=float)
            point[current.integrality] = np.round(point[current.integrality])
        elif x is not None:
            point = x                            # stopped without a plan: the tier before's plan still keeps all
        else:
            return current, info, res, None
        z = float(st.c @ point)
        floor = _kept(z, st.tolerance) - TIER_SLACK * max(1.0, abs(z))
        proved = res.status == SolutionStatus.OPTIMAL
        cols = np.flatnonzero(st.c)
        current = current.extended(rows=[(f"tier[{st.name}]", cols, st.c[cols], floor, math.inf)], family="tier")
        info.append({"criterion": st.name, "optimum": z, "bound": res.bound, "floor": floor,
                     "proved": proved, "tolerance": st.tolerance, "seconds": res.solve_seconds})
        x = np.concatenate([point, np.zeros(current.n_cols - point.shape[0])])
    return current, info, None, x


def _kept(value: float, tolerance: float) -> float:
    """``value`` less ``tolerance`` of its size (for a negative value too: it is increasing in ``value``)."""
    return value - tolerance * abs(value)


def _check_tiers(tiers: list[dict[str, object]], terms: dict[str, float]) -> list[str]:
    """Each earlier tier's floor against the plan's value of it recomputed by the audit; records it."""
    out = []
    for t in tiers:
        name, floor = str(t["criterion"]), float(t["floor"])  # type: ignore[arg-type]
        achieved = terms[name]
        t["achieved"] = achieved
        if achieved < floor - 1e-6 * max(1.0, abs(floor)):
            out.append(f"tier {name}: the plan reaches {achieved:.6f}, below the floor {floor:.6f} kept from "
                       f"its optimum {float(t['optimum']):.6f}")  # type: ignore[arg-type]
    return out


def _fall_back(model: MILP, form: Formulation, result: SolveResult, greedy: np.ndarray | None) -> SolveResult:
    """The solver stopped (time limit, Ctrl-C) before any plan: the greedy plan instead, when one keeps
    every row (``greedy_start``) — a plan is returned whenever a simple one exists, never "no plan" for
    lack of time. Its bound is the solver's, if it proved one."""
    x = greedy if greedy is not None else greedy_start(model, form.x)
    if x is None:
        return result
    objective = model.objective_value(x)
    bound = result.bound if result.bound is not None and result.bound >= objective else None
    return dataclasses.replace(
        result, status=SolutionStatus.FEASIBLE, x=x, objective=objective, bound=bound,
        gap=relative_gap(objective, bound),
        message=f"{result.message}; the solver stopped before finding a plan: the greedy plan (best options by "
                f"value per £ while every rule holds) is returned")


def _evaluate(scenario: Scenario, form: Formulation, model: MILP, solved: MILP, result: SolveResult,
              extended: bool) -> _Attempt:
    """Round the attempt's point, decode and audit it, and find the rows of ``model`` (the model as
    built, not as tightened for a retry) it breaks."""
    att = _Attempt(result=result, model=solved)
    if not result.has_solution or result.x is None:
        return att
    x = np.array(result.x, dtype=float)
    x[model.integrality] = np.round(x[model.integrality])
    att.x = x
    n = form.model.n_cols
    att.decisions = decode(form, x[:n])
    # The audit's objective is compared with the rounded plan's value in the model (formulation
    # against tables), allowing for continuous amounts (e.g. fair-share slacks) that the solver set
    # within its tolerance; what the solver claimed is judged by the status (``solve_scenario``).
    att.report = audit(scenario, att.decisions)
    own = form.model.objective_value(x[:n])
    cont = ~form.model.integrality
    slack = 1e-6 * float(np.abs(form.model.c[cont]) @ np.maximum(1.0, np.abs(x[:n][cont])))
    if att.report.ok and abs(att.report.objective - own) > OBJ_RTOL * max(1.0, abs(att.report.objective)) + slack:
        att.report.violations.append(f"objective: solver reports {own:.6f}, recomputed from the tables "
                                     f"{att.report.objective:.6f}")
    att.objective = model.objective_value(x) if extended else att.report.objective
    att.broken = broken_rows(model, x)
    return att


def broken_rows(model: MILP, x: np.ndarray) -> dict[int, float]:
    """Rows of ``model`` a point breaks beyond float noise, with the amount (positive: above the
    upper bound; negative: below the lower bound)."""
    ax = model.A @ x
    scale = abs(model.A) @ np.abs(x)
    noise = 1e-9 + 1e-12 * scale
    with np.errstate(invalid="ignore"):
        above = ax - model.row_hi
        below = model.row_lo - ax
    out: dict[int, float] = {}
    for r in np.flatnonzero(np.isfinite(model.row_hi) & (above > noise)):
        out[int(r)] = float(above[r])
    for r in np.flatnonzero(np.isfinite(model.row_lo) & (below > noise)):
        out[int(r)] = -float(below[r])
    return out


def _needs_retry(att: _Attempt, options: SolveOptions) -> bool:
    """A plan broken by the solver's tolerance, or a claimed optimum the rounded plan falls short of."""
    if att.result.termination == Termination.INTERRUPTED or att.report is None:
        return False
    if not att.report.ok:
        return bool(att.broken)
    return att.result.status == SolutionStatus.OPTIMAL and \
        not within_gap(att.objective, att.result.bound, float(options.mip_gap))


def _granular(model: MILP, r: int) -> bool:
    """True when every term of row ``r`` is a whole £k times an integer column: its activity is then
    a whole number of £k for every integer point."""
    row = model.A.getrow(r)
    if not np.all(model.integrality[row.indices]):
        return False
    scaled = row.data / MONEY_STEP
    return bool(np.all(np.abs(scaled - np.round(scaled)) <= 1e-6 * np.maximum(1.0, np.abs(scaled))))


def _retry(scenario: Scenario, form: Formulation, model: MILP, engine: Backend, options: SolveOptions,
           first: _Attempt, extended: bool, deadline: float) -> list[_Attempt]:
    """Up to ``MAX_RETRIES`` strict re-solves, each within what is left of the time limit (``deadline``,
    a ``time.perf_counter`` value); stops at the first valid plan that needs no more."""
    lo, hi = model.row_lo.copy(), model.row_hi.copy()
    out: list[_Attempt] = []
    last = first
    for k in range(1, MAX_RETRIES + 1):
        left = deadline - time.perf_counter()
        if left < MIN_SOLVE_SECONDS and k > 1:
            break                      # the limit is spent: what was found so far is judged as it is
        strict = dataclasses.replace(options, tolerance=STRICT_TOLERANCE, time_limit=max(MIN_SOLVE_SECONDS, left))
        for r, amount in last.broken.items():
            if model.row_lo[r] == model.row_hi[r]:
                continue            # an equality: strict tolerances only
            upper = amount > 0
            target = model.row_hi[r] if upper else model.row_lo[r]
            if _granular(model, r):
                # whole £k activities: the midpoint between the limit and the next £k is the same rule
                steps = math.floor(target / MONEY_STEP + 1e-9) if upper else math.ceil(target / MONEY_STEP - 1e-9)
                target = steps * MONEY_STEP + (0.5 if upper else -0.5) * MONEY_STEP
            if k > 1:
                # inward by the solver's tolerance at this row: at least what it overstepped the bound it
                # was given, and at least the usual relative 1e-6 of the bound (a row of whole £k can
                # only be overstepped in whole £k, which hides a larger tolerance)
                given = last.model.row_hi[r] if upper else last.model.row_lo[r]
                act = (model.row_hi[r] if upper else model.row_lo[r]) + amount
                overstep = max((act - given) if upper else (given - act), 1e-6 * max(1.0, abs(given)))
                target = target - overstep if upper else target + overstep
            if upper:
                hi[r] = min(hi[r], target) if k > 1 else target
            else:
                lo[r] = max(lo[r], target) if k > 1 else target
        solved = dataclasses.replace(model, row_lo=lo.copy(), row_hi=hi.copy())
        result = engine.solve(solved, strict)
        if result.status == SolutionStatus.ERROR:
            break
        att = _evaluate(scenario, form, model, solved, result, extended)
        out.append(att)
        if result.termination == Termination.INTERRUPTED:
            break
        if att.valid and not _needs_retry(att, options):
            break
        if att.report is not None and not att.report.ok and not att.broken:
            raise AuditError(att.report.violations)
        if att.broken:
            last = att
    return out


def _other_backend(name: str) -> str:
    """Another installed backend to suggest (the preferred order), or the first other known one."""
    installed = available_backends()
    for b in PREFERRED:
        if b != name and b in installed:
            return b
    return next(b for b in PREFERRED if b != name)


def _worst(model: MILP, att: _Attempt) -> str:
    """The row an attempt breaks most, as 'row by £x'."""
    r, amount = max(att.broken.items(), key=lambda kv: abs(kv[1]))
    return f"{model.row_names[r]} by £{abs(amount):.6f}m"


def _inexact(name: str, model: MILP, first: _Attempt, retries: int) -> str:
    """The ``BackendError`` sentence for a backend that cannot deliver an exact plan."""
    other = _other_backend(name)
    return (f"backend {name} cannot deliver a plan that keeps the money rules exactly: its plan breaks "
            f"{_worst(model, first)} (within the solver's own feasibility tolerance) and {retries} strict "
            f"re-solve(s) did not repair it; use another backend, e.g. '{other}' (--backend {other})")


def _story(name: str, model: MILP, attempts: list[_Attempt], best: _Attempt) -> str:
    """What the re-solves were for, for the outcome's message."""
    first = attempts[0]
    why = f"its plan broke {_worst(model, first)}" if first.broken else \
        f"its rounded plan was worth {first.objective:.6f} against its bound {first.result.bound}"
    which = next(i for i, a in enumerate(attempts) if a is best)
    return (f"{name} re-solved {len(attempts) - 1}x with strict tolerances: {why}; "
            f"plan from {'the first solve' if which == 0 else f're-solve {which}'}")
