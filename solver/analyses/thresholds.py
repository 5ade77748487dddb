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
plans that fund p. So the best plan *without* p, ``z_out`` (p given no start window), is one
solve per project whatever f is, and the question "is p funded at f?" is the sign of

    Δ(f) = z_in(f) − z_out,        z_in(f) = best plan funding p (p made mandatory) at f.

p is funded when Δ > 0 (every optimal plan funds it); a tie (|Δ| within 1e-6 relative) counts as
not funded. Both sides are MIP solves, so Δ is only known within the band their gaps allow,
``[z_in − bound_out, bound_in − z_out]`` (``common.difference``). A probe whose band contains 0
is re-solved tighter in stages — gap 0.01% (``tighten_gaps``), then proven optimality (gap 0),
each within ``proof_time_limit`` — first the out side (once per stage per project), then the in
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

Each project's whole search is one task for ``executor.run_all`` (independent, picklable), so
``workers`` processes search different projects at once; results are identical for any number
of workers (timings apart, and apart from solves that stop at their time limit).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from solver.analyses.engine import Analysis, Point, difference, point
from solver.analyses.value import merge
from solver.data.scenario import Scenario
from solver.present.report import best_values
from solver.run.executor import run_all
from solver.solve.accounts import need_weight_of, option_value
from solver.solve.checks import fy
from solver.solve.decisions import Decisions

BENEFIT, COST = "benefit", "cost"
DECREASE, INCREASE = "decrease", "increase"
#: Default search brackets for the factor: decreases in [0, 1], increases in [1, 16].
DECREASE_BRACKET = (0.0, 1.0)
INCREASE_BRACKET = (1.0, 16.0)
#: Objective differences within this relative amount are ties (the audit's objective tolerance).
TIE_RTOL = 1e-6
#: A solve counts as proved optimal when its relative gap is at most this.
PROVEN_GAP = 1e-6
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


# --------------------------------------------------------------------------- scenario edits

def _edit_instance(scenario: Scenario, **tables: pd.DataFrame) -> Scenario:
    return dataclasses.replace(scenario, instance=dataclasses.replace(scenario.instance, **tables))


def scale_benefit(scenario: Scenario, project_id: str, factor: float) -> Scenario:
    """A copy with ``project_id``'s benefit points multiplied by ``factor``."""
    pr = scenario.instance.projects.copy()
    sel = pr["project_id"] == project_id
    pr.loc[sel, "benefit"] = pr.loc[sel, "benefit"].astype(float) * factor
    return _edit_instance(scenario, projects=pr)


def scale_cost(scenario: Scenario, project_id: str, factor: float) -> Scenario:
    """A copy with ``project_id``'s cost profile (capital and revenue, every year) multiplied by
    ``factor`` and rounded to £k (3 decimals), so the tables stay valid money."""
    co = scenario.instance.costs.copy()
    sel = co["project_id"] == project_id
    for col in ("capital", "revenue"):
        co.loc[sel, col] = np.round(co.loc[sel, col].astype(float).to_numpy() * factor, 3)
    return _edit_instance(scenario, costs=co)


def edit(scenario: Scenario, project_id: str, measure: str, factor: float) -> Scenario:
    """The scenario with one project's ``measure`` ('benefit' or 'cost') scaled by ``factor``
    (the scenario itself for factor 1)."""
    if factor == 1.0:
        return scenario
    if measure == BENEFIT:
        return scale_benefit(scenario, project_id, factor)
    if measure == COST:
        return scale_cost(scenario, project_id, factor)
    raise ValueError(f"unknown measure {measure!r}")


def force_in(scenario: Scenario, project_id: str) -> Scenario:
    """A copy in which ``project_id`` must be funded (made mandatory). When the policy has the
    mandatory rule off, it is switched on for this project alone."""
    pr = scenario.instance.projects.copy()
    sc = scenario
    if not scenario.policy.mandatory.enabled:
        pr["mandatory"] = False
        sc = scenario.with_overrides({"mandatory": {"enabled": True}})
    pr.loc[pr["project_id"] == project_id, "mandatory"] = True
    return _edit_instance(sc, projects=pr)


