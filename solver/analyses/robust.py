r"""Robustness: how much of a plan survives uncertain costs, benefits and need weights.

Each *sample* is a perturbed copy of the instance, drawn deterministically from
``numpy.random.default_rng(seed).spawn(samples)`` (child ``i`` builds sample ``i``, so results do
not depend on how many workers run them):

- **costs** (``costs.csv`` capital and revenue, every profile year) × a lognormal overrun factor
  per project, :math:`\exp(\sigma_{\mathrm{kind}} Z)`, median 1 and mean :math:`e^{\sigma^2/2} \ge 1`
  (skewed towards overruns), σ from ``DEFAULT_COST_SIGMA`` by project kind; money is rounded back to
  £k (3 decimals) so every table rule still holds. Run costs (``projects.csv``) are not sampled.
- **benefits** × a uniform factor in ``benefit_range`` per project (rounded to 6 decimals);
- **category weights** drawn uniformly from an interval per maturity category (Robust Portfolio
  Modelling style: incomplete information about the weights given as intervals; default ±20% of
  the policy's weights, ``DEFAULT_WEIGHT_SPREAD``). Intervals may overlap, so the order of the
  categories can change between samples.

Every sample is re-solved (warm-started from the nominal plan) through ``solver.run.executor.run_all``.
The analysis reports

- each project's **core index**: the share of samples with a plan whose optimum funds the project,
  with a 95% Wilson interval; *core* (funded in every sample), *exterior* (in none), else *borderline*;
- the nominal plan's **feasibility rate**: the share of samples in which the nominal decisions still
  pass the plan audit (budgets, local limits, fair-share floors ...) — no solver needed, except that
  when the policy lets money move (capital-to-revenue or carry-over) the transfers are re-optimised
  for the sample with every project decision fixed (one LP);
- the nominal plan's **regret** where it still fits: the sample optimum less the nominal plan's
  value under the sample's figures. The nominal value is exact (recomputed by the audit); the sample
  optimum is only known within its gap, so regret is reported with the band
  ``[max(0, objective − nominal), bound − nominal]``; "certain" regret is one whose band excludes 0.

The core index counts *a* solution within the requested gap of each sample, so projects that are
near-ties in value can flip between samples for that reason alone; solve tighter (``mip_gap``) to
remove that noise.

``solve_variant`` (module level, mirroring ``solver.api.solve`` without the infeasibility
explanation) solves a formulation's model or a modified copy (extra rows, columns or objective:
``extend_model``), decodes the first columns as a plan and audits it against the scenario.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from solver.analyses.engine import Analysis, Point
from solver.api import solve
from solver.backends import get_backend
from solver.backends.result import SolutionStatus, Termination, relative_gap
from solver.data.scenario import Scenario
from solver.errors import AuditError, BackendError, InputError
from solver.mip.arrays import MILP
from solver.mip.formulation import Formulation, formulate, project_systems
from solver.run.executor import run_all
from solver.solve.accounts import Accounts, View, view
from solver.solve.audit import AuditReport, audit
from solver.solve.checks import fy
from solver.solve.decisions import Decisions
from solver.solve.encoding import decode, encode
from solver.solve.outcome import Outcome

#: Lognormal σ of the cost overrun factor by project kind ("*": any other kind). Illustrative
#: defaults, to be replaced by local evidence: the ordering follows the reference-class finding that
#: large IT system procurements overrun most often and by most (Flyvbjerg & Budzier, "Why your IT
#: project may be riskier than you think", HBR 2011). σ = 0.35 gives a median factor of 1, a mean of
#: 1.06 and a 90th percentile of 1.57.
DEFAULT_COST_SIGMA: dict[str, float] = {
    "epr_procurement": 0.35,
    "shared_care_record": 0.30,
    "epr_optimisation": 0.20,
    "digitisation": 0.20,
    "cyber": 0.15,
    "fax_replacement": 0.10,
    "*": 0.25,
}

#: Default interval of each category weight: nominal × [1 − spread, 1 + spread].
DEFAULT_WEIGHT_SPREAD = 0.2

#: Two-sided 95% normal quantile for Wilson intervals.
Z95 = 1.959963984540054

CATEGORIES = ("0", "1", "2", "3")
MONEY_DECIMALS = 3
BENEFIT_DECIMALS = 6
WEIGHT_DECIMALS = 6
TOL = 1e-6


# --------------------------------------------------------------------------------------------
# statistics


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (``(nan, nan)`` when ``n == 0``)."""
    if n <= 0:
        return float("nan"), float("nan")
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


