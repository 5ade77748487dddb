"""Borderline thresholds: how far a marginal project's benefit or cost must move before the
optimal plan changes its mind about it.

**Who is borderline.** Every project that can change status (not mandatory, not committed) is
ranked by *value density*: its discounted need-weighted benefit (``option_value`` at its
planned start, or at its earliest start when unfunded) per £m of national draw (the
non-matched share of its capital and revenue profile). The K funded projects with the lowest
density are the closest to dropping out, the K unfunded ones with the highest the closest to
coming in. (Density is a heuristic for *which* projects to examine; the thresholds themselves
come from re-solves.)

**What a probe decides.** Scaling project p's benefit or cost profile by a factor f only changes
plans that fund p. So the best plan *without* p, ``z_out``, is one
solve per project whatever f is (p forced out with ``variants.ForceOut``; in: ``ForceIn`` after
``ScaleBenefit``/``ScaleCost``), and the question "is p funded at f?" is the sign of

    Δ(f) = z_in(f) − z_out,        z_in(f) = best plan funding p (p made mandatory) at f.

p is funded when Δ > 0 (every optimal plan funds it); a tie (|Δ| within the engine's tolerance,
2·10⁻⁶ relative) counts as not funded. Both sides are MIP solves, so Δ is only known within the
band their gaps allow, ``[z_in − bound_out, bound_in − z_out]`` (the engine's ``compare``). A
probe whose band contains 0 is re-solved tighter by the engine's ``refine``, in stages — gap
0.01% (``tighten_gaps``), then proven optimality (gap 0), each within ``proof_time_limit`` — the
out side first (its plan and bound then serve every later probe of the project), then the in
side. A stage whose re-solve stops at its time limit is not tried again for that project (it is
harder still at later probes; on England gap 0 is never reached in 60 s, and each attempt cost a
minute). If the band still contains 0 the probe is *undecided* and the search works around it:
the result is then a range ``[same, flipped]`` inside which the solver gaps
cannot say, never a threshold ranked on noise (refinement stops after ``max_undecided`` such
probes, each having cost a proof attempt). A project whose out-problem is infeasible (a mandatory
or hard rule needs it) is reported as required. A project whose status is already undecided at
factor 1 gets no search; since a plan's objective is linear in one project's benefit, the
factor-1 solves alone still prove it out below and in above two benefit factors, which are
reported.

**Who is examined.** Unfunded projects are screened in rank order with one feasibility solve
each (forced in at the lowest cost factor, first plan found): one that no plan can fund even
then (a platform its system may not adopt, a dependency that cannot start in time) cannot be
brought in by any benefit or cost change in the brackets and gives its place to the next.

**The search.** For a funded project: benefit × f for f in [0, 1] (decrease) and cost profile ×
f for f in [1, 16] (increase); for an unfunded one the reverse directions. The far end is
probed first (same status there → "none within bracket"); then the bracket between the last
factor with the status unchanged and the first with it flipped is bisected (geometric midpoint,
arithmetic from 0) until ``hi − lo <= tolerance × hi`` (or ``hi <= tolerance``). Δ(f) is
monotone in the benefit factor; in the cost factor it is too unless a rule rewards spending
(fair-share floors, spend-based shares), in which case the search finds *a* flip, not
necessarily the first. Costs are scaled row by row, capital and revenue × f rounded to £k (3
decimals) as the tables require; run costs (after go-live) are not scaled.

Each project's whole search is one job on the analysis's ``Context`` (independent, picklable), so
``workers`` processes search different projects at once; every solve in it is an engine ``Task``
run by ``solve_many`` (Ctrl-C stops the whole analysis; infeasible is a status, never explained).
Results are identical for any number of workers (timings apart, and apart from solves that stop
at their time limit).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from solver.analyses.engine import (
    PROOF_RTOL,
    Analysis,
    Band,
    Context,
    Task,
    analysis_context,
    base_outcome,
    bound_of,
    compare,
    gap_of,
    header,
    jsonable,
    proven,
    raise_failures,
    refine,
    require_optimising,
    solve_many,
    solve_one,
    solve_record,
    tight,
)
from solver.backends.result import SolutionStatus
from solver.data.scenario import Scenario
from solver.data.variants import ForceIn, ForceOut, ScaleBenefit, ScaleCost
from solver.pipeline.accounts import best_values, need_weight_of, option_value
from solver.pipeline.decisions import Decisions
from solver.pipeline.outcome import Outcome
from solver.run.context import Failed

BENEFIT, COST = "benefit", "cost"
DECREASE, INCREASE = "decrease", "increase"
#: Default search brackets for the factor: decreases in [0, 1], increases in [1, 16].
DECREASE_BRACKET = (0.0, 1.0)
INCREASE_BRACKET = (1.0, 16.0)
#: Objective differences within this relative amount are ties: the engine's tolerance (``compare``).
TIE_RTOL = 2 * PROOF_RTOL
DEFAULT_TIGHTEN_GAPS: tuple[float, ...] = (1e-4,)
"""Re-solve stage before the proof: 0.01% is reached in ~6 s on England and narrows a band ten-fold."""

THRESHOLD_COLUMNS = [
    "group", "rank", "project_id", "name", "system_id", "baseline_start", "value", "national_draw",
    "value_density", "status", "measure", "direction", "bracket_low", "bracket_high", "result", "factor",
    "factor_same", "undecided_low", "undecided_high", "current", "at_threshold", "change", "unit", "resolves",
    "project_resolves", "note",
]
PROBE_COLUMNS = [
    "project_id", "seq", "measure", "factor", "side", "mip_gap", "proof", "feasible", "status", "objective",
    "bound", "gap", "difference", "difference_low", "difference_high", "funded",
]
MARGIN_COLUMNS = [
    "project_id", "name", "system_id", "status", "baseline_start", "value", "national_draw", "value_density",
    "margin_rank", "screen", "selected",
]

# --------------------------------------------------------------------------- ranking

def eligible(scenario: Scenario) -> list[str]:
    """Projects that can change status: not mandatory (when the rule is on), not committed (unless
    commitments are ignored)."""
    pol = scenario.policy
    out = []
    for p, mand, c in scenario.instance.projects[["project_id", "mandatory", "committed_start"]].itertuples(
            index=False):
        if pol.mandatory.enabled and bool(mand):
            continue
        if pol.commitments.mode != "ignore" and c == c and c is not None:
            continue
        out.append(str(p))
    return out


def margin_table(scenario: Scenario, starts: dict[str, int]) -> pd.DataFrame:
    """Eligible projects with their value density (value per £m of national draw) and rank:
    funded ones ascending (closest to dropping out first), unfunded ones descending (closest to
    coming in first). ``screen`` and ``selected`` are left for ``thresholds`` to fill."""
    inst, pol = scenario.instance, scenario.policy
    weights = need_weight_of(scenario)
    best = best_values(scenario)
    pr = inst.projects.set_index("project_id")
    co = inst.costs
    gross = (co["capital"] + co["revenue"]).groupby(co["project_id"]).sum()
    psys = dict(zip(inst.projects["project_id"], inst.projects["system_id"]))
    org_sys = dict(zip(inst.organisations["org_id"], inst.organisations["system_id"]))
    rows = []
    for p in eligible(scenario):
        m = float(pr.at[p, "match_share"]) if pol.match_funding.enabled else 0.0
        draw = round((1.0 - m) * float(gross.get(p, 0.0)), 9)
        if p in starts:
            value = option_value(scenario, weights[p], float(pr.at[p, "benefit"]), int(starts[p]),
                                 int(pr.at[p, "duration_years"]))
        else:
            value = best[p]
        org = pr.at[p, "org_id"]
        rows.append({
            "project_id": p, "name": pr.at[p, "name"],
            "system_id": org_sys[org] if isinstance(org, str) else psys[p],
            "status": "funded" if p in starts else "unfunded",
            "baseline_start": int(starts[p]) if p in starts else None,
            "value": value, "national_draw": draw,
            "value_density": value / draw if draw > 0 else math.inf,
        })
    frame = pd.DataFrame(rows, columns=MARGIN_COLUMNS[:-3])
    frame["baseline_start"] = frame["baseline_start"].astype("Int64")
    funded = frame[frame["status"] == "funded"].sort_values(["value_density", "project_id"])
    unfunded = frame[frame["status"] == "unfunded"].sort_values(["value_density", "project_id"],
                                                                ascending=[False, True])
    parts = []
    for part in (funded, unfunded):
        part = part.copy()
        part["margin_rank"] = np.arange(1, len(part) + 1)
        part["screen"] = ""
        part["selected"] = False
        parts.append(part)
    return pd.concat(parts, ignore_index=True)[MARGIN_COLUMNS]


# --------------------------------------------------------------------------- bisection

@dataclass
class Search:
    """One bracket search: ``same`` is the factor farthest from 1 at which the status is proved
    unchanged, ``flipped`` the nearest at which it is proved changed (None: not within the
    bracket), ``undecided`` the probed factors between them that the gaps could not decide."""

    result: str                 # "threshold" | "threshold range" | "none within bracket" | "undecided"
    same: float
    flipped: float | None
    undecided: list[float] = field(default_factory=list)
    probes: int = 0


def narrow(a: float, b: float, tolerance: float) -> bool:
    """True when the bracket between ``a`` and ``b`` is within tolerance: hi − lo <= tolerance × hi,
    or hi <= tolerance (indistinguishable from 0)."""
    lo, hi = min(a, b), max(a, b)
    return hi - lo <= tolerance * hi or hi <= tolerance


def midpoint(a: float, b: float) -> float:
    """Geometric midpoint of a multiplicative factor bracket (arithmetic when one end is 0),
    rounded to 12 significant digits so that runs repeat exactly."""
    lo, hi = min(a, b), max(a, b)
    m = (lo + hi) / 2 if lo <= 0 else math.sqrt(lo * hi)
    return float(f"{m:.12g}")


def search(flipped_at: Callable[[float], bool | None], *, near: float = 1.0, far: float,
           tolerance: float = 0.01, max_probes: int = 40, max_undecided: int = 2) -> Search:
    """Find where ``flipped_at(f)`` (True: status changed, False: unchanged, None: undecided)
    changes between ``near`` (unchanged, not probed) and ``far``, by bisection.

    The far end is probed first; then the bracket between the last unchanged factor and the first
    changed one is halved until ``narrow``. Undecided probes split it in two, each narrowed on
    its own, so the answer is a range the gaps allow instead of a guess; the search stops refining
    after ``max_undecided`` undecided probes (each has cost a proof attempt that did not finish)
    or ``max_probes`` probes.
    """
    state: dict[float, bool | None] = {near: False}

    def probe(f: float) -> None:
        state[f] = flipped_at(f)

    probe(far)
    n = 1
    toward = 1.0 if far > near else -1.0

    def key(f: float) -> float:
        return toward * (f - near)   # distance from near along the search direction

    while True:
        flips = [f for f, s in state.items() if s is True]
        flip = min(flips, key=key) if flips else None
        limit = key(flip) if flip is not None else math.inf
        same = max((f for f, s in state.items() if s is False and key(f) < limit), key=key)
        und = sorted((f for f, s in state.items() if s is None and key(same) < key(f) <= limit), key=key)
        if flip is None and not und:
            return Search("none within bracket", same, None, [], n)
        intervals = [(same, und[0]), (und[-1], flip)] if und else [(same, flip)]
        todo = [(a, b) for a, b in intervals if b is not None and not narrow(a, b, tolerance)]
        n_undecided = sum(1 for s in state.values() if s is None)
        if not todo or n >= max_probes or n_undecided >= max_undecided:
            if flip is None:
                return Search("undecided", same, None, und, n)
            return Search("threshold range" if und else "threshold", same, flip, und, n)
        probe(midpoint(*todo[0]))
        n += 1

# --------------------------------------------------------------------------- one project's search

@dataclass(frozen=True)
class _Job:
    """One project's whole search (picklable: one job on the analysis's context)."""

    scenario: Scenario
    project: str
    baseline: Decisions
    tolerance: float
    max_probes: int
    max_undecided: int
    decrease: tuple[float, float]
    increase: tuple[float, float]
    stages: tuple[float, ...]            # gaps of the re-solve stages for a probe in band, ending with 0
    proof_time_limit: float


@dataclass
class _Result:
    project: str
    status: str                  # funded | unfunded | undecided | required
    searches: dict[str, Search]
    probes: list[dict[str, Any]]
    solve_seconds: float
    notes: dict[str, str] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)


def _scaled(measure: str, project: str, factor: float) -> ScaleBenefit | ScaleCost:
    """The variant operation scaling ``project``'s ``measure`` by ``factor``."""
    if measure == BENEFIT:
        return ScaleBenefit(project, factor)
    if measure == COST:
        return ScaleCost(project, factor)
    raise ValueError(f"unknown measure {measure!r}")