def force_out(scenario: Scenario, project_id: str) -> Scenario:
    """A copy in which ``project_id`` cannot be funded: its start window is made empty
    (latest start before earliest), so it has no option. Everything else follows from the model's
    own rules: a project requiring it cannot start, a mandatory one makes the scenario infeasible."""
    pr = scenario.instance.projects.copy()
    sel = pr["project_id"] == project_id
    pr.loc[sel, "latest_start"] = pr.loc[sel, "earliest_start"] - 1
    return _edit_instance(scenario, projects=pr)


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


# --------------------------------------------------------------------------- one project's task

@dataclass
class _Task:
    scenario: Scenario
    project: str
    baseline: Decisions
    solver: dict[str, Any]
    proof: dict[str, Any]
    tolerance: float
    max_probes: int
    max_undecided: int
    decrease: tuple[float, float]
    increase: tuple[float, float]
    tighten: tuple[float, ...] = ()      # gaps tried before the proof (gap 0) on an undecided probe

    def stages(self) -> list[float]:
        """Gaps of the re-solve stages for a probe in band, loosest first, ending with proof (0)."""
        own = float(self.solver.get("mip_gap", self.scenario.solver.mip_gap))
        return sorted({g for g in self.tighten if 0 < g < own}, reverse=True) + [0.0]


@dataclass
class _TaskResult:
    project: str
    status: str                  # funded | unfunded | undecided | required
    searches: dict[str, Search]
    probes: list[dict[str, Any]]
    solve_seconds: float
    notes: dict[str, str] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)


def _proven(pt: Point) -> bool:
    """Proved: infeasible, or optimal with (practically) no gap."""
    if not pt.feasible:
        return pt.status == "InfeasibleError"
    return pt.status == "optimal" and pt.gap <= PROVEN_GAP


def _merge(old: Point, new: Point) -> Point:
    """A re-solve combined with the solve it tightens (better plan, tighter bound); a re-solve of
    a problem that had no plan replaces it (it may prove infeasibility)."""
    return merge(old, new) if old.feasible else new


def _tight(pt: Point, gap: float) -> bool:
    """Solved at least as tightly as ``gap`` (proven counts as gap 0)."""
    return _proven(pt) or (pt.feasible and pt.gap <= gap + 1e-12)


def _decide(pin: Point, out: Point) -> tuple[bool | None, Any]:
    """Is the project funded (in every optimal plan)? True / False (including ties) / None
    (undecided within the gap band); with the difference, when there is one."""
    if not pin.feasible:
        return (False, None) if pin.status == "InfeasibleError" else (None, None)
    if not out.feasible:
        return (True, None) if out.status == "InfeasibleError" else (None, None)
    d = difference(pin, out)
    eps = TIE_RTOL * max(1.0, abs(out.objective))
    if d.low > eps:
        return True, d
    if d.high <= eps:
        return False, d
    if _proven(pin) and _proven(out):
        return d.value > eps, d
    return None, d