# --------------------------------------------------------------------------------------------
# solving a (modified) model, mirroring solver.api.solve


@dataclass
class Variant:
    """One solve of a formulation's model (or a modified copy), decoded and audited.

    ``value`` is the plan's audited objective under the scenario; ``objective``/``bound``/``gap``
    are the solver's figures for the model actually solved (its objective may differ, e.g. a
    distance in modelling-to-generate-alternatives).
    """

    status: str
    decisions: Decisions | None = None
    value: float = float("nan")
    objective: float = float("nan")
    bound: float = float("nan")
    gap: float = float("nan")
    report: AuditReport | None = None
    x: np.ndarray | None = None
    solve_seconds: float = 0.0
    message: str = ""

    @property
    def found(self) -> bool:
        """True when the solver returned a plan."""
        return self.decisions is not None


def extend_model(model: MILP, *, columns: Sequence[tuple[str, float, float, bool]] = (),
                 rows: Sequence[tuple[str, np.ndarray, np.ndarray, float, float]] = (),
                 objective: tuple[np.ndarray, float] | None = None, family: str = "extra") -> MILP:
    """A copy of ``model`` with extra columns ``(name, lo, hi, integer)`` appended after the
    existing ones, extra rows ``(name, cols, vals, lo, hi)`` (column indices into the extended
    model) and, optionally, a new objective ``(c, offset)`` over the extended columns (default:
    the old objective, 0 on the new columns)."""
    n_new = len(columns)
    n = model.n_cols + n_new
    c = np.concatenate([model.c, np.zeros(n_new)])
    offset = model.offset
    if objective is not None:
        c, offset = np.asarray(objective[0], dtype=float), float(objective[1])
        if c.shape != (n,):
            raise ValueError(f"objective has {c.shape[0]} coefficients, the extended model {n} columns")
    A = sp.csr_matrix((model.A.data, model.A.indices, model.A.indptr), shape=(model.n_rows, n))
    if rows:
        r = np.concatenate([np.full(len(cols), i) for i, (_, cols, _, _, _) in enumerate(rows)])
        cc = np.concatenate([np.asarray(cols, dtype=np.int64) for _, cols, _, _, _ in rows])
        vv = np.concatenate([np.asarray(vals, dtype=float) for _, _, vals, _, _ in rows])
        extra = sp.csr_matrix((vv, (r, cc)), shape=(len(rows), n))
        extra.sum_duplicates()
        A = sp.vstack([A, extra], format="csr")
    return MILP(
        c=c,
        col_lo=np.concatenate([model.col_lo, [col[1] for col in columns]]),
        col_hi=np.concatenate([model.col_hi, [col[2] for col in columns]]),
        integrality=np.concatenate([model.integrality, np.array([col[3] for col in columns], dtype=bool)]),
        A=A,
        row_lo=np.concatenate([model.row_lo, [row[3] for row in rows]]),
        row_hi=np.concatenate([model.row_hi, [row[4] for row in rows]]),
        col_names=list(model.col_names) + [col[0] for col in columns],
        row_names=list(model.row_names) + [row[0] for row in rows],
        row_family=np.concatenate([model.row_family, np.array([family] * len(rows), dtype=object)]),
        col_kind=np.concatenate([model.col_kind, np.array([family] * n_new, dtype=object)]),
        offset=offset,
        families=list(model.families) + ([family] if rows else []),
    )