def _decide(pin: Outcome, out: Outcome) -> tuple[bool | None, Band | None]:
    """Is the project funded (in every optimal plan)? True / False (ties and below) / None
    (undecided within the gap band); with the band of the difference, when there is one."""
    if not pin.has_plan:
        return (False, None) if pin.status == SolutionStatus.INFEASIBLE else (None, None)
    if not out.has_plan:
        return (True, None) if out.status == SolutionStatus.INFEASIBLE else (None, None)
    band = compare(pin, out)
    if band.verdict == "positive":
        return True, band
    if band.verdict in ("negative", "zero"):
        return False, band
    tol = TIE_RTOL * max(1.0, abs(pin.objective), abs(out.objective))
    if band.high <= tol:                  # at most a tie: not funded
        return False, band
    if proven(pin) and proven(out):
        return band.value > tol, band
    return None, band


def _mark(row: dict[str, Any], verdict: bool | None, band: Band | None, undecided: str) -> None:
    """Write a verdict and the difference band it was read from into a probe row."""
    if band is not None:
        row.update(difference=band.value, difference_low=band.low, difference_high=band.high)
    row["funded"] = {True: "yes", False: "no"}.get(verdict, undecided)  # type: ignore[arg-type]


class _Prober:
    """Decides, for one project, whether it is funded at a factor of one measure; keeps every solve
    as a probe row. Every solve is an engine ``Task`` run by ``solve_many`` on a quiet serial
    context (the job itself already runs on the analysis's pool)."""

    def __init__(self, job: _Job, ctx: Context) -> None:
        self.j = job
        self.ctx = ctx
        self.rows: list[dict[str, Any]] = []
        self.seconds = 0.0
        self.out: Outcome | None = None
        self.out_task = Task(job.scenario, (ForceOut(frozenset({job.project})),), f"{job.project} out",
                             start=job.baseline)
        self.plans: dict[tuple[str, float], Decisions] = {}
        self.cache: dict[tuple[str, float], bool | None] = {}
        self.infeasible: set[tuple[str, float]] = set()
        self.stalled = -1.0                  # stages at gaps <= this stopped at their time limit

    def _row(self, side: str, measure: str, factor: float, mip_gap: float, proof: bool, status: str,
             objective: float | None, bound: float | None, gap: float | None) -> dict[str, Any]:
        """Append one probe row (a solve) and return it."""
        row = {
            "project_id": self.j.project, "seq": len(self.rows) + 1, "measure": measure if side == "in" else "",
            "factor": factor if side == "in" else math.nan, "side": side, "mip_gap": float(mip_gap),
            "proof": proof,
            "feasible": status in ("optimal", "feasible"), "status": status,
            "objective": math.nan if objective is None else objective,
            "bound": math.nan if bound is None else bound, "gap": math.nan if gap is None else gap,
            "difference": math.nan, "difference_low": math.nan, "difference_high": math.nan, "funded": "",
        }
        self.rows.append(row)
        return row

    def _solve(self, task: Task, side: str, measure: str, factor: float) -> tuple[Outcome, dict[str, Any]]:
        """One solve at the scenario's own gap."""
        o = solve_one(task, self.ctx, label=task.label)
        self.seconds += o.solve_seconds
        row = self._row(side, measure, factor, self.j.scenario.solver.mip_gap, False, o.status.value, o.objective,
                        bound_of(o), gap_of(o))
        return o, row

    def out_point(self) -> Outcome:
        """The best plan without the project: solved once (re-solved tighter by ``funded`` when a
        probe needs it; its plan and bound then serve every later probe of the project)."""
        if self.out is None:
            self.out, _ = self._solve(self.out_task, "out", "", math.nan)
        return self.out

    def _warm(self, measure: str, factor: float) -> Decisions:
        """The in-plan of the nearest factor already probed (any measure at factor 1), else the baseline."""
        known = [(abs(math.log(f) - math.log(factor)) if f > 0 and factor > 0 else abs(f - factor), f, m)
                 for (m, f) in self.plans if m == measure or f == 1.0]
        if not known:
            return self.j.baseline
        _, f, m = min(known)
        return self.plans[(m, f)]

    def funded(self, measure: str, factor: float) -> bool | None:
        """Funded at ``factor`` (True/False), or None when not decidable within the gaps."""
        ckey = ("*", 1.0) if factor == 1.0 else (measure, factor)
        if ckey in self.cache:
            return self.cache[ckey]
        p = self.j.project
        task = Task(self.j.scenario, (_scaled(measure, p, factor), ForceIn(p)), f"{p} in {measure} {factor:g}",
                    start=self._warm(measure, factor))
        out = self.out_point()
        pin, row = self._solve(task, "in", measure, factor)
        verdict, band = _decide(pin, out)
        _mark(row, verdict, band, "in band: re-solved")
        for gap in self.j.stages:
            if verdict is not None or gap <= self.stalled:
                break
            # the engine's refine re-solves in key order: "out" (shared by every probe) before "probe"
            outcomes = {"out": out, "probe": pin}
            need = [key for key, o in outcomes.items() if not tight(o, gap)]
            log: list[dict[str, Any]] = []
            refine(outcomes, {"out": self.out_task, "probe": task}, [("probe", "out", False)], gaps=[gap],
                   time_limit=self.j.proof_time_limit, context=self.ctx, log=log, label=f"{p} re-solving")
            if any(not tight(outcomes[key], gap) for key in need):
                self.stalled = max(self.stalled, gap)   # a re-solve stopped at its time limit
            out = self.out = outcomes["out"]
            pin = outcomes["probe"]
            for rec in log:
                if rec["status"] == "skipped":
                    continue
                self.seconds += float(rec["seconds"])  # type: ignore[arg-type]
                side = "in" if rec["label"] == "probe" else "out"
                new = self._row(side, measure, factor, gap, gap == 0.0, str(rec["status"]),
                                rec["objective"], rec["bound"], rec["gap"])  # type: ignore[arg-type]
                if side == "in":
                    row = new
            verdict, band = _decide(pin, out)
            _mark(row, verdict, band, "in band: re-solved")
        _mark(row, verdict, band, "undecided")
        if pin.has_plan and pin.decisions is not None:
            self.plans[(measure, factor)] = pin.decisions
        elif pin.status == SolutionStatus.INFEASIBLE:
            self.infeasible.add((measure, factor))
        self.cache[ckey] = verdict
        return verdict