class _Prober:
    """Decides, for one project, whether it is funded at a factor of one measure; keeps every solve."""

    def __init__(self, task: _Task) -> None:
        self.t = task
        self.rows: list[dict[str, Any]] = []
        self.seconds = 0.0
        self.out: Point | None = None
        self.plans: dict[tuple[str, float], Decisions] = {}
        self.cache: dict[tuple[str, float], bool | None] = {}
        self.infeasible: set[tuple[str, float]] = set()
        self.out_tried: set[float] = set()
        self.stalled = -1.0                  # stages at gaps <= this stopped at their time limit

    def _solve(self, sc: Scenario, side: str, measure: str, factor: float, start: Decisions | None,
               gap: float | None) -> tuple[Point, dict[str, Any]]:
        """One solve at the scenario's gap (``gap`` None) or at a re-solve stage's gap."""
        opts = self.t.solver if gap is None else {**self.t.proof, "mip_gap": gap}
        pt = point(sc, f"{self.t.project} {side} {measure} {factor:g}", start=start, **opts)
        self.seconds += pt.solve_seconds
        if gap is not None and pt.status in ("feasible", "no_solution"):   # stopped at its time limit
            self.stalled = max(self.stalled, gap)
        row = {
            "project_id": self.t.project, "seq": len(self.rows) + 1, "measure": measure if side == "in" else "",
            "factor": factor if side == "in" else math.nan, "side": side,
            "mip_gap": float(opts.get("mip_gap", self.t.scenario.solver.mip_gap)), "proof": gap == 0.0,
            "feasible": pt.feasible, "status": pt.status, "objective": pt.objective, "bound": pt.bound,
            "gap": pt.gap, "difference": math.nan, "difference_low": math.nan, "difference_high": math.nan,
            "funded": "",
        }
        self.rows.append(row)
        return pt, row

    def out_point(self, gap: float | None = None) -> Point:
        """The best plan without the project: solved once, and re-solved at most once per stage
        ``gap`` (its plan and bound then serve every later probe of the project)."""
        if self.out is None:
            sc = force_out(self.t.scenario, self.t.project)
            self.out, _ = self._solve(sc, "out", "", math.nan, self.t.baseline, None)
        elif gap is not None and gap not in self.out_tried and not _tight(self.out, gap):
            self.out_tried.add(gap)
            sc = force_out(self.t.scenario, self.t.project)
            start = self.out.decisions() if self.out.feasible else self.t.baseline
            new, _ = self._solve(sc, "out", "", math.nan, start, gap)
            self.out = _merge(self.out, new)
        return self.out

    def _warm(self, measure: str, factor: float) -> Decisions:
        """The in-plan of the nearest factor already probed (any measure at factor 1), else the baseline."""
        known = [(abs(math.log(f) - math.log(factor)) if f > 0 and factor > 0 else abs(f - factor), f, m)
                 for (m, f) in self.plans if m == measure or f == 1.0]
        if not known:
            return self.t.baseline
        _, f, m = min(known)
        return self.plans[(m, f)]

    def funded(self, measure: str, factor: float) -> bool | None:
        """Funded at ``factor`` (True/False), or None when not decidable within the gaps."""
        ckey = ("*", 1.0) if factor == 1.0 else (measure, factor)
        if ckey in self.cache:
            return self.cache[ckey]
        sc = force_in(edit(self.t.scenario, self.t.project, measure, factor), self.t.project)
        out = self.out_point()
        pin, row = self._solve(sc, "in", measure, factor, self._warm(measure, factor), None)
        verdict, d = _decide(pin, out)
        _mark(row, verdict, d, "in band: re-solved")
        for gap in self.t.stages():
            if verdict is not None or gap <= self.stalled:
                break
            if not _tight(out, gap):
                out = self.out_point(gap)
                verdict, d = _decide(pin, out)
                _mark(row, verdict, d, "in band: re-solved")
            if verdict is None and not _tight(pin, gap) and gap > self.stalled:
                start = pin.decisions() if pin.feasible else None
                new, row = self._solve(sc, "in", measure, factor, start, gap)
                pin = _merge(pin, new)
                verdict, d = _decide(pin, out)
                _mark(row, verdict, d, "in band: re-solved")
        _mark(row, verdict, d, "undecided")
        if pin.feasible:
            self.plans[(measure, factor)] = pin.decisions()
        elif pin.status == "InfeasibleError":
            self.infeasible.add((measure, factor))
        self.cache[ckey] = verdict
        return verdict


def _mark(row: dict[str, Any], verdict: bool | None, d: Any, undecided: str) -> None:
    """Write a verdict and the difference band it was read from into a probe row."""
    if d is not None:
        row.update(difference=d.value, difference_low=d.low, difference_high=d.high)
    row["funded"] = {True: "yes", False: "no"}.get(verdict, undecided)  # type: ignore[arg-type]


def _directions(funded: bool, dec: tuple[float, float], inc: tuple[float, float]
                ) -> dict[str, tuple[str, float, float]]:
    """Per measure: the direction that flips the status, and its bracket as (near, far)."""
    if funded:
        return {BENEFIT: (DECREASE, dec[1], dec[0]), COST: (INCREASE, inc[0], inc[1])}
    return {BENEFIT: (INCREASE, inc[0], inc[1]), COST: (DECREASE, dec[1], dec[0])}