def solve_variant(scenario: Scenario, form: Formulation | None = None, model: MILP | None = None, *,
                  start: Decisions | None = None) -> Variant:
    """Solve ``model`` (default: the formulation's own) with the scenario's solver settings, decode
    its first columns as a plan of ``form`` and audit the plan against ``scenario``.

    The first ``form.model.n_cols`` columns of ``model`` must be the formulation's (as
    ``extend_model`` keeps them). No plan → ``Variant`` with status ``infeasible`` or
    ``no_solution``; raises ``BackendError`` when the solver fails and ``AuditError`` when a returned
    plan breaks a rule (a bug). Unlike ``solver.api.solve``, infeasibility is not explained (that
    costs extra solves and samples only need the fact).
    """
    form = form or formulate(scenario)
    model = model or form.model
    n = form.model.n_cols
    engine = get_backend(scenario.backend)
    x0 = None
    if start is not None:
        x0 = np.zeros(model.n_cols)
        x0[:n] = encode(form, start)
    result = engine.solve(model, scenario.solve_options(), start=x0)
    if result.termination == Termination.INTERRUPTED:
        raise KeyboardInterrupt    # Ctrl-C stops the whole analysis, not only this solve
    if result.status == SolutionStatus.INFEASIBLE:
        return Variant(status="infeasible", solve_seconds=result.solve_seconds, message=result.message)
    if result.status == SolutionStatus.ERROR:
        raise BackendError(f"backend {result.backend} failed: {result.message}")
    if not result.has_solution or result.x is None:
        return Variant(status="no_solution", solve_seconds=result.solve_seconds, message=result.message)
    x = np.array(result.x[:n], dtype=float)
    x[form.model.integrality] = np.round(x[form.model.integrality])
    decisions = decode(form, x)
    report = audit(scenario, decisions, claimed_objective=form.model.objective_value(x))
    if not report.ok:
        raise AuditError(report.violations)
    objective = float(result.objective) if result.objective is not None else float("nan")
    bound = float(result.bound) if result.bound is not None else objective
    gap = relative_gap(objective, bound)
    return Variant(status=result.status.value, decisions=decisions, value=report.objective, objective=objective,
                   bound=bound, gap=gap if gap is not None else 0.0, report=report, x=result.x,
                   solve_seconds=result.solve_seconds, message=result.message)


def variant_point(variant: Variant, label: str) -> Point:
    """A solve of the scenario's own model as a ``Point`` (the figures the analyses compare)."""
    if not variant.found:
        return Point(label=label, feasible=False, status=variant.status, solve_seconds=variant.solve_seconds)
    assert variant.decisions is not None
    assert variant.report is not None
    assert variant.report.accounts is not None
    acc = variant.report.accounts
    return Point(
        label=label, feasible=True, objective=variant.value, bound=variant.bound, gap=variant.gap,
        status=variant.status, starts=dict(variant.decisions.starts), withdrawn=list(variant.decisions.withdrawn),
        allocation=dict(acc.allocation), spend={f"{pot} {y}": v for (pot, y), v in acc.pot_spend.items()},
        solve_seconds=variant.solve_seconds,
    )


# --------------------------------------------------------------------------------------------
# samples


@dataclass
class Draw:
    """The random factors of one sample (plain data, picklable)."""

    index: int
    cost_factor: dict[str, float]      # project → overrun factor on capital and revenue
    benefit_factor: dict[str, float]   # project → benefit factor
    weights: dict[str, float]          # category "0".."3" → weight


def resolve_cost_sigma(cost_sigma: dict[str, float] | None) -> dict[str, float]:
    """The σ table in use: ``None`` → ``DEFAULT_COST_SIGMA``; a dict is used as given (kinds not
    in it take its ``"*"`` entry, else 0: ``{}`` means no cost uncertainty)."""
    table = dict(DEFAULT_COST_SIGMA if cost_sigma is None else cost_sigma)
    for kind, s in table.items():
        if not isinstance(s, int | float) or not math.isfinite(s) or s < 0:
            raise InputError(None, f"cost sigma for kind '{kind}' must be a finite number >= 0 (got {s!r})")
    return {str(k): float(v) for k, v in sorted(table.items())}


def resolve_weight_ranges(scenario: Scenario, weight_ranges: dict | None) -> dict[str, tuple[float, float]]:
    """Interval of each category weight: ``None`` → nominal × [0.8, 1.2]; a dict (keys 0-3) is used
    as given, categories not in it keep their nominal weight (``{}``: no weight uncertainty)."""
    nominal = {k: float(v) for k, v in scenario.policy.need.category_weights.items()}
    if weight_ranges is None:
        s = DEFAULT_WEIGHT_SPREAD
        return {c: (round(w * (1 - s), WEIGHT_DECIMALS), round(w * (1 + s), WEIGHT_DECIMALS))
                for c, w in sorted(nominal.items())}
    out: dict[str, tuple[float, float]] = {}
    for key, rng in weight_ranges.items():
        c = str(key)
        if c not in CATEGORIES:
            raise InputError(None, f"weight range for unknown category '{key}'; categories are 0-3")
        try:
            lo, hi = (float(v) for v in rng)
        except (TypeError, ValueError):
            raise InputError(None, f"weight range for category {c} must be (low, high) (got {rng!r})") from None
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0 or lo > hi:
            raise InputError(None, f"weight range for category {c} must have 0 <= low <= high (got {rng!r})")
        out[c] = (lo, hi)
    return {c: out.get(c, (nominal[c], nominal[c])) for c in CATEGORIES}