def _directions(funded: bool, dec: tuple[float, float], inc: tuple[float, float]
                ) -> dict[str, tuple[str, float, float]]:
    """Per measure: the direction that flips the status, and its bracket as (near, far)."""
    if funded:
        return {BENEFIT: (DECREASE, dec[1], dec[0]), COST: (INCREASE, inc[0], inc[1])}
    return {BENEFIT: (INCREASE, inc[0], inc[1]), COST: (DECREASE, dec[1], dec[0])}


def _benefit_certificates(job: _Job, row: dict[str, Any], plan: Decisions | None, out: Outcome
                          ) -> tuple[float, float]:
    """For a status left undecided at factor 1: the benefit factors beyond which the status is
    proved without another solve, since a plan's objective is linear in the project's benefit.

    Above: the in-plan found keeps its plan, so Δ(f) ≥ low + (f − 1)·V, V the project's value in it.
    Below: every plan funding it loses at least (1 − f)·V_min, V_min its least value over its
    starts, so Δ(f) ≤ high − (1 − f)·V_min. Returns (proved out at or below, proved in above);
    NaN where no such factor exists (e.g. no value to scale).
    """
    sc, p = job.scenario, job.project
    low, high = row["difference_low"], row["difference_high"]
    if math.isnan(low) or math.isnan(high) or not out.has_plan:
        return math.nan, math.nan
    eps = TIE_RTOL * max(1.0, abs(out.objective))
    pr = sc.instance.projects.set_index("project_id")
    weight = need_weight_of(sc)[p]
    benefit, duration = float(pr.at[p, "benefit"]), int(pr.at[p, "duration_years"])
    last = sc.instance.years[-1]
    n = int(sc.instance.profile_length()[p])
    starts = [y for y in range(int(pr.at[p, "earliest_start"]), int(pr.at[p, "latest_start"]) + 1) if y + n - 1 <= last]
    v_min = min((option_value(sc, weight, benefit, y, duration) for y in starts), default=0.0)
    v_in = option_value(sc, weight, benefit, plan.starts[p], duration) if plan and p in plan.starts else 0.0
    above = 1.0 + (2 * eps - low) / v_in if v_in > 0 else math.nan      # Δ ≥ 2·eps: clear of a tie
    below = 1.0 - (high + eps) / v_min if v_min > 0 else math.nan       # Δ ≤ −eps
    return (below if below >= 0 else math.nan), above