def _benefit_certificates(task: _Task, row: dict[str, Any], plan: Decisions | None, out: Point
                          ) -> tuple[float, float]:
    """For a status left undecided at factor 1: the benefit factors beyond which the status is
    proved without another solve, since a plan's objective is linear in the project's benefit.

    Above: the in-plan found keeps its plan, so Δ(f) ≥ low + (f − 1)·V, V the project's value in it.
    Below: every plan funding it loses at least (1 − f)·V_min, V_min its least value over its
    starts, so Δ(f) ≤ high − (1 − f)·V_min. Returns (proved out at or below, proved in above);
    NaN where no such factor exists (e.g. no value to scale).
    """
    sc, p = task.scenario, task.project
    low, high = row["difference_low"], row["difference_high"]
    if math.isnan(low) or math.isnan(high) or not out.feasible:
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


def _run_project(task: _Task) -> _TaskResult:
    """One project's whole analysis: its status at factor 1, then both searches (module-level so a
    process pool can run it)."""
    pr = _Prober(task)
    out = pr.out_point()
    if not out.feasible and out.status == "InfeasibleError":
        return _TaskResult(task.project, "required", {}, pr.rows, pr.seconds)
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
        return _TaskResult(task.project, "undecided", {}, pr.rows, pr.seconds,
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
    return _TaskResult(task.project, "funded" if now else "unfunded", searches, pr.rows, pr.seconds, notes)


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


def _fmt_factor(f: float | None) -> str:
    return "—" if f is None or (isinstance(f, float) and math.isnan(f)) else f"×{f:.4g}"


def thresholds(scenario: Scenario, *, k: int = 5, tolerance: float = 0.01, workers: int = 1,
               decrease: tuple[float, float] = DECREASE_BRACKET, increase: tuple[float, float] = INCREASE_BRACKET,
               proof_time_limit: float | None = None, max_probes: int = 40, max_undecided: int = 2,
               screen: bool = True, tighten_gaps: tuple[float, ...] = DEFAULT_TIGHTEN_GAPS,
               **solver: Any) -> Analysis:
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
    in (e.g. a platform the system may not adopt) do not take the K places.

    Tables: ``thresholds`` (one row per project and measure, ranked), ``probes`` (every re-solve,
    screening solves included) and ``margin`` (every eligible project's value density, screen
    verdict and selection).
    """
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
    solver_opts = {"backend": sc.solver.backend, "mip_gap": sc.solver.mip_gap, "time_limit": sc.solver.time_limit,
                   "threads": sc.solver.threads, "seed": sc.solver.seed}
    proof_opts = {**solver_opts, "mip_gap": 0.0,
                  "time_limit": proof_time_limit if proof_time_limit is not None else sc.solver.time_limit}
    base = point(sc, "baseline", **solver_opts)
    if not base.feasible:  # no plan to threshold: fail as ``solve`` does (exit 3 with its causes, or 6)
        from solver.api import solve
        from solver.errors import InfeasibleError, NoSolutionError

        if base.status == "InfeasibleError":
            solve(sc, **solver_opts)  # raises InfeasibleError with the causes in the user's terms
            raise InfeasibleError(f"scenario {sc.name}: no plan satisfies every rule")
        raise NoSolutionError(f"scenario {sc.name}: the solver stopped without any plan for the baseline; "
                              "raise the time limit (--time-limit)")
    margin = margin_table(sc, base.starts)
    screen_rows, screen_seconds = _select(sc, margin, k, base.decisions(), solver_opts, decrease[0], workers,
                                          screen)
    chosen = margin[margin["selected"]]
    tasks = [_Task(sc, p, base.decisions(), solver_opts, proof_opts, tolerance, max_probes, max_undecided,
                   decrease, increase, tuple(float(g) for g in tighten_gaps))
             for p in chosen["project_id"]]
    results = run_all(_run_project, tasks, workers=workers, label="thresholds")

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
    wall = time.perf_counter() - t0

    params = {"k": k, "tolerance": tolerance, "decrease_bracket": list(decrease),
              "increase_bracket": list(increase), "max_probes": max_probes, "max_undecided": max_undecided,
              "screen": screen, "tighten_gaps": [float(g) for g in tighten_gaps]}
    summary = _summary(sc, base, params, solver_opts, proof_opts, results, probe_table)
    summary["timing"] = {"workers": workers, "wall_seconds": round(wall, 3),
                         "baseline_solve_seconds": round(base.solve_seconds, 3),
                         "screen_solve_seconds": round(screen_seconds, 3),
                         "probe_solve_seconds": round(sum(r.solve_seconds for r in results), 3)}
    text = _text(sc, base, k, tolerance, table, probe_table)
    return Analysis(name="thresholds", tables={"thresholds": table, "probes": probe_table, "margin": margin},
                    summary=summary, text=text)


@dataclass
class _Screen:
    scenario: Scenario
    project: str
    factor: float
    start: Decisions
    solver: dict[str, Any]


def _screen_project(task: _Screen) -> Point:
    """Can any plan fund the project at cost × ``factor``? (first feasible plan is enough)"""
    sc = force_in(edit(task.scenario, task.project, COST, task.factor), task.project)
    return point(sc, f"{task.project} screen", start=task.start, **{**task.solver, "mip_gap": 1.0})


def _select(sc: Scenario, margin: pd.DataFrame, k: int, start: Decisions, solver_opts: dict[str, Any],
            low: float, workers: int, screen: bool) -> tuple[list[dict[str, Any]], float]:
    """Mark the K funded projects closest to the margin and the K unfunded ones closest to entry
    (skipping those no plan can fund, when screening) in ``margin``; returns the screening solves
    as probe rows. Screening goes down the ranking in batches of the places still open (never
    depending on ``workers``), so the selection is the same for any number of workers."""
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
        tasks = [_Screen(sc, str(margin.at[i, "project_id"]), low, start, solver_opts) for i in batch]
        for i, task, pt in zip(batch, tasks, run_all(_screen_project, tasks, workers=workers, label="screening")):
            blocked = not pt.feasible and pt.status == "InfeasibleError"
            margin.at[i, "screen"] = "blocked" if blocked else ("feasible" if pt.feasible else "unknown")
            margin.at[i, "selected"] = not blocked
            found += not blocked
            seconds += pt.solve_seconds
            rows.append({
                "project_id": task.project, "seq": 0, "measure": COST, "factor": low, "side": "screen",
                "mip_gap": 1.0, "proof": False, "feasible": pt.feasible, "status": pt.status,
                "objective": pt.objective, "bound": pt.bound, "gap": pt.gap, "difference": math.nan,
                "difference_low": math.nan, "difference_high": math.nan, "funded": "",
            })
    return rows, seconds


def _summary(sc: Scenario, base: Point, params: dict[str, Any], solver_opts: dict[str, Any],
             proof_opts: dict[str, Any], results: list[_TaskResult], probes: pd.DataFrame) -> dict[str, object]:
    """Parameters and solver figures (JSON-able, no timings)."""
    undecided = int((probes["funded"] == "undecided").sum()) if not probes.empty else 0
    return {
        "analysis": "thresholds",
        "scenario": sc.name,
        "scenario_path": sc.path,
        "instance": sc.instance.name,
        "model": sc.policy.name,
        "parameters": {
            **params, "tie_rtol": TIE_RTOL, "proven_gap": PROVEN_GAP,
            "ranking": "value density: option value / national draw (funded ascending, unfunded descending)",
            "cost_scaling": "capital and revenue profile x factor, rounded to 3 decimals; run cost unchanged",
        },
        "solver": {"probe": solver_opts, "proof": proof_opts},
        "baseline": {"status": base.status, "objective": round(base.objective, 6), "bound": round(base.bound, 6),
                     "gap": round(base.gap, 8), "funded_projects": len(base.starts)},
        "projects": {r.project: r.status for r in results},
        "resolves": {"total": int(len(probes)), "proof": int(probes["proof"].sum()) if not probes.empty else 0,
                     "undecided_probes": undecided,
                     "not_optimal": int((~probes["status"].isin(["optimal", "InfeasibleError"])).sum())
                     if not probes.empty else 0},
    }


def _text(sc: Scenario, base: Point, k: int, tolerance: float, table: pd.DataFrame, probes: pd.DataFrame) -> str:
    """A readable, ranked summary."""
    n_screen = int((probes["side"] == "screen").sum()) if not probes.empty else 0
    lines = [
        f"Borderline thresholds — scenario {sc.name} (instance {sc.instance.name}, model {sc.policy.name})",
        f"Baseline: objective {base.objective:,.1f} ({base.status}, gap {100 * base.gap:.3f}%), "
        f"{len(base.starts)} of {len(sc.instance.projects)} projects funded",
        f"k = {k}, factor tolerance {100 * tolerance:g}%; {len(probes) - n_screen} re-solves"
        + (f" + {n_screen} screening solves" if n_screen else ""),
    ]
    for group, title in (("funded", "Funded, closest to dropping out (lowest value per £m first)"),
                         ("unfunded", "Unfunded, closest to coming in (highest value per £m first)")):
        part = table[table["group"] == group]
        if part.empty:
            continue
        lines += ["", title + ":"]
        for pid, rows in part.groupby("project_id", sort=False):
            r0 = rows.iloc[0]
            start = f", starts {fy(int(r0['baseline_start']))}" if not pd.isna(r0["baseline_start"]) else ""
            density = "∞" if math.isinf(r0["value_density"]) else f"{r0['value_density']:,.2f}"
            lines.append(f"{int(r0['rank']):>3}. {pid} {r0['name']} ({r0['system_id']}{start}): value "
                         f"{r0['value']:,.1f} for £{r0['national_draw']:,.1f}m national ({density}/£m); "
                         f"{int(r0['project_resolves'])} re-solves")
            if r0["status"] in ("funded", "unfunded") and r0["status"] != group:
                lines.append(f"       proved {r0['status']} at ×1 (the baseline plan was within its gap)")
            if r0["status"] in ("required", "undecided"):
                lines.append(f"       {r0['result']}" + (f": {r0['note']}" if r0["note"] else ""))
                continue
            for r in rows.itertuples():
                lines.append("       " + _describe(r))
    lines += ["", "Each status is the sign of (best plan with the project − best plan without it), decided only "
                  "outside the band the two MIP gaps allow (re-solved at gap 0 when inside; ties count as not "
                  "funded). The factor is the first probed one at which the change is proved; 'still' gives the "
                  "last at which it is proved not to happen."]
    return "\n".join(lines)


def _describe(r: Any) -> str:
    """One search as a sentence."""
    money = r.unit == "£m"

    def amount(v: float) -> str:
        return f"£{v:,.3f}m" if money else f"{v:,.3g} {r.unit}"

    funded = r.status == "funded"
    what = "drops it" if funded else "brings it in"
    still = "still funded" if funded else "still out"
    if r.result == "none within bracket":
        far = r.bracket_low if r.direction == DECREASE else r.bracket_high
        text = f"{r.measure}: no {r.direction} to ×{far:g} {what}"
        return text + (f" ({r.note})" if r.note else "")
    if r.result == "undecided":
        return (f"{r.measure}: {still} at {_fmt_factor(r.factor_same)}; beyond it the gaps cannot decide "
                f"(undecided {_fmt_factor(r.undecided_low)}–{_fmt_factor(r.undecided_high)})")
    if r.factor == 0:
        text = f"{r.measure}: only a {r.measure} of 0 {what} ({still} at {_fmt_factor(r.factor_same)})"
    else:
        text = (f"{r.measure} {_fmt_factor(r.factor)} {what} ({amount(r.current)} → {amount(r.at_threshold)}, "
                f"{100 * (r.factor - 1):+.1f}%; {still} at {_fmt_factor(r.factor_same)})")
    if r.result == "threshold range":
        text += (f"; undecided within the gaps from {_fmt_factor(r.undecided_low)} to "
                 f"{_fmt_factor(r.undecided_high)}")
    return text + f" [{r.resolves} re-solves]"