def check_benefit_range(benefit_range: Sequence[float]) -> tuple[float, float]:
    """``(low, high)`` with 0 <= low <= high, finite."""
    try:
        lo, hi = (float(v) for v in benefit_range)
    except (TypeError, ValueError):
        raise InputError(None, f"benefit range must be (low, high) (got {benefit_range!r})") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0 or lo > hi:
        raise InputError(None, f"benefit range must have 0 <= low <= high (got {benefit_range!r})")
    return lo, hi


def draw_samples(scenario: Scenario, samples: int, seed: int, cost_sigma: dict[str, float],
                 benefit_range: tuple[float, float], weight_ranges: dict[str, tuple[float, float]]) -> list[Draw]:
    """The factors of every sample: child ``i`` of ``default_rng(seed).spawn(samples)`` draws, in
    this order, one standard normal per project (sorted by id), one uniform per project and one
    uniform per category 0-3 — always all of them, so changing one parameter never shifts the
    random numbers another uses."""
    pr = scenario.instance.projects.sort_values("project_id")
    ids = [str(p) for p in pr["project_id"]]
    kinds = [k if isinstance(k, str) else "" for k in pr["kind"]]
    default = cost_sigma.get("*", 0.0)
    sigma = np.array([cost_sigma.get(k, default) for k in kinds])
    b_lo, b_hi = benefit_range
    w_lo = np.array([weight_ranges[c][0] for c in CATEGORIES])
    w_hi = np.array([weight_ranges[c][1] for c in CATEGORIES])
    draws = []
    for i, rng in enumerate(np.random.default_rng(seed).spawn(samples)):
        z = rng.standard_normal(len(ids))
        u = rng.random(len(ids))
        v = rng.random(len(CATEGORIES))
        cost = np.exp(sigma * z)
        benefit = b_lo + (b_hi - b_lo) * u
        weights = np.round(w_lo + (w_hi - w_lo) * v, WEIGHT_DECIMALS)
        draws.append(Draw(index=i, cost_factor=dict(zip(ids, cost.tolist())),
                          benefit_factor=dict(zip(ids, benefit.tolist())),
                          weights=dict(zip(CATEGORIES, weights.tolist()))))
    return draws


def apply_draw(scenario: Scenario, draw: Draw) -> Scenario:
    """The scenario with one sample's costs, benefits and category weights (money rounded to £k)."""
    inst = scenario.instance
    costs = inst.costs.copy()
    f = costs["project_id"].map(draw.cost_factor).astype(float)
    for col in ("capital", "revenue"):
        costs[col] = (costs[col] * f).round(MONEY_DECIMALS)
    projects = inst.projects.copy()
    projects["benefit"] = (projects["benefit"] * projects["project_id"].map(draw.benefit_factor).astype(float)
                           ).round(BENEFIT_DECIMALS)
    sampled = dataclasses.replace(scenario, instance=dataclasses.replace(inst, costs=costs, projects=projects),
                                  name=f"{scenario.name}#sample{draw.index}")
    return sampled.with_overrides({"need": {"category_weights": dict(draw.weights)}})


# --------------------------------------------------------------------------------------------
# one sample: re-solve, and re-check given plans under the sample's figures


@dataclass
class PlanCheck:
    """A fixed plan under one sample: does it still pass the audit, and what is it worth."""

    feasible: bool
    value: float = float("nan")
    violation: str = ""
    overspend_national: float = 0.0   # £m over the national pots, summed over years and pots
    overspend_local: float = 0.0      # £m over systems' local capital and revenue headroom


def overspend(scenario: Scenario, plan: Decisions, acc: Accounts, v: View) -> tuple[float, float]:
    """Money a plan needs beyond its limits under ``scenario``, in £m: (national pots, local
    limits), each summed over years (and systems), with the plan's own transfers and carry-over.
    0 when every money rule holds; this is the contingency the plan would have needed."""
    years = v.years
    national = 0.0
    for i, y in enumerate(years):
        f = plan.flex.get(y, 0.0)
        for pot, sign in (("capital", 1.0), ("revenue", -1.0)):
            c_in = plan.carry.get((pot, years[i - 1]), 0.0) if i else 0.0
            c_out = plan.carry.get((pot, y), 0.0)
            national += max(0.0, acc.pot_spend[(pot, y)] + sign * f + c_out - v.envelope[(pot, y)] - c_in)
    local = sum(max(0.0, used - v.local_capital[s]) for (s, _), used in acc.local_capital.items())
    local += sum(max(0.0, used - v.headroom[s]) for (s, _), used in acc.headroom_use.items())
    return round(national, 6), round(local, 6)


