"""Why each unfunded project is unfunded: one reason code per project, each proved by a check.

``unfunded_reasons(outcome)`` gives every project the plan does not fund one code and one sentence a
planner can act on, with the amounts (docs/reasons.md). Every code is *proved* from the scenario's tables
and the audited plan — ``solver.pipeline.accounts`` figures, computed the way the audit computes them,
never the solver's matrix — by a check against the rules as the policy configures them. The checks are
made at each *allowed start* of the project (in its window, or its committed start when commitments are
not ignored; only starts whose cost profile ends by the last envelope year), in ``PRIORITY`` order:

**On its own** — no plan can fund it at that start (every other project only adds to each sum):

- ``platform`` (``limit`` ``absolute``): standardisation ``no-divergence``, and its platform is not one
  its system runs;
- ``local_capital`` / ``local_revenue``: its own local match capital, or its own local revenue (match
  share of revenue, run cost once live when the system pays run costs, the system's part of the access
  fee), exceeds its system's ``local_capital`` / ``revenue_headroom`` in some year;
- ``envelope``: its own national draw does not fit the national pots, even with the best use of the
  carry-over and capital-to-revenue flexibility the policy allows (``settle``, exact);
- ``fair_share``: its own national funding exceeds its system's hard fair-share cap (basis
  ``envelope``, where the cap does not depend on the plan).

**Beside this plan** — the plan's other decisions kept, adding it would break:

- ``alternative``: its alternatives group (another member is funded);
- ``platform`` (``limit`` ``relative``): standardisation ``single``, or ``no-divergence`` in a system
  that runs no platform yet, and the plan funds another platform in its system;
- ``dependency``: what it requires (a project, or any member of a group) is not funded, or not early
  enough for the lag;
- ``local_room``: its system's local capital or revenue headroom, after the plan's projects there;
- ``fair_share_room``: a hard fair-share cap (its system) or floor (other systems, basis ``spend``);
- ``outcompeted``: the national pots, after the plan's spending (``settle``);
- ``no_gain``: nothing — the plan with it added passes every check of the audit — but the objective,
  recomputed by the audit, does not rise (or the plan is rule-based, or stopped within its gap).

Before any start: ``excluded`` (the scenario forces it out) and ``no_start`` (no allowed start fits the
envelope years: validation refuses such a project, so only for tables built without it).

Each allowed start gets the first reason that holds there; the project gets the reason of its *closest*
start, the one whose first reason comes latest in the order (ties: the smallest shortfall, then the
latest start), and the sentence names what stops it at its other starts. So a code states its reason at
one start and a reason at least as strong holds at every other allowed start; an "on its own" code means
no plan can fund the project. Last, ``start_window``: when a start the rules do not allow (outside its
window, or other than its committed start, whose profile fits the envelope years) would do better — from
"no plan can fund it" to "some plan could", or to fitting beside this plan — the window is what stops
it, and the sentence says both.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from solver.backends.result import SolutionStatus
from solver.data.scenario import Scenario
from solver.pipeline.accounts import Accounts, Project, View, account, view
from solver.pipeline.decisions import Decisions
from solver.pipeline.outcome import Outcome
from solver.rules import AUDIT_ORDER, FAMILIES, ordered
from solver.rules import objective as objective_family
from solver.rules.base import Audit, fy, money_tolerance, over
from solver.rules.standardisation import funded_platforms

REASON_COLUMNS = ["project_id", "code", "reason", "start", "blocker", "year", "limit", "needed", "available",
                  "short", "objective_change", "withdrawn"]
"""Columns of ``unfunded_reasons``: ``start`` the start the reason is stated for (empty for project-level
codes and start-independent rules), ``blocker`` what stands in the way (the funded alternative, the required
project or group, the platform already funded or run, the system), ``year``/``limit`` where a money limit
bites (``capital``, ``revenue``, ``capital and revenue``, ``local_capital``, ``revenue_headroom``,
``fair_share_cap``, ``fair_share_floor``; for ``platform`` ``absolute`` or ``relative``),
``needed``/``available``/``short`` its amounts (£m: what it needs of the limit and what is there for it —
the whole limit on its own, what the plan leaves beside it; for a fair-share floor, the floor and the other
system's allocation), ``objective_change`` the objective's change with it
added (``no_gain`` only), ``withdrawn`` whether its signed commitment was withdrawn."""

PRIORITY = ("excluded", "no_start", "platform_ban", "local_capital", "local_revenue", "envelope", "fair_share",
            "alternative", "platform", "dependency", "local_room", "fair_share_room", "outcompeted", "no_gain")
"""Checks in priority order (``platform_ban`` is reported as code ``platform``)."""

CODES = ("excluded", "no_start", "start_window", "platform", "local_capital", "local_revenue", "envelope",
         "fair_share", "alternative", "dependency", "local_room", "fair_share_room", "outcompeted", "no_gain")
"""Every reason code."""

ALONE_CODES = ("excluded", "no_start", "local_capital", "local_revenue", "envelope", "fair_share")
"""Codes that say no plan can fund the project (so do ``platform`` and ``dependency`` with ``limit`` ``absolute``:
``cannot_be_funded``)."""

_RANK = {name: i for i, name in enumerate(PRIORITY)}
_THRESHOLD_CODES = ("alternative", "platform", "dependency", "local_room", "fair_share_room", "outcompeted", "no_gain",
                    "start_window")
_COST_TERMS = ("spend", "fair_share", "standardisation")   # objective terms subtracted from it
_BESIDE_FAMILY = {"budgets": "outcompeted", "local_funding": "local_room", "alternatives": "alternative",
                  "dependencies": "dependency", "standardisation": "platform", "fair_shares": "fair_share_room"}


def _m(x: float) -> str:
    return f"£{x:,.3f}m"


# --------------------------------------------------------------------------- national pots

@dataclass
class Settlement:
    """Whether a pattern of national spending fits the pots: if not, where it first fails (``year``, ``pot``,
    what is ``needed`` and the most that can be ``available`` there); if so, a capital-to-revenue transfer
    (``flex``) and carry-over (``carry``) that make it fit — a witness the audit accepts."""

    ok: bool
    year: int | None = None
    pot: str = ""
    needed: float = 0.0
    available: float = 0.0
    flex: dict[int, float] = field(default_factory=dict)
    carry: dict[tuple[str, int], float] = field(default_factory=dict)


def settle(spend: Mapping[tuple[str, int], float], envelope: Mapping[tuple[str, int], float], years: list[int],
           capital_to_revenue: float, carry_over: float) -> Settlement:
    """Exactly whether national spending per (pot, year) fits the envelope, with the best transfers α (at most
    ``capital_to_revenue`` of each year's capital envelope) and carry-over θ (at most ``carry_over`` of what is
    unspent, none from the last year), to the audit's money tolerance.

    Carrying the most allowed never hurts, so with both pots' carry at their maximum the total carried out of a
    year is fixed, θ(B^K + B^R + carry-in − spend); the transfer only splits it between the pots. The capital
    carry-in reachable in year t is then an interval, propagated year by year; a year fails when its capital
    spend exceeds the capital envelope plus the largest capital carry-in, its revenue spend the revenue envelope
    plus the largest transfer and revenue carry-in, or both pots together what is there. A witness is then
    read back from the last year."""
    alpha, theta = capital_to_revenue, carry_over
    recs: list[tuple[int, float, float, float, float, float, float, float]] = []
    total, lo, hi = 0.0, 0.0, 0.0          # carried into the year: total, and the interval of its capital part
    for i, y in enumerate(years):
        bk, br = envelope[("capital", y)], envelope[("revenue", y)]
        sk, sr = spend.get(("capital", y), 0.0), spend.get(("revenue", y), 0.0)
        if over(sk, bk + hi):
            return Settlement(False, y, "capital", sk, bk + hi)
        if over(sr, br + alpha * bk + total - lo):
            return Settlement(False, y, "revenue", sr, br + alpha * bk + total - lo)
        if over(sk + sr, bk + br + total):
            return Settlement(False, y, "capital and revenue", sk + sr, bk + br + total)
        ka = max(lo, sk - bk)
        kb = min(hi, alpha * bk + br + total - sr)
        ka = min(ka, kb) if kb >= lo else lo   # within the tolerance
        kb = max(kb, ka)
        recs.append((y, bk, br, sk, sr, total, ka, kb))
        if theta > 0 and i < len(years) - 1:
            uk_lo = max(0.0, bk - sk + max(ka - alpha * bk, sk - bk))
            uk_hi = max(uk_lo, bk - sk + min(kb, br + total - sr))
            total = theta * max(0.0, bk + br + total - sk - sr)
            hi = min(theta * uk_hi, total)
            lo = min(theta * uk_lo, hi)
        else:
            total, lo, hi = 0.0, 0.0, 0.0
    # the witness, from the last year back: each year's capital carry-in k and transfer f
    flex: dict[int, float] = {}
    carry: dict[tuple[str, int], float] = {}
    k_out: float | None = None
    for idx in range(len(recs) - 1, -1, -1):
        y, bk, br, sk, sr, tot, ka, kb = recs[idx]
        if k_out is None:
            k = ka
            f = max(0.0, sr - br - (tot - k))
        else:
            carry_total = recs[idx + 1][5]
            d = k_out / theta - bk + sk            # k − f must equal this
            k = min(max(ka, d), max(ka, min(kb, d + alpha * bk)))
            f = k - d
            if k_out > 0:
                carry[("capital", y)] = k_out
            if carry_total - k_out > 0:
                carry[("revenue", y)] = carry_total - k_out
        f = min(max(f, 0.0), alpha * bk)
        if f > 0:
            flex[y] = f
        k_out = k if theta > 0 and idx > 0 else None
    return Settlement(True, flex=flex, carry=carry)


# --------------------------------------------------------------------------- one reason

@dataclass
class _Reason:
    """One proved reason at one start (or for the project)."""

    check: str                  # a name in PRIORITY
    text: str                   # the sentence
    brief: str                  # a short clause, for "other starts"
    start: int | None = None
    blocker: str = ""
    year: int | None = None
    limit: str = ""
    needed: float = math.nan
    available: float = math.nan
    objective_change: float = math.nan
    settlement: Settlement | None = None   # no_gain: transfers and carry-over that fit the plan with it added

    @property
    def code(self) -> str:
        return "platform" if self.check == "platform_ban" else self.check

    @property
    def short(self) -> float:
        return self.needed - self.available if not math.isnan(self.needed) else math.nan


class _Plan:
    """The scenario's tables and the audited plan, read once for every unfunded project."""

    def __init__(self, outcome: Outcome) -> None:
        if outcome.decisions is None:
            raise ValueError(f"{outcome.label or outcome.scenario.name}: no plan ({outcome.status.value})")
        self.outcome = outcome
        self.sc: Scenario = outcome.scenario
        self.pol = self.sc.policy
        self.v: View = view(self.sc)
        self.dec: Decisions = outcome.decisions
        self.acc: Accounts = outcome.accounts
        self.starts = self.dec.starts
        self.years = self.v.years
        self.platforms = funded_platforms(self.v, self.dec)
        self.original = {(pot, int(y)): float(val) for y, c, r in
                         self.sc.instance.envelope[["year", "capital", "revenue"]].itertuples(index=False)
                         for pot, val in (("capital", c), ("revenue", r))}
        total_wp = sum(self.v.weighted_population.values())
        self.sigma = {s: w / total_wp for s, w in self.v.weighted_population.items()}
        self.plan_draw = sum(self.acc.allocation.values())
        self.requires: dict[str, list[tuple[str, int]]] = {}
        for p, q, lag in self.v.dependencies:
            self.requires.setdefault(p, []).append((q, lag))
        self.group_funded = {self.v.projects[p].group: p for p in self.starts if self.v.projects[p].group}
        systems = self.sc.instance.systems
        self.names = {str(k): str(n).strip() for k, n in zip(systems["system_id"], systems["name"])
                      if isinstance(n, str)}

    def system(self, s: str) -> str:
        """A system as a planner names it in a sentence: its name (``NHS Devon ICB``), or ``system <id>``."""
        name = self.names.get(s, "")
        return name if name else f"system {s}"

    def allowed(self, p: Project) -> tuple[list[int], list[int]]:
        """(starts the rules allow, those whose profile also ends by the last envelope year)."""
        if p.committed is not None and self.pol.commitments.mode != "ignore":
            cand = [p.committed]
        else:
            cand = list(range(p.earliest, p.latest + 1))
        last = self.years[-1]
        return cand, [s for s in cand if s + max(p.profile, default=0) <= last]

    def pot_label(self, pot: str, year: int) -> str:
        """'2026/27 capital envelope of £182.000m (£532.000m before the scenario's changes)'."""
        if pot == "capital and revenue":
            now = sum(self.v.envelope[(q, year)] for q in ("capital", "revenue"))
            was = sum(self.original.get((q, year), 0.0) for q in ("capital", "revenue"))
        else:
            now, was = self.v.envelope[(pot, year)], self.original.get((pot, year), self.v.envelope[(pot, year)])
        text = f"{fy(year)} {pot} envelope of {_m(now)}"
        if abs(now - was) > 5e-7:
            text += f" ({_m(was)} before the scenario's changes)"
        return text

    def revenue_note(self, pot: str) -> str:
        """What national revenue counts besides the projects' revenue, when the centre pays something."""
        if pot == "capital":
            return ""
        extra = []
        if self.pol.fee.rate > 0 and self.pol.fee.payer != "system":
            extra.append("the centre's part of the access fee")
        if self.pol.revenue_consequences.payer == "centre":
            extra.append("run costs once live")
        return f" (national revenue also pays {' and '.join(extra)})" if extra else ""

    def flex_note(self) -> str:
        b = self.pol.budget
        parts = []
        if b.carry_over > 0:
            parts.append(f"carry-over ({b.carry_over:g} of unspent money)")
        if b.capital_to_revenue > 0:
            parts.append(f"capital-to-revenue transfers (up to {b.capital_to_revenue:g} of capital)")
        return f", even with the best use of {' and '.join(parts)}" if parts else ""


def _alone_local(pl: _Plan, p: Project, start: int, alone: Accounts) -> list[_Reason]:
    """Its own local match capital and local revenue against its system's yearly limits."""
    out = []
    s = p.system
    worst: tuple[float, int, float] | None = None
    for y in pl.years:
        used = alone.local_capital.get((s, y), 0.0)
        if over(used, pl.v.local_capital[s]) and (worst is None or used - pl.v.local_capital[s] > worst[0]):
            worst = (used - pl.v.local_capital[s], y, used)
    if worst is not None:
        _, y, used = worst
        cap = pl.v.local_capital[s]
        out.append(_Reason(
            "local_capital",
            f"its own local match alone needs {_m(used)} of capital in {fy(y)} (start {fy(start)}), more than "
            f"{pl.system(s)}'s local_capital of {_m(cap)} a year — short by {_m(used - cap)}",
            f"its own local match exceeds {s}'s local_capital", start, s, y, "local_capital", used, cap))
    worst = None
    for y in pl.years:
        used = alone.headroom_use.get((s, y), 0.0)
        if over(used, pl.v.headroom[s]) and (worst is None or used - pl.v.headroom[s] > worst[0]):
            worst = (used - pl.v.headroom[s], y, used)
    if worst is not None:
        _, y, used = worst
        head = pl.v.headroom[s]
        out.append(_Reason(
            "local_revenue",
            f"what {pl.system(s)} would pay for it alone in {fy(y)} (start {fy(start)}) — {_parts(pl, alone, y)} — "
            f"comes to {_m(used)}, more than its revenue_headroom of {_m(head)} a year — short by {_m(used - head)}",
            f"its own local revenue exceeds {s}'s revenue_headroom", start, s, y, "revenue_headroom", used, head))
    return out


def _parts(pl: _Plan, acc: Accounts, year: int) -> str:
    """What a system pays in a year, by part (from the money lines)."""
    lr = run = fs = 0.0
    for line in acc.lines:
        if line[1] == year:
            lr += line[5]
            run += line[6] if pl.pol.revenue_consequences.payer == "system" else 0.0
            fs += line[8]
    parts = []
    if lr > 0:
        parts.append(f"local revenue match {_m(lr)}")
    if run > 0:
        parts.append(f"run costs once live {_m(run)} (revenue_consequences.payer = \"system\")")
    if fs > 0:
        parts.append(f"its part of the access fee {_m(fs)} (fee.payer = \"{pl.pol.fee.payer}\")")
    return ", ".join(parts) or "nothing"


def _fair_cap(pl: _Plan) -> float | None:
    """The hard fair-share cap multiple γ when a cap applies with hard enforcement, else None."""
    fs = pl.pol.fair_share
    if fs.enforcement == "hard" and fs.mode in ("cap", "band"):
        return fs.cap
    return None


def _alone(pl: _Plan, p: Project, start: int, alone: Accounts) -> list[_Reason]:
    """Checks of the project on its own at one start (no plan can fund it there when one holds)."""
    out = _alone_local(pl, p, start, alone)
    st = settle(alone.pot_spend, pl.v.envelope, pl.years, pl.pol.budget.capital_to_revenue,
                pl.pol.budget.carry_over)
    if not st.ok:
        assert st.year is not None
        out.append(_Reason(
            "envelope",
            f"its own national draw alone needs {_m(st.needed)} of {fy(st.year)} {st.pot}{pl.revenue_note(st.pot)} "
            f"(start {fy(start)}), "
            f"more than the {pl.pot_label(st.pot, st.year)} can hold{pl.flex_note()} — short by "
            f"{_m(st.needed - st.available)}",
            f"its own draw exceeds the {fy(st.year)} {st.pot} envelope", start, f"{st.pot} {st.year}", st.year,
            st.pot, st.needed, st.available))
    gamma = _fair_cap(pl)
    if gamma is not None and pl.pol.fair_share.basis == "envelope":
        s = p.system
        share = sum(pl.v.envelope.values()) * pl.sigma[s]
        d = alone.allocation[s]
        if d - gamma * share > money_tolerance(gamma * share):
            out.append(_Reason(
                "fair_share",
                f"its own national funding, {_m(d)} over the envelope years (start {fy(start)}), exceeds "
                f"{pl.system(s)}'s hard fair-share cap of {_m(gamma * share)} ({gamma:g} × its fair share {_m(share)})",
                f"its own funding exceeds {s}'s fair-share cap", start, s, None, "fair_share_cap", d, gamma * share))
    return out


def _dependency(pl: _Plan, p: Project, start: int) -> _Reason | None:
    """Requirements not met early enough in this plan for a start."""
    if not pl.pol.dependencies.enabled:
        return None
    failing = []
    for q, lag in pl.requires.get(p.id, []):
        members = pl.v.group_members.get(q, [q])
        if any(m in pl.starts and pl.starts[m] + lag <= start for m in members):
            continue
        funded = sorted((pl.starts[m], m) for m in members if m in pl.starts)
        what = f"group {q}" if q in pl.v.group_members else q
        if funded:
            status = f"{what} starts {fy(funded[0][0])} in this plan" + (f" ({funded[0][1]})" if what != q else "")
        else:
            status = f"no member of {what} is funded in this plan" if what != q else f"{q} is not funded in this plan"
        failing.append((q, lag, status))
    if not failing:
        return None
    parts = [f"{'a project of group ' if q in pl.v.group_members else ''}{q} to have started by {fy(start - lag)} "
             f"(lag {lag} year{'s' if lag != 1 else ''}), but {status}" for q, lag, status in failing]
    return _Reason("dependency", f"starting {fy(start)} it requires " + "; and ".join(parts),
                   f"requires {', '.join(q for q, _, _ in failing)} earlier", start,
                   ", ".join(q for q, _, _ in failing))


def _beside(pl: _Plan, p: Project, start: int, alone: Accounts, base_spend: dict[tuple[str, int], float]
            ) -> list[_Reason]:
    """Checks of the project added to this plan at one start (the plan's other decisions kept)."""
    out: list[_Reason] = []
    spend = dict(base_spend)
    for k, val in alone.pot_spend.items():
        spend[k] = spend.get(k, 0.0) + val
    st = settle(spend, pl.v.envelope, pl.years, pl.pol.budget.capital_to_revenue, pl.pol.budget.carry_over)
    dep = _dependency(pl, p, start)
    if dep is not None:
        out.append(dep)
    s = p.system
    # local room
    for limit, used_plan, used_own, cap in (
            ("local_capital", pl.acc.local_capital, alone.local_capital, pl.v.local_capital[s]),
            ("revenue_headroom", pl.acc.headroom_use, alone.headroom_use, pl.v.headroom[s])):
        worst: tuple[float, int, float, float] | None = None
        for y in pl.years:
            others, own = used_plan.get((s, y), 0.0), used_own.get((s, y), 0.0)
            if own > 0 and over(others + own, cap) and (worst is None or others + own - cap > worst[0]):
                worst = (others + own - cap, y, others, own)
        if worst is not None:
            short, y, others, own = worst
            n = sum(1 for q in pl.starts if pl.v.projects[q].system == s)
            what = "local match capital" if limit == "local_capital" else "local revenue (match, run costs, fees)"
            out.append(_Reason(
                "local_room",
                f"it fits {pl.system(s)}'s local limits on its own, but the {n} project{'s' if n != 1 else ''} "
                f"this plan funds there use {_m(others)} of its {fy(y)} {limit} of {_m(cap)}, and it needs "
                f"{_m(own)} of "
                f"{what} there (start {fy(start)}) — short by {_m(short)}; the national pots "
                + ("would have room for it" if st.ok else "are full too"),
                f"{s}'s {limit} is used by its funded projects", start, s, y, limit, own, cap - others))
            break
    # fair shares (hard)
    fsp = pl.pol.fair_share
    gamma = _fair_cap(pl)
    d = alone.allocation[s]
    if fsp.enforcement == "hard" and fsp.mode in ("floor", "cap", "band") and d > 0:
        base = sum(pl.v.envelope.values()) if fsp.basis == "envelope" else pl.plan_draw + d
        share = base * pl.sigma[s]
        a_s = pl.acc.allocation[s] + d
        if gamma is not None and a_s - gamma * share > money_tolerance(gamma * share):
            out.append(_Reason(
                "fair_share_room",
                f"beside this plan's projects, {pl.system(s)}'s national funding would reach {_m(a_s)} (start "
                f"{fy(start)}), above its hard fair-share cap of {_m(gamma * share)} ({gamma:g} × its fair share)",
                f"{s}'s fair-share cap would break", start, s, None, "fair_share_cap", d, gamma * share - (a_s - d)))
        elif fsp.basis == "spend" and fsp.mode in ("floor", "band"):
            for o in sorted(pl.sigma):
                if o == s:
                    continue
                floor = fsp.floor * base * pl.sigma[o]
                if floor - pl.acc.allocation[o] > money_tolerance(floor):
                    out.append(_Reason(
                        "fair_share_room",
                        f"adding it raises the plan's national funding to {_m(base)} (start {fy(start)}), and with "
                        f"it every fair share: {pl.system(o)}'s {_m(pl.acc.allocation[o])} would fall below its hard "
                        f"fair-share floor of {_m(floor)}",
                        f"{o}'s fair-share floor would break", start, o, None, "fair_share_floor",
                        floor, pl.acc.allocation[o]))
                    break
    # national pots
    if not st.ok:
        assert st.year is not None
        own = sum(val for (pot, y), val in alone.pot_spend.items()
                  if y == st.year and (pot == st.pot or st.pot == "capital and revenue"))
        left = st.available - (st.needed - own)
        out.append(_Reason(
            "outcompeted",
            f"every rule allows it on its own and beside this plan's projects, but the national money is taken: "
            f"starting {fy(start)} it needs {_m(own)} of {fy(st.year)} {st.pot}{pl.revenue_note(st.pot)}, where this "
            f"plan leaves "
            f"{_m(max(left, 0.0))} of the {pl.pot_label(st.pot, st.year)}{pl.flex_note()} — short by "
            f"{_m(st.needed - st.available)}",
            f"the {fy(st.year)} {st.pot} money is taken", start, f"{st.pot} {st.year}", st.year, st.pot,
            own, max(left, 0.0)))
    else:
        out.append(_Reason("no_gain", "", "nothing stops it", start, settlement=st))
    return out


def _static(pl: _Plan, p: Project) -> list[_Reason]:
    """Start-independent checks: the platform rule and the alternatives group."""
    out = []
    mode = pl.pol.standardisation.mode
    s, k = p.system, p.platform
    present = pl.v.present_platforms[s]
    if k and mode == "no-divergence" and present and k not in present:
        out.append(_Reason(
            "platform_ban",
            f"it installs {k}, but {pl.system(s)} already runs {', '.join(sorted(present))}; the one-platform rule "
            f"(standardisation no-divergence) forbids a new platform there: no plan can fund it",
            f"{k} is new to {s}", None, ", ".join(sorted(present)), limit="absolute"))
    if pl.pol.alternatives.enabled and p.group and p.group in pl.group_funded:
        q = pl.group_funded[p.group]
        out.append(_Reason(
            "alternative",
            f"its alternatives group {p.group} allows one project, and this plan funds {q} "
            f"(starting {fy(pl.starts[q])}) from it",
            f"{q} is funded from group {p.group}", None, q))
    if k and (mode == "single" or (mode == "no-divergence" and not present)):
        others = sorted(pl.platforms.get(s, set()) - {k})
        if others:
            users = sorted(q for q in pl.starts if pl.v.projects[q].system == s and pl.v.projects[q].platform in others)
            rule = ("the one-platform rule (standardisation single) allows one platform per system" if mode == "single"
                    else f"{pl.system(s)} runs no platform yet and the one-platform rule (no-divergence) lets it "
                         "adopt only one")
            out.append(_Reason(
                "platform",
                f"it installs {k}, but this plan funds {', '.join(others)} in {pl.system(s)} ({', '.join(users)}); "
                f"{rule}",
                f"{', '.join(others)} is funded in {s}", None, ", ".join(others), limit="relative"))
    return out


def _with(pl: _Plan, p: Project, alone: Accounts) -> Accounts:
    """The plan's audited accounts with the project's own (at one start) added — accounts are sums over
    projects — and, for a withdrawn commitment kept, its withdrawal cost taken off."""
    def add(a: dict, b: dict) -> dict:
        out = dict(a)
        for k, val in b.items():
            out[k] = out.get(k, 0.0) + val
        return out

    pot = add(pl.acc.pot_spend, alone.pot_spend)
    if p.id in pl.dec.withdrawn:
        key = (pl.pol.commitments.withdrawal_pot, pl.years[0])
        pot[key] -= p.withdrawal_cost
    return Accounts(lines=pl.acc.lines + alone.lines, pot_spend=pot,
                    local_capital=add(pl.acc.local_capital, alone.local_capital),
                    headroom_use=add(pl.acc.headroom_use, alone.headroom_use),
                    allocation=add(pl.acc.allocation, alone.allocation), value={**pl.acc.value, **alone.value},
                    revenue_tail=add(pl.acc.revenue_tail, alone.revenue_tail))


def _objective_change(pl: _Plan, p: Project, r: _Reason) -> _Reason:
    """A start with room for the project: the audit's checks and objective, on the plan with it added (its
    transfers and carry-over from ``settle``), give the objective change — or, if a rule breaks after all,
    that rule."""
    st = r.settlement
    assert r.start is not None
    assert st is not None
    withdrawn = [w for w in pl.dec.withdrawn if w != p.id]
    dec = Decisions(starts={**pl.starts, p.id: r.start}, withdrawn=withdrawn, flex=st.flex, carry=st.carry)
    a = Audit(pl.sc, dec, pl.v, _with(pl, p, account(pl.sc, Decisions(starts={p.id: r.start}), pl.v)))
    for family in ordered(AUDIT_ORDER):
        assert family.check is not None
        broken = family.check(a)
        if broken:      # not expected: every rule was checked above
            code = _BESIDE_FAMILY.get(family.name, "outcompeted")
            return _Reason(code, f"adding it at {fy(r.start)} breaks a rule in the audit: {broken[0]}",
                           broken[0], r.start, family.name)
    penalties: dict[str, float] = {}
    for family in FAMILIES:
        if family.penalty is not None:
            penalties.update(family.penalty(a))
    objective, terms = objective_family.recompute(a, penalties)
    delta = objective - pl.outcome.objective
    value = a.acc.value.get(p.id, 0.0) if a.acc is not None else 0.0
    before = pl.outcome.audit.penalties if pl.outcome.audit is not None else {}
    changes = {k: terms.get(k, 0.0) - before.get(k, 0.0) for k in sorted(set(terms) | set(before))}
    return _no_gain(pl, r.start, delta, value, {k: t for k, t in changes.items() if abs(t) > 1e-9})


def _no_gain(pl: _Plan, start: int, delta: float, value: float, terms: dict[str, float]) -> _Reason:
    """The sentence for a start where nothing stops the project, from the audited objective change and the
    change of each objective term (spend weight, penalties, tiers)."""
    changes = ", ".join(f"{k} {t:+,.4g}" + (" (subtracted)" if k in _COST_TERMS else "") for k, t in terms.items())
    changes = f"; objective terms change: {changes}" if changes else ""
    out = pl.outcome
    lead = (f"nothing stops it: this plan with it added at {fy(start)} passes every check of the audit (every rule, "
            f"national pots and local limits)")
    if out.status == SolutionStatus.HEURISTIC:
        why = (f"but the rule-based allocation ({pl.pol.allocation.method}) did not fund it; adding it would change "
               f"the objective by {delta:+,.4g} points{changes}")
    elif delta <= 0:
        why = (f"but adding it would change the objective by {delta:+,.4g} points (its discounted need-weighted "
               f"benefit is {value:,.4g}{changes})")
    else:
        gap = out.gap if out.gap is not None else math.nan
        rel = delta / max(abs(out.objective), 1e-12)
        why = (f"and adding it would raise the objective by {delta:+,.4g} points ({rel:.3%} of it), within what the "
               f"solver was allowed to leave (status {out.status.value}, gap {gap:.3%}): re-solve with a smaller "
               "gap")
    return _Reason("no_gain", f"{lead}, {why}", "nothing stops it", start, objective_change=delta)


def _first(pl: _Plan, p: Project, start: int, static: list[_Reason], base_spend: dict[tuple[str, int], float]
           ) -> _Reason:
    """The first reason (in ``PRIORITY`` order) that holds at one start."""
    alone = account(pl.sc, Decisions(starts={p.id: start}), pl.v)
    found = _alone(pl, p, start, alone) + static
    if not found:       # every check beside the plan comes after these in the order
        found = _beside(pl, p, start, alone, base_spend)
    first = min(found, key=lambda r: _RANK[r.check])
    return first if first.start is not None else dataclasses.replace(first, start=start)


_BY_START = ("local_capital", "local_revenue", "envelope", "fair_share", "dependency", "local_room",
             "fair_share_room", "outcompeted")
"""Reasons that depend on the start (the others hold at every start or none)."""


def _window(pl: _Plan, p: Project, cand: list[int], starts: list[int]) -> str:
    """What fixes the allowed starts, as a phrase."""
    if p.committed is not None and pl.pol.commitments.mode != "ignore":
        return f"its signed commitment fixes its start at {fy(p.committed)}"
    n = max(p.profile, default=0) + 1
    if len(starts) < len(cand):
        return (f"its window is {fy(p.earliest)}–{fy(p.latest)} and its {n}-year cost profile must end by "
                f"{fy(pl.years[-1])}, so it may start only {', '.join(fy(s) for s in starts)}")
    if p.earliest == p.latest:
        return f"its window allows only {fy(p.earliest)}"
    return f"its window is {fy(p.earliest)}–{fy(p.latest)}"


def _explain(pl: _Plan, p: Project) -> _Reason:
    """The proved reason of one unfunded project (see the module docstring for the order)."""
    if p.id in pl.sc.excluded:
        return _Reason("excluded", "the scenario excludes it (forced out): no plan may fund it", "excluded")
    cand, starts = pl.allowed(p)
    last = pl.years[-1]
    n = max(p.profile, default=0) + 1
    if not starts:      # validation requires a start that fits: only for instances built without it
        return _Reason("no_start", f"{_window(pl, p, cand, starts)}: no allowed start lets its {n}-year cost profile "
                       f"end by {fy(last)}, the last envelope year, so no plan can fund it", "no start fits",
                       blocker=fy(last), year=last, limit="envelope years")
    static = _static(pl, p)
    base_spend = dict(pl.acc.pot_spend)
    if p.id in pl.dec.withdrawn:     # keeping the commitment saves its withdrawal cost
        key = (pl.pol.commitments.withdrawal_pot, pl.years[0])
        base_spend[key] = base_spend.get(key, 0.0) - p.withdrawal_cost
    firsts = [_first(pl, p, s, static, base_spend) for s in starts]
    # the closest start: its first reason latest in the order, then the smallest shortfall, then the latest start
    firsts.sort(key=lambda r: (-_RANK[r.check], _nan_last(r.short), -(r.start or 0)))
    chosen = firsts[0]
    if chosen.check == "no_gain":
        gains = [_objective_change(pl, p, r) for r in firsts if r.check == "no_gain"]
        best = max((g for g in gains if g.check == "no_gain"), key=lambda g: g.objective_change, default=None)
        chosen = best if best is not None else gains[0]
    others = [r for r in firsts if r.start != chosen.start and r.check != chosen.check]
    if chosen.check not in _BY_START:
        return chosen if chosen.check == "no_gain" else dataclasses.replace(chosen, start=None)
    if others:
        chosen.text += "; at its other allowed start" + ("s" if len(others) > 1 else "") + " " + "; ".join(
            f"{fy(r.start)}, {r.brief}" for r in others if r.start is not None)
    elif len(starts) > 1:
        chosen.text += f" (its closest of {len(starts)} allowed starts; each fails the same way)"
    # would a start the rules do not allow (outside its window, or other than its committed start) do better?
    outside = [h for h in pl.years if h not in starts and h + n - 1 <= last]
    beside = _RANK["alternative"]
    better = [r for r in (_first(pl, p, h, static, base_spend) for h in outside)
              if r.check == "no_gain" or _RANK[chosen.check] < beside <= _RANK[r.check]]
    if better:
        best_h = max(better, key=lambda r: (_RANK[r.check], r.start or 0))
        assert best_h.start is not None
        if best_h.check == "no_gain":
            then = "it would fit beside this plan's projects and break no rule"
        else:
            then = f"it would fit on its own (so some plan could fund it), though in this plan {best_h.brief}"
        return _Reason("start_window", f"{chosen.text}. But {_window(pl, p, cand, starts)}: starting "
                       f"{fy(best_h.start)} instead, {then}", f"its start window (best outside: {best_h.start})",
                       chosen.start, f"start {best_h.start}", chosen.year, chosen.limit, chosen.needed,
                       chosen.available)
    if len(starts) == 1:
        chosen.text += f" ({_window(pl, p, cand, starts)})"
    return chosen


def _nan_last(x: float) -> float:
    return math.inf if math.isnan(x) else x


def _threshold_note(thresholds: pd.DataFrame | None, p: str) -> str:
    """What the thresholds analysis found would bring the project in."""
    if thresholds is None or thresholds.empty or "project_id" not in thresholds.columns:
        return ""
    rows = thresholds[(thresholds["project_id"] == p)
                      & (thresholds.get("group", pd.Series("unfunded", index=thresholds.index)) == "unfunded")]
    parts = []
    for r in rows.itertuples(index=False):
        measure, result = getattr(r, "measure", ""), str(getattr(r, "result", ""))
        unit = "points a year" if measure == "benefit" else "£m"
        if result in ("threshold", "threshold range") and not math.isnan(float(getattr(r, "factor", math.nan))):
            at, change, f = float(r.at_threshold), float(r.change), float(r.factor)
            if measure == "benefit":
                parts.append(f"a benefit of {at:,.4g} {unit} ({change:+,.4g}, ×{f:.3g})")
            else:
                parts.append(f"a total cost of {_m(at)} ({'−' if change < 0 else '+'}{_m(abs(change))}, ×{f:.3g})")
        elif result == "none within bracket" and measure == "benefit":
            parts.append(f"no benefit increase up to ×{float(getattr(r, 'bracket_high', math.nan)):g} would")
        elif result == "none within bracket":
            parts.append(f"no cost cut down to ×{float(getattr(r, 'bracket_low', math.nan)):g} would")
    if not parts:
        return ""
    brings = [x for x in parts if not x.startswith("no ")]
    none = [x for x in parts if x.startswith("no ")]
    text = ""
    if brings:
        text = "the thresholds analysis finds " + " or ".join(brings) + " would bring it in"
    if none:
        text += ("; " if text else "the thresholds analysis finds ") + "; ".join(none) + " bring it in"
    return text


def unfunded_reasons(outcome: Outcome, thresholds: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per project the plan does not fund (in the order of projects.csv): its reason ``code`` (one of
    ``CODES``), a ``reason`` sentence with the amounts, and the detail columns of ``REASON_COLUMNS``. Each code
    is proved from the tables and the audited plan (module docstring). ``thresholds``, the ``thresholds`` table
    of the thresholds analysis (``solver.analyses.borderline``), adds to the money codes the benefit or cost
    change it found would bring the project in."""
    pl = _Plan(outcome)
    rows = []
    for p_id in outcome.scenario.instance.projects["project_id"]:
        if p_id in pl.starts:
            continue
        p = pl.v.projects[p_id]
        r = _explain(pl, p)
        text = r.text[0].upper() + r.text[1:] + "."
        if r.code in _THRESHOLD_CODES and r.limit != "absolute":
            note = _threshold_note(thresholds, p_id)
            if note:
                text += f" {note[0].upper() + note[1:]}."
        withdrawn = p_id in pl.dec.withdrawn
        if withdrawn:
            text = (f"Its signed commitment (start {fy(p.committed or pl.years[0])}) was withdrawn at a cost of "
                    f"{_m(p.withdrawal_cost)}. " + text)
        rows.append({
            "project_id": p_id, "code": r.code, "reason": text, "start": r.start, "blocker": r.blocker,
            "year": r.year, "limit": r.limit, "needed": r.needed, "available": r.available, "short": r.short,
            "objective_change": r.objective_change, "withdrawn": withdrawn,
        })
    frame = pd.DataFrame(rows, columns=REASON_COLUMNS)
    _dead_requirements(frame, pl)
    for col in ("start", "year"):
        frame[col] = frame[col].astype("Int64")
    return frame


def cannot_be_funded(frame: pd.DataFrame) -> pd.Series:
    """Rows of ``unfunded_reasons`` whose reason proves that no plan can fund the project (an "on its own"
    code, a platform new to a system that runs another, or a requirement no plan can fund)."""
    return frame["code"].isin(ALONE_CODES) | (frame["code"].isin(("platform", "dependency"))
                                              & (frame["limit"] == "absolute"))


def _dead_requirements(frame: pd.DataFrame, pl: _Plan) -> None:
    """A ``dependency`` whose requirement (a project, or every member of a group) no plan can fund says so,
    and is marked ``absolute``: funding the requirement earlier cannot help (checked in order, so a chain of
    requirements that no plan can fund is followed)."""
    for _ in range(len(frame)):
        dead = set(frame.loc[cannot_be_funded(frame), "project_id"])
        changed = False
        for i in frame.index[(frame["code"] == "dependency") & (frame["limit"] != "absolute")]:
            reqs = [q for q in str(frame.at[i, "blocker"]).split(", ") if q]
            gone = [q for q in reqs if all(m in dead for m in pl.v.group_members.get(q, [q]))]
            if gone:
                frame.at[i, "reason"] = str(frame.at[i, "reason"]).rstrip(".") + (
                    f"; and no plan can fund {' or '.join(gone)} (see its reason), so no plan can fund this one")+ "."
                frame.at[i, "limit"] = "absolute"
                changed = True
        if not changed:
            return