def _run_project(job: _Job) -> _Result:
    """One project's whole analysis: its status at factor 1, then both searches (module-level so a
    process pool can run it)."""
    with Context(1, progress=False) as ctx:
        return _search_project(job, _Prober(job, ctx))


def _search_project(task: _Job, pr: _Prober) -> _Result:
    out = pr.out_point()
    if out.status == SolutionStatus.INFEASIBLE:
        return _Result(task.project, "required", {}, pr.rows, pr.seconds)
    now = pr.funded(BENEFIT, 1.0)
    if now is None:
        last = [r for r in pr.rows if r["side"] == "in"][-1]
        note = (f"best plan with it − without it = {last['difference']:+.3f} points, within the band "
                f"[{last['difference_low']:+.3f}, {last['difference_high']:+.3f}] the gaps allow")
        lo, hi = _benefit_certificates(task, last, pr.plans.get((BENEFIT, 1.0)), pr.out_point())
        extra = ""
        if not (math.isnan(lo) and math.isnan(hi)):
            extra = (f"; benefit: proved out at ×{lo:.4g} or less, proved in above ×{hi:.4g} "
                     "(bounds read off these solves, no further re-solve)")
        return _Result(task.project, "undecided", {}, pr.rows, pr.seconds,
                           {BENEFIT: note + extra, COST: note}, {BENEFIT: (lo, hi)})
    searches = {}
    for measure, (_direction, near, far) in _directions(now, task.decrease, task.increase).items():
        def flipped_at(f: float, measure: str = measure) -> bool | None:
            v = pr.funded(measure, f)
            return None if v is None else v != now
        searches[measure] = search(flipped_at, near=near, far=far, tolerance=task.tolerance,
                                   max_probes=task.max_probes, max_undecided=task.max_undecided)
    notes = {}
    for measure, s in searches.items():
        far = _directions(now, task.decrease, task.increase)[measure][2]
        if s.result == "none within bracket" and (measure, far) in pr.infeasible:
            notes[measure] = f"no plan funding it is feasible at ×{far:g}"
        elif s.result == "none within bracket" and now and measure == BENEFIT:
            notes[measure] = "still funded with no benefit of its own (the rules or other projects need it)"
    return _Result(task.project, "funded" if now else "unfunded", searches, pr.rows, pr.seconds, notes)