def check_plan(scenario: Scenario, plan: Decisions) -> PlanCheck:
    """Re-check a plan's decisions under ``scenario`` with the audit (and say how much money it
    would need beyond its limits). When the policy lets money move (capital-to-revenue or
    carry-over) and the plan's own transfers no longer fit, the transfers are re-optimised with
    every project decision fixed (an LP) before calling it infeasible."""
    v = view(scenario)
    report = audit(scenario, plan, v=v)
    if report.ok:
        return PlanCheck(True, report.objective)
    national, local = overspend(scenario, plan, report.accounts, v) if report.accounts else (math.nan, math.nan)
    budget = scenario.policy.budget
    if budget.capital_to_revenue > 0 or budget.carry_over > 0:
        form = formulate(scenario)
        x0 = encode(form, plan)
        m = form.model
        fixed = dataclasses.replace(m, col_lo=np.where(m.integrality, x0, m.col_lo),
                                    col_hi=np.where(m.integrality, x0, m.col_hi))
        var = solve_variant(scenario, form, fixed)
        if var.found and var.decisions is not None and var.decisions.starts == plan.starts:
            return PlanCheck(True, var.value)
    return PlanCheck(False, float("nan"), report.violations[0], national, local)


@dataclass
class SampleTask:
    """One sample to solve (picklable)."""

    scenario: Scenario
    draw: Draw
    plans: list[Decisions]
    start: Decisions | None = None


@dataclass
class SampleResult:
    """One sample's optimum and the given plans re-checked under it (picklable)."""

    index: int
    point: Point
    checks: list[PlanCheck]
    cost_factor: float
    benefit_factor: float
    weights: dict[str, float] = field(default_factory=dict)


def run_sample(task: SampleTask) -> SampleResult:
    """Build sample ``task.draw`` of the scenario, solve it and re-check ``task.plans`` under it
    (module level so that a process pool can run it)."""
    base = task.scenario
    s = apply_draw(base, task.draw)
    point = variant_point(solve_variant(s, start=task.start), f"sample {task.draw.index}")
    checks = [check_plan(s, plan) for plan in task.plans]
    nominal_cost = float(base.instance.costs[["capital", "revenue"]].to_numpy().sum())
    cost = float(s.instance.costs[["capital", "revenue"]].to_numpy().sum())
    benefit0 = float(base.instance.projects["benefit"].sum())
    benefit = float(s.instance.projects["benefit"].sum())
    return SampleResult(index=task.draw.index, point=point, checks=checks,
                        cost_factor=cost / nominal_cost if nominal_cost else 1.0,
                        benefit_factor=benefit / benefit0 if benefit0 else 1.0, weights=dict(task.draw.weights))


def run_samples(scenario: Scenario, draws: list[Draw], plans: list[Decisions], *, start: Decisions | None,
                workers: int = 1, label: str = "samples") -> list[SampleResult]:
    """Every sample through the executor (serial or a local process pool), in sample order."""
    tasks = [SampleTask(scenario=scenario, draw=d, plans=plans, start=start) for d in draws]
    return run_all(run_sample, tasks, workers=workers, label=label)


# --------------------------------------------------------------------------------------------
# tables shared with the alternatives analysis


def hamming(a: set[str] | dict[str, int], b: set[str] | dict[str, int]) -> int:
    """Projects funded by exactly one of two plans."""
    return len(set(a) ^ set(b))


def core_table(scenario: Scenario, results: list[SampleResult], nominal: Decisions) -> pd.DataFrame:
    """Per project: core index over the samples that have a plan, 95% Wilson interval, class."""
    pr = scenario.instance.projects
    systems = project_systems(scenario)
    ok = [r for r in results if r.point.feasible]
    n = len(ok)
    counts = Counter(p for r in ok for p in r.point.starts)
    rows = []
    for i, p in enumerate(pr["project_id"]):
        k = counts.get(p, 0)
        lo, hi = wilson(k, n)
        cls = "" if n == 0 else "core" if k == n else "exterior" if k == 0 else "borderline"
        rows.append({
            "project_id": p, "name": pr["name"].iat[i], "kind": pr["kind"].iat[i] or "",
            "system_id": systems.iat[i], "nominal_funded": p in nominal.starts,
            "nominal_start": nominal.starts.get(p), "core_index": k / n if n else float("nan"),
            "ci_low": lo, "ci_high": hi, "funded_in": k, "samples": n, "class": cls,
        })
    df = pd.DataFrame(rows)
    df["nominal_start"] = df["nominal_start"].astype("Int64")
    df = df.sort_values(["core_index", "nominal_funded", "project_id"], ascending=[False, False, True],
                        kind="mergesort").reset_index(drop=True)
    return df


