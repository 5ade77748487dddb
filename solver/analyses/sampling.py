r"""Sampled uncertainty shared by ``robust`` and ``alternatives``: the sampling settings, the draws,
each sample solved with given plans re-checked under it, and the tables read off the samples.

A *sample* is the scenario under one ``solver.data.variants.Sample``, drawn deterministically from
``numpy.random.default_rng(seed).spawn(samples)`` (child ``i`` builds sample ``i``, so results do
not depend on how many workers run them):

- **costs** (``costs.csv`` capital and revenue, every profile year) × a lognormal overrun factor
  per project, :math:`\exp(\sigma_{\mathrm{kind}} Z)`, median 1 and mean :math:`e^{\sigma^2/2} \ge 1`
  (skewed towards overruns), σ from ``DEFAULT_COST_SIGMA`` by project kind; money is rounded back to
  £k (3 decimals) so every table rule still holds. Run costs (``projects.csv``) are not sampled.
- **benefits** × a uniform factor in ``benefit_range`` per project (rounded to 6 decimals);
- **category weights** drawn uniformly from an interval per maturity category (Robust Portfolio
  Modelling style; default ±20% of the policy's weights, ``DEFAULT_WEIGHT_SPREAD``).

A plan is *re-checked* under a sample by the audit (does it still fit every rule, and what is it
worth); when the policy lets money move (capital-to-revenue or carry-over) and the plan's own
transfers no longer fit, the transfers are re-optimised with every project decision fixed (one LP,
solved through the engine like every other solve) before calling it infeasible.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from solver.analyses.engine import Task, analysis_context, bound_of, gap_of, raise_failures, solve_many
from solver.data.scenario import Scenario
from solver.data.variants import Sample
from solver.errors import InputError
from solver.mip.arrays import MILP
from solver.mip.formulation import Formulation, project_systems
from solver.pipeline.accounts import Accounts, View, view
from solver.pipeline.audit import audit
from solver.pipeline.decisions import Decisions
from solver.pipeline.encoding import encode
from solver.pipeline.outcome import Outcome
from solver.run.context import Context, Failed

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

#: Default multiplicative interval on benefits.
DEFAULT_BENEFIT_RANGE = (0.8, 1.2)

#: Two-sided 95% normal quantile for Wilson intervals.
Z95 = 1.959963984540054

CATEGORIES = ("0", "1", "2", "3")
WEIGHT_DECIMALS = 6
TOL = 1e-6


# --------------------------------------------------------------------------------------------
# statistics and small helpers


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


def hamming(a: set[str] | Mapping[str, int], b: set[str] | Mapping[str, int]) -> int:
    """Projects funded by exactly one of two plans."""
    return len(set(a) ^ set(b))


def clean_float(x: float) -> float:
    """Round tiny solver noise away so identical runs print identical tables."""
    return float(round(x, 9)) if math.isfinite(x) else x


# --------------------------------------------------------------------------------------------
# the settings


@dataclass(frozen=True)
class Sampling:
    """What is uncertain and how much: lognormal cost σ by project kind, the benefit interval and the
    interval of each category weight — validated once, shared by every analysis that samples."""

    cost_sigma: dict[str, float]
    benefit_range: tuple[float, float]
    weight_ranges: dict[str, tuple[float, float]]

    @staticmethod
    def of(scenario: Scenario, cost_sigma: Mapping[str, float] | None = None,
           benefit_range: Sequence[float] = DEFAULT_BENEFIT_RANGE,
           weight_ranges: Mapping | None = None) -> Sampling:
        """The validated settings (``InputError`` on a bad value).

        ``cost_sigma``: ``None`` → ``DEFAULT_COST_SIGMA``; a dict is used as given (kinds not in it
        take its ``"*"`` entry, else 0: ``{}`` means no cost uncertainty). ``benefit_range``:
        ``(low, high)`` with 0 <= low <= high. ``weight_ranges``: ``None`` → nominal × [0.8, 1.2];
        a dict (keys 0-3) is used as given, categories not in it keep their nominal weight.
        """
        return Sampling(_cost_sigma(cost_sigma), _benefit_range(benefit_range),
                        _weight_ranges(scenario, weight_ranges))

    def draw(self, scenario: Scenario, samples: int, seed: int) -> list[Sample]:
        """The factors of every sample: child ``i`` of ``default_rng(seed).spawn(samples)`` draws, in
        this order, one standard normal per project (sorted by id), one uniform per project and one
        uniform per category 0-3 — always all of them, so changing one parameter never shifts the
        random numbers another uses."""
        pr = scenario.instance.projects.sort_values("project_id")
        ids = [str(p) for p in pr["project_id"]]
        kinds = [k if isinstance(k, str) else "" for k in pr["kind"]]
        default = self.cost_sigma.get("*", 0.0)
        sigma = np.array([self.cost_sigma.get(k, default) for k in kinds])
        b_lo, b_hi = self.benefit_range
        w_lo = np.array([self.weight_ranges[c][0] for c in CATEGORIES])
        w_hi = np.array([self.weight_ranges[c][1] for c in CATEGORIES])
        out = []
        for i, rng in enumerate(np.random.default_rng(seed).spawn(samples)):
            z = rng.standard_normal(len(ids))
            u = rng.random(len(ids))
            v = rng.random(len(CATEGORIES))
            cost = np.exp(sigma * z)
            benefit = b_lo + (b_hi - b_lo) * u
            weights = np.round(w_lo + (w_hi - w_lo) * v, WEIGHT_DECIMALS)
            out.append(Sample(index=i, cost_factor=tuple(zip(ids, cost.tolist())),
                              benefit_factor=tuple(zip(ids, benefit.tolist())),
                              weights=tuple(zip(CATEGORIES, weights.tolist()))))
        return out

    def parameters(self, samples: int, seed: int) -> dict[str, object]:
        """The sampling design for summary.json."""
        return {
            "samples": samples, "seed": seed,
            "seeding": f"numpy default_rng({seed}).spawn({samples}); sample i uses child i (spawn key (i,))",
            "cost_model": "capital and revenue x exp(sigma_kind * Z), Z ~ N(0,1) per project; rounded to 3 decimals",
            "cost_sigma": dict(self.cost_sigma),
            "benefit_model": "benefit x U(low, high) per project; rounded to 6 decimals",
            "benefit_range": list(self.benefit_range),
            "weight_model": "category weight ~ U(low, high) per sample (RPM-style intervals)",
            "weight_ranges": {c: list(v) for c, v in self.weight_ranges.items()},
        }


def _cost_sigma(cost_sigma: Mapping[str, float] | None) -> dict[str, float]:
    table = dict(DEFAULT_COST_SIGMA if cost_sigma is None else cost_sigma)
    for kind, s in table.items():
        if not isinstance(s, int | float) or not math.isfinite(s) or s < 0:
            raise InputError(None, f"cost sigma for kind '{kind}' must be a finite number >= 0 (got {s!r})")
    return {str(k): float(v) for k, v in sorted(table.items())}


def _benefit_range(benefit_range: Sequence[float]) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in benefit_range)
    except (TypeError, ValueError):
        raise InputError(None, f"benefit range must be (low, high) (got {benefit_range!r})") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0 or lo > hi:
        raise InputError(None, f"benefit range must have 0 <= low <= high (got {benefit_range!r})")
    return lo, hi


def _weight_ranges(scenario: Scenario, weight_ranges: Mapping | None) -> dict[str, tuple[float, float]]:
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


# --------------------------------------------------------------------------------------------
# a fixed plan under one sample


@dataclass
class PlanCheck:
    """A fixed plan under one sample: does it still pass the audit, and what is it worth."""

    feasible: bool
    value: float = float("nan")
    violation: str = ""
    overspend_national: float = 0.0   # £m over the national pots, summed over years and pots
    overspend_local: float = 0.0      # £m over systems' local capital and revenue headroom
    retry: bool = False               # money may move: re-optimise the transfers before calling it infeasible


def overspend(plan: Decisions, acc: Accounts, v: View) -> tuple[float, float]:
    """Money a plan needs beyond its limits, in £m: (national pots, local limits), each summed over
    years (and systems), with the plan's own transfers and carry-over. 0 when every money rule
    holds; this is the contingency the plan would have needed."""
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


def audit_plan(scenario: Scenario, plan: Decisions, v: View | None = None) -> PlanCheck:
    """Re-check a plan's decisions under ``scenario`` with the audit (no solve), and say how much
    money it would need beyond its limits. ``retry`` is set when the policy lets money move and
    the plan fails: its transfers may still be re-optimised (``FixProjects``)."""
    v = v or view(scenario)
    report = audit(scenario, plan, v=v)
    if report.ok:
        return PlanCheck(True, report.objective)
    national, local = overspend(plan, report.accounts, v) if report.accounts else (math.nan, math.nan)
    budget = scenario.policy.budget
    return PlanCheck(False, float("nan"), report.violations[0], national, local,
                     retry=budget.capital_to_revenue > 0 or budget.carry_over > 0)


@dataclass(frozen=True)
class FixProjects:
    """Extension: every project decision of ``plan`` fixed (integer columns at the plan's values),
    so that only the money moves (capital-to-revenue, carry-over) are optimised — an LP."""

    plan: Decisions

    def __call__(self, form: Formulation) -> MILP:
        """The formulation's model with its integer columns fixed to the plan."""
        m = form.model
        x0 = encode(form, self.plan)
        return dataclasses.replace(m, col_lo=np.where(m.integrality, x0, m.col_lo),
                                   col_hi=np.where(m.integrality, x0, m.col_hi))


def check_plans(scenario: Scenario, plans: Sequence[Decisions], context: Context | None = None) -> list[PlanCheck]:
    """``plans`` re-checked under ``scenario``: the audit, then (where money may move and the plan
    failed) its transfers re-optimised with every project decision fixed, solved through the engine."""
    v = view(scenario)
    checks = [[audit_plan(scenario, plan, v) for plan in plans]]
    return _money_moves(checks, [Task(scenario)], list(plans), context)[0]


# --------------------------------------------------------------------------------------------
# every sample: solve it, re-check given plans under it


@dataclass
class _Audits:
    """Plans audited under one sample (a picklable job for the context)."""

    task: Task
    plans: list[Decisions]


def _audit_sample(job: _Audits) -> list[PlanCheck]:
    s = job.task.resolved()
    v = view(s)
    return [audit_plan(s, plan, v) for plan in job.plans]


def _money_moves(checks: list[list[PlanCheck]], tasks: Sequence[Task], plans: list[Decisions],
                 context: Context | None) -> list[list[PlanCheck]]:
    """Re-optimise the money moves of every failed check marked ``retry`` (one LP each, every project
    fixed, solved with ``solve_many``): a plan whose projects fit once its transfers move counts as
    feasible, with the LP's value."""
    todo = [(i, j) for i, row in enumerate(checks) for j, c in enumerate(row) if c.retry]
    if not todo:
        return checks
    lps = [dataclasses.replace(tasks[i], label=f"{tasks[i].label} plan {j} money moves", start=None,
                               extend=FixProjects(plans[j])) for i, j in todo]
    outs = solve_many(lps, context, label="re-optimising money moves")
    raise_failures(outs)
    for (i, j), out in zip(todo, outs):
        if out.has_plan and out.decisions is not None and out.decisions.starts == plans[j].starts:
            checks[i][j] = PlanCheck(True, out.objective)
        else:
            checks[i][j] = dataclasses.replace(checks[i][j], retry=False)
    return checks


@dataclass
class SampleResult:
    """One sample's optimum (``outcome``) and the given plans re-checked under it."""

    index: int
    outcome: Outcome
    checks: list[PlanCheck]
    cost_factor: float
    benefit_factor: float
    weights: dict[str, float] = field(default_factory=dict)


def run_samples(scenario: Scenario, samples: Sequence[Sample], plans: list[Decisions], *,
                start: Decisions | None, context: Context | None = None,
                label: str = "samples") -> list[SampleResult]:
    """Every sample solved (warm-started from ``start``) with ``solve_many`` on the context, and
    ``plans`` re-checked under each (audits on the context, then ``_money_moves``); in sample
    order. Ctrl-C stops the whole run; a sample whose solve fails (backend error, audit failure)
    stops it with that error."""
    tasks = [Task(scenario, (s,), f"sample {s.index}", start=start) for s in samples]
    with analysis_context(context) as ctx:
        with ctx.stage(label, len(tasks)):        # one progress line: the sample solves
            outs = solve_many(tasks, ctx, label=label)
            raise_failures(outs)
            audited = ctx.map(_audit_sample, [_Audits(t, plans) for t in tasks], label=label,
                              weights=[0] * len(tasks)) if plans else [[] for _ in tasks]
        for r in audited:
            if isinstance(r, Failed):
                raise r.error
        checks = _money_moves([list(r) for r in audited], tasks, plans, ctx)  # type: ignore[arg-type]
    nominal_cost = float(scenario.instance.costs[["capital", "revenue"]].to_numpy().sum())
    benefit0 = float(scenario.instance.projects["benefit"].sum())
    out = []
    for s, o, chk in zip(samples, outs, checks):
        inst = o.scenario.instance
        cost = float(inst.costs[["capital", "revenue"]].to_numpy().sum())
        benefit = float(inst.projects["benefit"].sum())
        out.append(SampleResult(index=s.index, outcome=o, checks=chk,
                                cost_factor=cost / nominal_cost if nominal_cost else 1.0,
                                benefit_factor=benefit / benefit0 if benefit0 else 1.0, weights=dict(s.weights)))
    return out


# --------------------------------------------------------------------------------------------
# tables and figures read off the samples


def core_table(scenario: Scenario, results: Sequence[SampleResult], nominal: Decisions) -> pd.DataFrame:
    """Per project: core index over the samples that have a plan, 95% Wilson interval, class."""
    pr = scenario.instance.projects
    systems = project_systems(scenario)
    ok = [r for r in results if r.outcome.has_plan]
    n = len(ok)
    counts = Counter(p for r in ok for p in r.outcome.funded)
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
    return df.sort_values(["core_index", "nominal_funded", "project_id"], ascending=[False, False, True],
                          kind="mergesort").reset_index(drop=True)


def regret_band(outcome: Outcome, check: PlanCheck) -> tuple[float, float, float]:
    """(regret, low, high) of a fixed plan against a sample optimum; NaN where either is missing.

    The plan's value is exact; the optimum lies in [objective, bound] and is at least the plan's
    value, so regret ∈ [max(0, objective − value), max(0, bound − value)]."""
    if not (outcome.has_plan and check.feasible):
        return float("nan"), float("nan"), float("nan")
    low = max(0.0, outcome.objective - check.value)
    high = max(low, bound_of(outcome) - check.value)
    return low, low, high


def sample_figures(results: Sequence[SampleResult]) -> dict[str, object]:
    """Solver figures over the sample solves (no timings)."""
    gaps = [gap_of(r.outcome) for r in results if r.outcome.has_plan]
    return {
        "status_counts": dict(sorted(Counter(r.outcome.status.value for r in results).items())),
        "max_gap": max(gaps) if gaps else None,
        "mean_gap": float(np.mean(gaps)) if gaps else None,
    }