# --------------------------------------------------------------------------- the analysis

def _current(scenario: Scenario, project: str, measure: str, factor: float | None) -> float:
    """Benefit points per year, or gross cost (capital + revenue, £m) of the profile, at ``factor``."""
    if factor is None or (isinstance(factor, float) and math.isnan(factor)):
        return math.nan
    inst = scenario.instance
    if measure == BENEFIT:
        b = float(inst.projects.loc[inst.projects["project_id"] == project, "benefit"].iloc[0])
        return b * factor
    co = inst.costs[inst.costs["project_id"] == project]
    return float(np.round(co["capital"].to_numpy(float) * factor, 3).sum()
                 + np.round(co["revenue"].to_numpy(float) * factor, 3).sum())



def thresholds(scenario: Scenario, *, k: int = 5, tolerance: float = 0.01, workers: int = 1,
               decrease: tuple[float, float] = DECREASE_BRACKET, increase: tuple[float, float] = INCREASE_BRACKET,
               proof_time_limit: float | None = None, max_probes: int = 40, max_undecided: int = 2,
               screen: bool = True, tighten_gaps: tuple[float, ...] = DEFAULT_TIGHTEN_GAPS,
               context: Context | None = None, **solver: Any) -> Analysis:
    """Borderline thresholds for the ``k`` funded projects closest to dropping out and the ``k``
    unfunded ones closest to coming in (see the module docstring for the method).

    ``solver`` (backend, mip_gap, time_limit, threads, seed) applies to the baseline and every
    probe; probes in band are re-solved at each of ``tighten_gaps`` (those tighter than the
    scenario's gap) and then at gap 0, each within ``proof_time_limit`` seconds (default: the time
    limit); a stage that stops at its time limit is skipped for the project's later probes.
    ``tolerance`` is relative on the factor; ``decrease``/``increase`` are the
    factor brackets; ``max_probes`` caps the probes of one search and ``max_undecided`` the probes
    left undecided after a proof attempt (each costs up to ``proof_time_limit``). With ``screen``, unfunded
    projects are taken in rank order only if some plan can fund them at the lowest cost factor
    (one quick feasibility solve each), so that projects no change of benefit or cost could bring
    in (e.g. a platform the system may not adopt) do not take the K places. Projects are searched
    in parallel on ``context`` (or a local pool of ``workers`` processes).

    Tables: ``thresholds`` (one row per project and measure, ranked), ``probes`` (every re-solve,
    screening solves included) and ``margin`` (every eligible project's value density, screen
    verdict and selection).
    """
    require_optimising(scenario, "thresholds")
    from solver.errors import InputError

    if not k >= 0:
        raise InputError(None, f"k must be >= 0 (got {k})")
    if not 0 < tolerance < 1:
        raise InputError(None, f"tolerance must be a fraction in (0, 1), e.g. 0.01 (got {tolerance})")
    if not (0 <= decrease[0] < decrease[1] == 1.0 and 1.0 == increase[0] < increase[1] < math.inf):
        raise InputError(None, "brackets must be [a, 1] with a >= 0 for decreases and [1, b] for increases "
                               f"(got {tuple(decrease)} and {tuple(increase)})")
    t0 = time.perf_counter()
    solver = {key: v for key, v in solver.items() if v is not None}
    sc = scenario.with_solver(**solver)
    proof_tl = float(proof_time_limit if proof_time_limit is not None else sc.solver.time_limit)
    own = sc.solver.mip_gap
    stages = tuple(sorted({float(g) for g in tighten_gaps if 0 < g < own}, reverse=True)) + (0.0,)
    with analysis_context(context, workers) as ctx:
        base = base_outcome(sc, ctx)   # no plan: fails as ``solve`` does (exit 3 with its causes, or 6)
        assert base.decisions is not None
        margin = margin_table(sc, base.decisions.starts)
        screen_rows, screen_seconds = _select(sc, margin, k, base.decisions, decrease[0], ctx, screen)
        chosen = margin[margin["selected"]]
        jobs = [_Job(sc, p, base.decisions, tolerance, max_probes, max_undecided, decrease, increase, stages,
                     proof_tl) for p in chosen["project_id"]]
        done = ctx.map(_run_project, jobs, label="thresholds")
        n_workers = ctx.workers
    for r in done:
        if isinstance(r, Failed):
            raise r.error
    results: list[_Result] = done  # type: ignore[assignment]

    info = chosen.set_index("project_id")
    rank = {p: i + 1 for _, part in chosen.groupby("status") for i, p in enumerate(part["project_id"])}
    rows, probes = [], list(screen_rows)
    for res in results:
        m = info.loc[res.project]
        probes += res.probes
        base_row = {
            "group": m["status"], "rank": rank[res.project], "project_id": res.project, "name": m["name"],
            "system_id": m["system_id"], "baseline_start": m["baseline_start"], "value": float(m["value"]),
            "national_draw": float(m["national_draw"]), "value_density": float(m["value_density"]),
            "status": res.status, "project_resolves": len(res.probes),
        }
        if res.status in ("required", "undecided"):
            for measure in (BENEFIT, COST):
                rows.append({**base_row, "measure": measure, "direction": "",
                             "result": "required (cannot drop out)" if res.status == "required"
                             else "undecided at factor 1 (within the gap band)",
                             "current": _current(sc, res.project, measure, 1.0),
                             "unit": "points/yr" if measure == BENEFIT else "£m", "resolves": 0,
                             "undecided_low": res.ranges.get(measure, (math.nan, math.nan))[0],
                             "undecided_high": res.ranges.get(measure, (math.nan, math.nan))[1],
                             "note": res.notes.get(measure, "")})
            continue
        dirs = _directions(res.status == "funded", decrease, increase)
        for measure in (BENEFIT, COST):
            direction, near, far = dirs[measure]
            found = res.searches[measure]
            cur = _current(sc, res.project, measure, 1.0)
            factor = found.flipped if found.flipped is not None else math.nan
            at = _current(sc, res.project, measure, factor)
            rows.append({
                **base_row, "measure": measure, "direction": direction,
                "bracket_low": min(near, far), "bracket_high": max(near, far), "result": found.result,
                "factor": factor, "factor_same": found.same,
                "undecided_low": min(found.undecided) if found.undecided else math.nan,
                "undecided_high": max(found.undecided) if found.undecided else math.nan,
                "current": cur, "at_threshold": at, "change": at - cur, "unit": "points/yr" if measure == BENEFIT
                else "£m", "resolves": sum(1 for r in res.probes if r["measure"] == measure and r["factor"] != 1.0),
                "note": res.notes.get(measure, ""),
            })
    table = pd.DataFrame(rows, columns=THRESHOLD_COLUMNS)
    table["baseline_start"] = table["baseline_start"].astype("Int64")
    table["_o"] = table["group"].map({"funded": 0, "unfunded": 1})
    table = table.sort_values(["_o", "rank", "measure"]).drop(columns="_o").reset_index(drop=True)
    probe_table = pd.DataFrame(probes, columns=PROBE_COLUMNS)

    undecided = int((probe_table["funded"] == "undecided").sum()) if not probe_table.empty else 0
    summary = header(sc, "thresholds", {
        "k": k, "tolerance": tolerance, "decrease_bracket": list(decrease), "increase_bracket": list(increase),
        "max_probes": max_probes, "max_undecided": max_undecided, "screen": screen,
        "tighten_gaps": [float(g) for g in tighten_gaps], "proof_time_limit": proof_tl,
        "tie_rtol": TIE_RTOL, "proof_rtol": PROOF_RTOL,
        "ranking": "value density: option value / national draw (funded ascending, unfunded descending)",
        "cost_scaling": "capital and revenue profile x factor, rounded to 3 decimals; run cost unchanged",
    })
    summary.update({
        "base": {**solve_record(base, label="base"), "projects": len(sc.instance.projects)},
        "projects": {r.project: r.status for r in results},
        "resolves": {"total": int(len(probe_table)),
                     "proof": int(probe_table["proof"].sum()) if not probe_table.empty else 0,
                     "undecided_probes": undecided,
                     "not_optimal": int((~probe_table["status"].isin(["optimal", "infeasible"])).sum())
                     if not probe_table.empty else 0},
        "timing": {"workers": n_workers, "wall_seconds": round(time.perf_counter() - t0, 3),
                   "baseline_solve_seconds": round(base.solve_seconds, 3),
                   "screen_solve_seconds": round(screen_seconds, 3),
                   "probe_solve_seconds": round(sum(r.solve_seconds for r in results), 3)},
    })
    return Analysis(name="thresholds", tables={"thresholds": table, "probes": probe_table, "margin": margin},
                    summary=jsonable(summary))  # type: ignore[arg-type]