def regret_band(point: Point, check: PlanCheck) -> tuple[float, float, float]:
    """(regret, low, high) of a fixed plan against a sample optimum; NaN where either is missing.

    The plan's value is exact; the optimum lies in [objective, bound] and is at least the plan's
    value, so regret ∈ [max(0, objective − value), max(0, bound − value)]."""
    if not (point.feasible and check.feasible):
        return float("nan"), float("nan"), float("nan")
    low = max(0.0, point.objective - check.value)
    high = max(low, point.bound - check.value)
    return low, low, high


def clean_float(x: float) -> float:
    """Round tiny solver noise away so identical runs print identical tables."""
    return float(round(x, 9)) if math.isfinite(x) else x


def sample_table(results: list[SampleResult], nominal: Decisions, plan_index: int = 0) -> pd.DataFrame:
    """Per sample: the sample optimum, and the nominal plan's feasibility, value and regret band."""
    rows = []
    for r in results:
        pt, chk = r.point, r.checks[plan_index]
        reg, lo, hi = regret_band(pt, chk)
        row = {
            "sample": r.index, "feasible": pt.feasible, "status": pt.status, "objective": clean_float(pt.objective),
            "bound": clean_float(pt.bound), "gap": clean_float(pt.gap),
            "funded": len(pt.starts) if pt.feasible else pd.NA,
            "hamming_to_nominal": hamming(pt.starts, nominal.starts) if pt.feasible else pd.NA,
            "nominal_feasible": chk.feasible, "nominal_value": clean_float(chk.value),
            "regret": clean_float(reg), "regret_low": clean_float(lo), "regret_high": clean_float(hi),
            "regret_certain": bool(lo > TOL) if math.isfinite(lo) else pd.NA,
            "nominal_overspend_national": chk.overspend_national, "nominal_overspend_local": chk.overspend_local,
            "nominal_violation": chk.violation,
            "cost_factor": round(r.cost_factor, 6), "benefit_factor": round(r.benefit_factor, 6),
        }
        row.update({f"weight_{c}": r.weights[c] for c in CATEGORIES})
        rows.append(row)
    df = pd.DataFrame(rows)
    for col in ("funded", "hamming_to_nominal"):
        df[col] = df[col].astype("Int64")
    df["regret_certain"] = df["regret_certain"].astype("boolean")
    return df


def _n(count: int, noun: str) -> str:
    """'1 sample', '2 samples'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.1f}%"


def solver_figures(outcome: Outcome) -> dict[str, object]:
    """The nominal solve's figures for summary.json (no timings)."""
    return {
        "backend": outcome.backend, "solver_version": outcome.solver_version,
        "options": {k: v for k, v in outcome.options.items() if k != "verbose"},
        "status": outcome.status.value, "termination": outcome.termination.value,
        "objective": outcome.objective, "bound": outcome.bound, "gap": outcome.gap,
        "model_size": outcome.model_size, "funded": len(outcome.decisions.starts),
    }


def sample_figures(results: list[SampleResult]) -> dict[str, object]:
    """Solver figures over the sample solves (no timings)."""
    gaps = [r.point.gap for r in results if r.point.feasible]
    return {
        "status_counts": dict(sorted(Counter(r.point.status for r in results).items())),
        "max_gap": max(gaps) if gaps else None,
        "mean_gap": float(np.mean(gaps)) if gaps else None,
    }


def sampling_parameters(samples: int, seed: int, cost_sigma: dict[str, float], benefit_range: tuple[float, float],
                        weight_ranges: dict[str, tuple[float, float]]) -> dict[str, object]:
    """The sampling design for summary.json."""
    return {
        "samples": samples, "seed": seed,
        "seeding": f"numpy default_rng({seed}).spawn({samples}); sample i uses child i (spawn key (i,))",
        "cost_model": "capital and revenue x exp(sigma_kind * Z), Z ~ N(0,1) per project; rounded to 3 decimals",
        "cost_sigma": cost_sigma,
        "benefit_model": "benefit x U(low, high) per project; rounded to 6 decimals",
        "benefit_range": list(benefit_range),
        "weight_model": "category weight ~ U(low, high) per sample (RPM-style intervals)",
        "weight_ranges": {c: list(v) for c, v in weight_ranges.items()},
    }


