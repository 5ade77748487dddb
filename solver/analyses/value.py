r"""Value of money: what £1m more (or less) in each year and pot is worth, by re-solving.

An integer programme has no true duals, so the value of a pot is measured the only honest way:
solve the scenario again with £δm added to (and taken from) that pot and compare the optima.
Each comparison is reported with the band the two solves' gaps allow (see ``common``), and a
comparison whose band contains 0 is re-solved tighter (to proven optimality where it can be had
within the refine time limit) before anything is ranked. The LP relaxation's dual of each
budget row is reported alongside, labelled *indicative*: it is the value of money in a model
where projects can be part-funded, which is not the decision a planner takes.

This module also holds the machinery every re-solve analysis here shares (the ladder and the
rule prices use it): ``SolveTask``/``solve_point`` (one solve reduced to a ``Point``, optionally
with projects excluded), ``compare`` (a difference with its band and a verdict), ``refine``
(re-solve tighter only what is undetermined) and ``certain_ranks`` (ranks that only count what
is proven).

Sign of the LP dual. For a maximisation HiGHS reports a row dual :math:`y_r` equal to
:math:`\partial z / \partial b_r` of the row's active bound, so the dual of ``capital[2026]`` is
the LP objective gained per £1m of 2026 capital (≥ 0). Where the envelope also appears elsewhere
(carry-over limits :math:`\theta B_t`, fair-share rows :math:`\varphi\sigma_s B`, the flexibility
bound :math:`\alpha B^K_t`), those rows' and bounds' duals are added with the envelope's
coefficient, found by formulating the model at :math:`B + e_{t,\text{pot}}` (every row and bound
is affine in the envelope), so the figure is the LP's whole marginal value of that pot.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from solver.analyses.engine import Analysis, Point, shifted_envelope
from solver.backends import get_backend
from solver.backends.result import SolutionStatus, Termination, relative_gap
from solver.data.scenario import Scenario
from solver.errors import AuditError, BackendError, InfeasibleError, NoSolutionError
from solver.mip.arrays import MILP
from solver.mip.formulation import POTS, formulate, project_systems
from solver.run.executor import run_all
from solver.solve.audit import audit
from solver.solve.checks import fy
from solver.solve.decisions import Decisions
from solver.solve.encoding import decode, encode

PROOF_RTOL = 1e-6
"""A solve is *proven* when bound − objective ≤ PROOF_RTOL · max(1, |objective|) (the audit's
objective tolerance); two proven optima closer than twice that are *equal*."""

DEFAULT_REFINE_GAPS: tuple[float, ...] = (1e-4, 0.0)
"""Gaps tried in turn when a comparison is undetermined: 0.01% first (usually enough to separate
and finishes well inside the time limit, so it is reproducible), then proven optimality."""

Verdict = str  # "positive" | "negative" | "zero" | "undetermined"


# --------------------------------------------------------------------------------------------
# one solve


@dataclass(frozen=True)
class SolveTask:
    """One re-solve: a scenario (with its solver settings), a label, an optional warm start, and
    projects whose options are fixed to 0 (``exclude``; used by nested ladders). Picklable."""

    scenario: Scenario
    label: str
    start: Decisions | None = None
    exclude: frozenset[str] = frozenset()


def solve_point(task: SolveTask) -> Point:
    """Formulate, solve, decode and audit one task (mirrors ``solver.api.solve``).

    Infeasible → ``Point(feasible=False, status="infeasible")``; stopped without a plan →
    ``status="no_solution"``. A backend failure raises ``BackendError`` and a plan that breaks a
    rule (or funds an excluded project) ``AuditError``, as ``solve`` does.
    """
    sc = task.scenario
    engine = get_backend(sc.backend)
    form = formulate(sc)
    model = form.model
    if task.exclude:
        pids = form.data.project_ids[form.data.o_project].astype(str)
        off = np.isin(pids, sorted(task.exclude))
        model = dataclasses.replace(model, col_hi=model.col_hi.copy())
        model.col_hi[form.x[off]] = 0.0
    x0 = encode(form, task.start) if task.start is not None else None
    result = engine.solve(model, sc.solve_options(), start=x0)
    if result.termination == Termination.INTERRUPTED:
        raise KeyboardInterrupt    # Ctrl-C stops the whole analysis, not only this solve
    if result.status == SolutionStatus.ERROR:
        raise BackendError(f"backend {result.backend} failed: {result.message}")
    if result.status == SolutionStatus.INFEASIBLE:
        return Point(label=task.label, feasible=False, status="infeasible", solve_seconds=result.solve_seconds)
    if not result.has_solution or result.x is None:
        return Point(label=task.label, feasible=False, status="no_solution", solve_seconds=result.solve_seconds)
    decisions = decode(form, result.x)
    report = audit(sc, decisions, claimed_objective=result.objective)
    if not report.ok:
        raise AuditError(report.violations)
    leaked = sorted(task.exclude & set(decisions.starts))
    if leaked:
        raise AuditError([f"{p}: funded although excluded from this re-solve" for p in leaked])
    acc = report.accounts
    assert acc is not None
    bound = result.bound if result.bound is not None else report.objective
    return Point(
        label=task.label, feasible=True, objective=report.objective, bound=bound,
        gap=result.gap if result.gap is not None else 0.0, status=result.status.value,
        starts=dict(decisions.starts), withdrawn=list(decisions.withdrawn),
        allocation=dict(acc.allocation),
        spend={f"{pot} {y}": v for (pot, y), v in acc.pot_spend.items()},
        solve_seconds=result.solve_seconds,
    )


def proven(p: Point) -> bool:
    """True when the point's optimum is proven (bound within ``PROOF_RTOL`` of the objective), or
    when it is proven infeasible."""
    if not p.feasible:
        return p.status == "infeasible"
    return p.bound - p.objective <= PROOF_RTOL * max(1.0, abs(p.objective))


def merge(old: Point, new: Point) -> Point:
    """Two solves of the same problem combined: the better plan and the tighter bound (both bounds
    are valid, so their minimum is)."""
    if not new.feasible:
        if new.status == "infeasible" and not old.feasible:
            return dataclasses.replace(new, solve_seconds=old.solve_seconds + new.solve_seconds)
        return dataclasses.replace(old, solve_seconds=old.solve_seconds + new.solve_seconds)
    if not old.feasible:
        return dataclasses.replace(new, solve_seconds=old.solve_seconds + new.solve_seconds)
    best = new if new.objective > old.objective else old
    bound = max(min(old.bound, new.bound), best.objective)
    gap = relative_gap(best.objective, bound) or 0.0
    return dataclasses.replace(best, bound=bound, gap=gap, status=new.status,
                               solve_seconds=old.solve_seconds + new.solve_seconds)


# --------------------------------------------------------------------------------------------
# honest comparisons


@dataclass
class Band:
    """``a − b`` between two re-solves, the interval their bounds allow, and what can be said.

    verdict: ``positive``/``negative`` when the band excludes 0 (beyond the audit tolerance),
    ``zero`` when the band lies within the tolerance of 0 (both proven, or known ≥ 0 and tight),
    ``undetermined`` otherwise — not a ranking.
    """

    value: float
    low: float
    high: float
    verdict: Verdict


def compare(a: Point, b: Point, *, nonnegative: bool = False) -> Band:
    """``a.objective − b.objective`` with the band ``[a.obj − b.bound, a.bound − b.obj]``.

    ``nonnegative`` states that the true difference cannot be negative (``a`` is a relaxation of
    ``b``), which clips the band at 0. An infeasible point counts as −∞ when proven infeasible,
    and as unknown when the solve stopped without a plan.
    """
    if not a.feasible or not b.feasible:
        if a.status == "infeasible" and b.status == "infeasible":
            return Band(0.0, 0.0, 0.0, "zero")
        if a.status == "infeasible" and b.feasible:
            return Band(-math.inf, -math.inf, -math.inf, "negative")
        if b.status == "infeasible" and a.feasible:
            return Band(math.inf, math.inf, math.inf, "positive")
        return Band(math.nan, math.nan, math.nan, "undetermined")
    value = a.objective - b.objective
    low, high = a.objective - b.bound, a.bound - b.objective
    if nonnegative:  # b's plan is feasible for a: a's optimum is at least max(a.obj, b.obj)
        value = max(value, 0.0)
        low = max(low, 0.0)
    tol = _tol(a, b)
    if low > tol:
        verdict = "positive"
    elif high < -tol:
        verdict = "negative"
    elif -tol <= low and high <= tol:
        verdict = "zero"
    else:
        verdict = "undetermined"
    return Band(value, min(low, value), max(high, value), verdict)  # float noise can put bound < objective


def _tol(a: Point, b: Point) -> float:
    return 2 * PROOF_RTOL * max(1.0, abs(a.objective), abs(b.objective))


Comparison = tuple[str, str, bool]
"""(key of a, key of b, nonnegative): one difference ``a − b`` an analysis reports or ranks on."""


def undetermined(points: dict[str, Point], comparisons: Iterable[Comparison]) -> set[str]:
    """Keys of the points in a comparison whose band does not settle its sign."""
    out: set[str] = set()
    for a, b, nonneg in comparisons:
        if compare(points[a], points[b], nonnegative=nonneg).verdict == "undetermined":
            out.update((a, b))
    return out


def _tight(p: Point, gap: float) -> bool:
    """Solved at least as tightly as ``gap`` (or proven either way)."""
    if proven(p):
        return True
    return p.feasible and p.gap <= gap + 1e-12


def refine(points: dict[str, Point], tasks: dict[str, SolveTask], comparisons: Sequence[Comparison], *,
           gaps: Sequence[float], time_limit: float, workers: int = 1,
           log: list[dict[str, object]] | None = None, alias: dict[str, str] | None = None) -> dict[str, Point]:
    """Re-solve, gap by gap (e.g. 1e-4 then 0), only the points of undetermined comparisons.

    Each re-solve is warm-started from the point's own plan and merged with it (better plan,
    tighter bound). ``alias`` maps keys that are the same problem as another key (e.g. a cut of
    a pot already at 0) to it: only the target is re-solved and the alias gets its figures.

    A stage starts with a probe of ``workers`` re-solves; if none of them reaches the stage's gap
    within the time limit, the rest of that stage and every tighter stage are skipped (each
    logged with status ``skipped``): they are harder still, and on a large instance proving
    optimality can take far longer than any limit (England: gap 0 is not reached in 60 s), so
    trying them all would spend ``time_limit`` per point for nothing. What stays undetermined is
    reported as such.

    Returns the updated ``points`` (also updated in place); ``log`` receives one record per
    re-solve or skip.
    """
    alias = alias or {}
    probe = max(1, workers)
    stalled_at: float | None = None
    for gap in gaps:
        need = sorted({alias.get(k, k) for k in undetermined(points, comparisons)})
        need = [k for k in need if not _tight(points[k], gap)]
        if not need:
            break
        if stalled_at is not None:
            _log_skipped(log, need, gap, time_limit, stalled_at)
            continue
        jobs = []
        for k in need:
            t = tasks[k]
            start = points[k].decisions() if points[k].feasible else t.start
            jobs.append(dataclasses.replace(t, scenario=t.scenario.with_solver(mip_gap=gap, time_limit=time_limit),
                                            start=start))
        label = f"re-solving at gap {gap:g}"
        first = run_all(solve_point, jobs[:probe], workers=workers, label=label)
        _merge_into(points, need[:probe], first, gap, time_limit, log)
        if not any(_tight(new, gap) for new in first):
            stalled_at = gap
            _log_skipped(log, need[probe:], gap, time_limit, gap)
        elif len(jobs) > probe:
            rest = run_all(solve_point, jobs[probe:], workers=workers, label=label)
            _merge_into(points, need[probe:], rest, gap, time_limit, log)
        for a, target in alias.items():
            points[a] = dataclasses.replace(points[target], label=a)
    return points


def _merge_into(points: dict[str, Point], keys: Sequence[str], results: Sequence[Point], gap: float,
                time_limit: float, log: list[dict[str, object]] | None) -> None:
    """Merge re-solved points into ``points`` and log one record each."""
    for k, new in zip(keys, results):
        points[k] = merge(points[k], new)
        if log is not None:
            log.append({"label": k, "mip_gap": gap, "time_limit": time_limit, "status": new.status,
                        "objective": _num(new.objective), "bound": _num(new.bound), "gap": _num(new.gap),
                        "seconds": new.solve_seconds})


def _log_skipped(log: list[dict[str, object]] | None, keys: Sequence[str], gap: float, time_limit: float,
                 stalled_at: float) -> None:
    """Log re-solves not attempted because a probe at ``stalled_at`` could not reach its gap."""
    if log is None:
        return
    for k in keys:
        log.append({"label": k, "mip_gap": gap, "time_limit": time_limit, "status": "skipped",
                    "objective": None, "bound": None, "gap": None, "seconds": 0.0,
                    "reason": f"a probe re-solve did not reach gap {stalled_at:g} within {time_limit:g} s"})


def certain_ranks(keys: Sequence[str], points: dict[str, Point]) -> dict[str, tuple[int, list[str]]]:
    """Rank by objective (higher first) counting only what is proven: rank = 1 + the number of
    others provably higher; ``tied`` lists those whose order against this one is not proven."""
    out = {}
    for i in keys:
        better, tied = 0, []
        for j in keys:
            if i == j:
                continue
            v = compare(points[j], points[i]).verdict
            if v == "positive":
                better += 1
            elif v in ("zero", "undetermined"):
                tied.append(j)
        out[i] = (better + 1, tied)
    return out


def refine_settings(scenario: Scenario, refine_gaps: Sequence[float] | None,
                    refine_time_limit: float | None) -> tuple[list[float], float]:
    """Gaps to try (only those tighter than the scenario's own) and the re-solve time limit."""
    gaps = DEFAULT_REFINE_GAPS if refine_gaps is None else tuple(refine_gaps)
    gaps = [float(g) for g in gaps if g < scenario.solver.mip_gap]
    if refine_time_limit is None:
        refine_time_limit = scenario.solver.time_limit
    return gaps, float(refine_time_limit)


# --------------------------------------------------------------------------------------------
# small shared helpers for tables and summaries


def _num(v: float) -> float | None:
    """A JSON-safe number (None for NaN/inf)."""
    return None if v is None or not math.isfinite(float(v)) else float(v)


def jsonable(obj: object) -> object:
    """Plain JSON types (numpy scalars converted, NaN/inf → None, tuples → lists)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        seq = sorted(obj) if isinstance(obj, set | frozenset) else obj
        return [jsonable(v) for v in seq]
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer | int):
        return int(obj)
    if isinstance(obj, np.floating | float):
        return _num(float(obj))
    return obj


def solve_record(p: Point, kind: str = "") -> dict[str, object]:
    """A point's solver figures for ``summary.json`` (no timing)."""
    rec: dict[str, object] = {"label": p.label}
    if kind:
        rec["kind"] = kind
    rec.update({"status": p.status, "objective": _num(p.objective), "bound": _num(p.bound),
                "gap": _num(p.gap), "funded": len(p.starts) if p.feasible else None})
    return rec


def time_limited(points: dict[str, Point], log: list[dict[str, object]]) -> list[str]:
    """Labels of solves that stopped on their time limit (their figures depend on machine speed)."""
    out = {str(r["label"]) for r in log if r["status"] not in ("optimal", "infeasible")}
    out |= {k for k, p in points.items() if p.status in ("feasible", "no_solution")}
    return sorted(out)


def solver_summary(scenario: Scenario) -> dict[str, object]:
    """Solver settings and version, for ``summary.json``."""
    s = scenario.solver
    try:
        ver = get_backend(s.backend).version()
    except BackendError:
        ver = "unavailable"
    return {"backend": s.backend, "version": ver, "mip_gap": s.mip_gap, "time_limit": s.time_limit,
            "threads": s.threads, "seed": s.seed}


def scenario_summary(scenario: Scenario) -> dict[str, object]:
    """Which scenario was analysed."""
    return {"name": scenario.name, "path": scenario.path, "model": scenario.policy.name,
            "instance": scenario.instance.name, "description": scenario.description,
            "envelope": scenario.envelope[["year", "capital", "revenue"]].to_dict("records")}


def base_point(scenario: Scenario, label: str = "base") -> Point:
    """Solve the unchanged scenario; raise ``InfeasibleError`` (with ``solve``'s explanation) or
    ``NoSolutionError`` when there is no plan to compare against."""
    p = solve_point(SolveTask(scenario, label))
    if p.feasible:
        return p
    if p.status == "infeasible":
        from solver.api import solve

        solve(scenario)  # raises InfeasibleError with the causes in the user's terms
        raise InfeasibleError(f"scenario {scenario.name}: no plan satisfies every rule")
    raise NoSolutionError(f"scenario {scenario.name}: the solver stopped without any plan; raise the time limit")


def plan_changes(base: Point, other: Point, psys: dict[str, str]) -> list[dict[str, object]]:
    """Projects funded in ``other`` but not ``base`` (in), the reverse (out), and moved starts."""
    rows: list[dict[str, object]] = []
    if not (base.feasible and other.feasible):
        return rows
    for p in sorted(set(base.starts) | set(other.starts)):
        b, o = base.starts.get(p), other.starts.get(p)
        if b == o:
            continue
        change = "in" if b is None else "out" if o is None else "moved"
        rows.append({"project_id": p, "system_id": psys.get(p, ""), "change": change,
                     "base_start": b, "new_start": o})
    return rows


def project_system_map(scenario: Scenario) -> dict[str, str]:
    """System of every project."""
    return dict(zip(scenario.instance.projects["project_id"].astype(str), project_systems(scenario).astype(str)))


def fmt_band(b: Band, digits: int = 2) -> str:
    """``+5.23 [5.01, 5.40]``."""
    if not math.isfinite(b.value):
        return "infeasible" if b.value == b.value else "unknown"

    def f(v: float, sign: str = "") -> str:
        return f"{round(v, digits) + 0.0:{sign},.{digits}f}"

    return f"{f(b.value, '+')} [{f(b.low)}, {f(b.high)}]"


# --------------------------------------------------------------------------------------------
# LP relaxation duals


def _lp_solve(model: MILP) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Solve the LP relaxation with HiGHS: (objective, row activity, row duals, column values,
    column duals). ``ValueError`` unless optimal."""
    import highspy

    from solver.backends.highs import highs_lp

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.passModel(highs_lp(model, integer=False))  # no integrality: the LP relaxation
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise ValueError(f"LP relaxation not solved: {h.modelStatusToString(h.getModelStatus())}")
    sol = h.getSolution()
    return (float(h.getInfo().objective_function_value), np.asarray(sol.row_value), np.asarray(sol.row_dual),
            np.asarray(sol.col_value), np.asarray(sol.col_dual))


def _side(value: np.ndarray, lo: np.ndarray, hi: np.ndarray, d_lo: np.ndarray, d_hi: np.ndarray) -> np.ndarray:
    """Change of the active bound of each row/column (0 where neither bound is active)."""
    tol = 1e-7 * np.maximum(1.0, np.abs(value))
    at_hi = np.isfinite(hi) & (np.abs(value - np.where(np.isfinite(hi), hi, 0.0)) <= tol)
    at_lo = np.isfinite(lo) & (np.abs(value - np.where(np.isfinite(lo), lo, 0.0)) <= tol)
    return np.where(at_hi, np.nan_to_num(d_hi), np.where(at_lo, np.nan_to_num(d_lo), 0.0))


def lp_values(scenario: Scenario) -> pd.DataFrame:
    """Per year and pot, the LP relaxation's marginal value of £1m (indicative: the LP lets
    projects be part-funded). Columns year, pot, lp_row_dual (the budget row's dual alone),
    lp_dual (the whole derivative, see the module docstring)."""
    form = formulate(scenario)
    m = form.model
    _, act, rdual, xval, cdual = _lp_solve(m)
    rows = []
    index = {n: i for i, n in enumerate(m.row_names)}
    for y in scenario.instance.years:
        for pot in POTS:
            i = index[f"{pot}[{y}]"]
            up = formulate(scenario.with_envelope(shifted_envelope(scenario, y, pot, 1.0))).model
            env_pot = float(scenario.envelope.set_index("year").at[y, pot])
            with np.errstate(invalid="ignore"):
                d_rlo, d_rhi = up.row_lo - m.row_lo, up.row_hi - m.row_hi
                d_clo, d_chi = up.col_lo - m.col_lo, up.col_hi - m.col_hi
            total = float(rdual @ _side(act, m.row_lo, m.row_hi, d_rlo, d_rhi)
                          + cdual @ _side(xval, m.col_lo, m.col_hi, d_clo, d_chi))
            rows.append({"year": int(y), "pot": pot, "envelope": env_pot, "lp_row_dual": float(rdual[i]),
                         "lp_dual": total})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# value of money


def value_of_money(scenario: Scenario, *, delta: float = 1.0, workers: int = 1, tighten: bool = True,
                   refine_gaps: Sequence[float] | None = None, refine_time_limit: float | None = None,
                   lp: bool = True, **solver: object) -> Analysis:
    """For each year and pot, the objective gained by £``delta``m more and lost by £``delta``m less.

    Each of the 2 × years × 2 re-solves is compared with the base solve; a gain or loss whose
    band contains 0, and any two pots whose order is not settled by their bands, are re-solved
    tighter (``refine_gaps`` in turn, default 1e-4 then 0, each within ``refine_time_limit``
    seconds, default the scenario's time limit) when ``tighten``. Ranks count only proven
    differences: equal ranks mean "not separable". A cut larger than the pot takes it to 0 (the
    applied change is reported). ``workers`` > 1 solves on a process pool.

    Tables: ``money`` (one row per year and pot). ``lp`` adds the LP-relaxation duals.
    """
    if not (delta > 0 and math.isfinite(delta)):
        from solver.errors import InputError

        raise InputError(None, f"delta must be a positive number of £m (got {delta})")
    sc = scenario.with_solver(**solver)
    gaps, tl = refine_settings(sc, refine_gaps, refine_time_limit)
    wall0 = time.perf_counter()
    base = base_point(sc)
    env = sc.envelope.set_index("year")
    keys: list[tuple[int, str]] = [(int(y), pot) for y in sc.instance.years for pot in POTS]
    tasks: dict[str, SolveTask] = {"base": SolveTask(sc, "base")}
    applied: dict[str, float] = {}
    todo: list[str] = []
    for y, pot in keys:
        for sign in (1, -1):
            k = _vkey(y, pot, sign)
            shifted = shifted_envelope(sc, y, pot, sign * delta)
            applied[k] = round(float(shifted.set_index("year").at[y, pot]) - float(env.at[y, pot]), 6)
            start = base.decisions() if sign > 0 else None
            tasks[k] = SolveTask(sc.with_envelope(shifted), k, start=start)
            if applied[k] != 0:
                todo.append(k)
    results = run_all(solve_point, [tasks[k] for k in todo], workers=workers, label="value of money")
    points: dict[str, Point] = {"base": base}
    points.update(dict(zip(todo, results)))
    alias = {k: "base" for k in tasks if k != "base" and applied[k] == 0}  # a pot at 0 cannot be cut
    for k in alias:
        points[k] = dataclasses.replace(base, label=k)
    plus = [_vkey(y, p, 1) for y, p in keys]
    minus = [_vkey(y, p, -1) for y, p in keys]
    comparisons: list[Comparison] = [(k, "base", False) for k in plus]
    comparisons += [("base", k, False) for k in minus if k not in alias]
    comparisons += [(a, b, False) for i, a in enumerate(plus) for b in plus[i + 1:]]
    comparisons += [(a, b, False) for i, a in enumerate(minus) for b in minus[i + 1:]]
    log: list[dict[str, object]] = []
    if tighten and gaps:
        refine(points, tasks, comparisons, gaps=gaps, time_limit=tl, workers=workers, log=log, alias=alias)

    lp_frame = lp_values(sc) if lp else None
    rank_plus = certain_ranks(plus, points)
    rank_minus = certain_ranks(minus, points)
    psys = project_system_map(sc)
    rows = []
    for (y, pot), kp, km in zip(keys, plus, minus):
        g = compare(points[kp], points["base"])
        lo = compare(points["base"], points[km]) if km not in alias else Band(0.0, 0.0, 0.0, "zero")
        row: dict[str, object] = {
            "year": y, "pot": pot, "envelope": float(env.at[y, pot]),
            "plus": applied[kp], "gain": g.value, "gain_low": g.low, "gain_high": g.high, "gain_verdict": g.verdict,
            "gain_per_gbpm": g.value / applied[kp] if applied[kp] else math.nan,
            "gain_rank": rank_plus[kp][0], "gain_tied_with": "; ".join(_pretty(t) for t in rank_plus[kp][1]),
            "minus": applied[km], "loss": lo.value, "loss_low": lo.low, "loss_high": lo.high,
            "loss_verdict": lo.verdict,
            "loss_per_gbpm": lo.value / -applied[km] if applied[km] else math.nan,
            "loss_rank": rank_minus[km][0], "loss_tied_with": "; ".join(_pretty(t) for t in rank_minus[km][1]),
            "plus_changes": _changes_text(plan_changes(base, points[kp], psys)),
            "minus_changes": _changes_text(plan_changes(base, points[km], psys)),
        }
        if lp_frame is not None:
            r = lp_frame[(lp_frame["year"] == y) & (lp_frame["pot"] == pot)].iloc[0]
            row["lp_dual"] = float(r["lp_dual"])
            row["lp_row_dual"] = float(r["lp_row_dual"])
        rows.append(row)
    money = pd.DataFrame(rows)
    money = money.sort_values(["gain_rank", "year", "pot"], kind="stable").reset_index(drop=True)

    summary = {
        "analysis": "value_of_money",
        "scenario": scenario_summary(sc),
        "parameters": {"delta": delta, "workers": workers, "tighten": tighten, "refine_gaps": gaps,
                       "refine_time_limit": tl, "lp": lp},
        "solver": solver_summary(sc),
        "base": solve_record(points["base"]),
        "solves": [solve_record(points[k], "plus" if k in plus else "minus") for k in plus + minus],
        "refinements": [{k: v for k, v in r.items() if k != "seconds"} for r in log],
        "time_limited": time_limited(points, log),
        "notes": [
            "gain = objective with the pot raised − base objective; loss = base − objective with the pot cut",
            "low/high: the band the two solves' gaps allow; verdict 'undetermined' means the band contains 0",
            "ranks count only proven differences; pots whose order is not proven share a rank",
            "lp_dual is indicative only: the LP relaxation lets projects be part-funded",
        ],
    }
    summary["timing"] = {"wall_seconds": time.perf_counter() - wall0,
                         "solve_seconds": {k: p.solve_seconds for k, p in sorted(points.items())},
                         "refine_seconds": [r["seconds"] for r in log]}
    text = _value_text(sc, delta, points["base"], money, lp)
    return Analysis(name="value", tables={"money": money}, summary=jsonable(summary), text=text)  # type: ignore[arg-type]


def _vkey(year: int, pot: str, sign: int) -> str:
    return f"{pot} {year} {'+' if sign > 0 else '-'}"


def _pretty(key: str) -> str:
    pot, year, _ = key.split(" ")
    return f"{pot} {fy(int(year))}"


def _changes_text(rows: list[dict[str, object]]) -> str:
    parts = []
    for r in rows:
        mark = {"in": "+", "out": "-", "moved": "~"}[str(r["change"])]
        extra = f"({r['base_start']}->{r['new_start']})" if r["change"] == "moved" else ""
        parts.append(f"{mark}{r['project_id']}{extra}")
    return " ".join(parts)


def _value_text(sc: Scenario, delta: float, base: Point, money: pd.DataFrame, lp: bool) -> str:
    lines = [f"Value of money — scenario {sc.name} ({sc.policy.name}): £{delta:g}m more or less in each year "
             f"and pot, re-solved",
             f"Base objective {base.objective:,.2f} (bound {base.bound:,.2f}, gap {100 * base.gap:.4f}%)",
             "",
             f"Where the next £{delta:g}m does most good (objective gained [band]; '=' means not separable):"]
    by_gain = money.sort_values(["gain_rank", "gain"], ascending=[True, False], kind="stable")
    for r in by_gain.itertuples():
        tie = "=" if r.gain_tied_with else " "
        lp_txt = f"   LP dual {r.lp_dual:,.2f} (indicative)" if lp else ""
        band = fmt_band(Band(r.gain, r.gain_low, r.gain_high, r.gain_verdict))
        lines.append(f"  {tie}{r.gain_rank:>2}. {r.pot:7} {fy(r.year)}: {band}  ({r.gain_verdict}){lp_txt}")
    lines += ["", f"Where £{delta:g}m less hurts least (objective lost [band]):"]
    by_loss = money.sort_values(["loss_rank", "loss"], ascending=[True, True], kind="stable")
    for r in by_loss.itertuples():
        tie = "=" if r.loss_tied_with else " "
        band = fmt_band(Band(r.loss, r.loss_low, r.loss_high, r.loss_verdict))
        short = f"  [pot only £{-r.minus:g}m: cut to 0]" if r.minus > -delta + 1e-9 else ""
        lines.append(f"  {tie}{r.loss_rank:>2}. {r.pot:7} {fy(r.year)}: {band}  ({r.loss_verdict}){short}")
    undet = int((money["gain_verdict"] == "undetermined").sum() + (money["loss_verdict"] == "undetermined").sum())
    if undet:
        lines += ["", f"{undet} figure(s) remain undetermined (the band contains 0 even after re-solving): "
                      "raise the refine time limit to settle them."]
    return "\n".join(lines)