def _select(sc: Scenario, margin: pd.DataFrame, k: int, start: Decisions, low: float, ctx: Context,
            screen: bool) -> tuple[list[dict[str, Any]], float]:
    """Mark the K funded projects closest to the margin and the K unfunded ones closest to entry
    (skipping those no plan can fund, when screening) in ``margin``; returns the screening solves
    as probe rows. Screening goes down the ranking in batches of the places still open (never
    depending on the number of workers), so the selection is the same for any number of workers.
    A screening solve asks for the first plan found (gap 100%) with the project forced in at the
    lowest cost factor."""
    funded = margin.index[margin["status"] == "funded"][:k]
    margin.loc[funded, "selected"] = True
    rows: list[dict[str, Any]] = []
    seconds = 0.0
    todo = list(margin.index[margin["status"] == "unfunded"])
    found = 0
    while todo and found < k:
        batch, todo = todo[:k - found], todo[k - found:]
        if not screen:
            margin.loc[batch, "selected"] = True
            found += len(batch)
            continue
        ids = [str(margin.at[i, "project_id"]) for i in batch]
        tasks = [Task(sc, (ScaleCost(p, low), ForceIn(p)), f"{p} screen", start=start, mip_gap=1.0) for p in ids]
        outs = solve_many(tasks, ctx, label="screening")
        raise_failures(outs)
        for i, p, o in zip(batch, ids, outs):
            blocked = o.status == SolutionStatus.INFEASIBLE
            margin.at[i, "screen"] = "blocked" if blocked else ("feasible" if o.has_plan else "unknown")
            margin.at[i, "selected"] = not blocked
            found += not blocked
            seconds += o.solve_seconds
            rows.append({
                "project_id": p, "seq": 0, "measure": COST, "factor": low, "side": "screen",
                "mip_gap": 1.0, "proof": False, "feasible": o.has_plan, "status": o.status.value,
                "objective": o.objective, "bound": bound_of(o), "gap": gap_of(o), "difference": math.nan,
                "difference_low": math.nan, "difference_high": math.nan, "funded": "",
            })
    return rows, seconds