def overspend_quantiles(values: pd.Series) -> dict[str, float]:
    """Median, 80th and 90th percentile and maximum of a plan's overspend over the samples (£m)."""
    x = values.to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    if not x.size:
        return {}
    q = np.percentile(x, [50, 80, 90])
    return {"median": round(float(q[0]), 6), "p80": round(float(q[1]), 6), "p90": round(float(q[2]), 6),
            "max": round(float(x.max()), 6)}


def describe_sampling(par: dict) -> str:
    """One line describing the sampled uncertainty of ``sampling_parameters``."""
    sig = [v for v in par["cost_sigma"].values()]
    cost = f"costs x lognormal overrun, sigma {min(sig):g}-{max(sig):g} by kind" if sig and max(sig) > 0 \
        else "costs fixed"
    lo, hi = par["benefit_range"]
    benefit = f"benefits x U({lo:g}, {hi:g})" if hi > lo else ("benefits fixed" if lo == 1 else f"benefits x {lo:g}")
    wide = [c for c, (a, b) in par["weight_ranges"].items() if b > a]
    weights = f"category weights in intervals ({', '.join(wide)})" if wide else "category weights fixed"
    return f"{cost}; {benefit}; {weights}"


# --------------------------------------------------------------------------------------------
# the analysis


def robustness(scenario: Scenario, *, samples: int = 100, seed: int = 0, workers: int = 1,
               cost_sigma: dict[str, float] | None = None, benefit_range: tuple[float, float] = (0.8, 1.2),
               weight_ranges: dict | None = None, **solver: object) -> Analysis:
    """Sample uncertain costs, benefits and category weights; re-solve each sample; report each
    project's core index (with a 95% Wilson interval) and the nominal plan's feasibility rate and
    regret under the samples.

    ``cost_sigma``: lognormal σ by project kind (``None``: ``DEFAULT_COST_SIGMA``; ``"*"`` for
    other kinds). ``benefit_range``: multiplicative uniform interval on benefits.
    ``weight_ranges``: ``{category: (low, high)}`` for the need category weights (``None``: ±20%
    of the policy's). ``**solver``: ``backend``, ``time_limit``, ``mip_gap``, ``threads``,
    ``seed`` (solver seed) as in ``solver.api.solve``. Samples run on ``workers`` processes;
    results do not depend on ``workers``. Raises ``InfeasibleError`` if the nominal scenario is.

    Tables: ``projects`` (core index, interval, class, nominal start) and ``samples`` (per-sample
    optimum, gap, nominal feasibility and value, regret band, drawn factors).
    """
    t_start = time.perf_counter()
    if samples < 1:
        raise InputError(None, f"samples must be >= 1 (got {samples})")
    if workers < 1:
        raise InputError(None, f"workers must be >= 1 (got {workers})")
    sigma = resolve_cost_sigma(cost_sigma)
    brange = check_benefit_range(benefit_range)
    wranges = resolve_weight_ranges(scenario, weight_ranges)
    scenario = scenario.with_solver(**solver)
    nominal = solve(scenario)
    t_nominal = time.perf_counter() - t_start
    draws = draw_samples(scenario, samples, seed, sigma, brange, wranges)
    results = run_samples(scenario, draws, [nominal.decisions], start=nominal.decisions, workers=workers,
                          label="robustness samples")
    projects = core_table(scenario, results, nominal.decisions)
    table = sample_table(results, nominal.decisions)

    n_feasible = int(table["nominal_feasible"].sum())
    rate_lo, rate_hi = wilson(n_feasible, samples)
    fits = table[table["nominal_feasible"] & table["feasible"]]
    regret = {
        "samples": len(fits),
        "mean": float(fits["regret"].mean()) if len(fits) else None,
        "mean_low": float(fits["regret_low"].mean()) if len(fits) else None,
        "mean_high": float(fits["regret_high"].mean()) if len(fits) else None,
        "max": float(fits["regret"].max()) if len(fits) else None,
        "certain": int(fits["regret_certain"].sum()) if len(fits) else 0,
    }
    need = {pot: overspend_quantiles(table[f"nominal_overspend_{pot}"]) for pot in ("national", "local")}
    classes = projects["class"].value_counts().to_dict()
    summary: dict[str, object] = {
        "analysis": "robustness",
        "scenario": scenario.name,
        "parameters": sampling_parameters(samples, seed, sigma, brange, wranges),
        "nominal": solver_figures(nominal),
        "sample_solves": sample_figures(results),
        "results": {
            "samples_with_plan": int(table["feasible"].sum()),
            "nominal_feasible": n_feasible,
            "nominal_feasibility_rate": n_feasible / samples,
            "nominal_feasibility_ci95": [rate_lo, rate_hi],
            "regret": regret,
            "overspend": need,
            "core": int(classes.get("core", 0)), "borderline": int(classes.get("borderline", 0)),
            "exterior": int(classes.get("exterior", 0)),
        },
        "timing": {
            "wall_seconds": time.perf_counter() - t_start, "nominal_seconds": t_nominal,
            "sample_solve_seconds": sum(r.point.solve_seconds for r in results), "workers": workers,
        },
    }
    text = _robust_text(scenario, nominal, projects, table, summary)
    return Analysis(name="robustness", tables={"projects": projects, "samples": table}, summary=summary, text=text)


def _robust_text(scenario: Scenario, nominal: Outcome, projects: pd.DataFrame, table: pd.DataFrame,
                 summary: dict) -> str:
    res = summary["results"]
    par = summary["parameters"]
    n = par["samples"]
    bound = nominal.bound if nominal.bound is not None else nominal.objective
    lines = [
        f"Robustness of {scenario.name}: {n} samples, seed {par['seed']} ({describe_sampling(par)})",
        f"Nominal plan: {len(nominal.decisions.starts)} projects, objective {nominal.objective:,.2f} "
        f"(bound {bound:,.2f}, gap {_pct(nominal.gap or 0)})",
    ]
    lo, hi = res["nominal_feasibility_ci95"]
    lines.append(f"Still fits every rule in {res['nominal_feasible']}/{n} samples: "
                 f"{_pct(res['nominal_feasibility_rate'])} (95% CI {_pct(lo)}-{_pct(hi)})")
    broken = table.loc[~table["nominal_feasible"], "nominal_violation"]
    if len(broken):
        first = Counter(re.sub(r"^(\d{4})\b", lambda y: fy(int(y.group(1))), v.split(":")[0])
                        for v in broken).most_common(3)
        lines.append("  breaks first at: " + ", ".join(f"{k} ({_n(c, 'sample')})" for k, c in first))
    for pot, what in (("national", "the national pots"), ("local", "systems' local limits")):
        q = res["overspend"][pot]
        if q and q["max"] > 0:
            lines.append(f"  money it needs beyond {what} (sum over years): median £{q['median']:,.1f}m, "
                         f"80th percentile £{q['p80']:,.1f}m, 90th £{q['p90']:,.1f}m, max £{q['max']:,.1f}m")
    reg = res["regret"]
    if reg["samples"]:
        lines.append(f"Regret where it fits ({_n(reg['samples'], 'sample')}): mean {reg['mean']:,.2f} points "
                     f"(gap band {reg['mean_low']:,.2f}-{reg['mean_high']:,.2f}), max {reg['max']:,.2f}; "
                     f"certainly > 0 in {_n(reg['certain'], 'sample')}")
    lines.append(f"Samples with a plan: {res['samples_with_plan']}/{n}; sample gaps up to "
                 f"{_pct(summary['sample_solves']['max_gap'] or 0)}")
    lines.append(f"Core index (share of sample optima funding a project): {res['core']} core, "
                 f"{res['borderline']} borderline, {res['exterior']} exterior")
    weak = projects[projects["nominal_funded"] & (projects["class"] != "core")].sort_values(
        ["core_index", "project_id"], kind="mergesort").head(10)
    if len(weak):
        lines.append("Least robust funded projects (the nominal plan funds them, samples often do not):")
        lines += [f"  {r.project_id:<28} {r.core_index:5.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]  {r.name}"
                  for r in weak.itertuples()]
    strong = projects[~projects["nominal_funded"] & (projects["class"] != "exterior")].head(10)
    if len(strong):
        lines.append("Strongest unfunded projects (left out of the nominal plan, funded in some samples):")
        lines += [f"  {r.project_id:<28} {r.core_index:5.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]  {r.name}"
                  for r in strong.itertuples()]
    return "\n".join(lines)
