"""The policy metrics: one row of figures per plan, the same for every policy, so policies compare.

Every figure is computed from the audited plan (``Outcome.accounts``, the audit's recomputation from
the tables), never from a solver object. Definitions (docs/policies.md):

- ``objective``: the plan's value under its own policy; ``need_first_value``: its need-weighted
  discounted benefit under the reference policy's weights and horizon (need-first by default: the
  common yardstick); ``pct_of_need_first``: that as a % of the reference plan's.
- ``benefit_given_up`` and ``cat01_money_change``: the price of the policy against the reference —
  yardstick benefit lost, and national money to category-0/1 organisations gained (+) or lost (−).
- ``cat01_share``: share of national delivery funding going to projects at category-0/1 organisations.
- ``gini`` and ``theil``: inequality of national funding per weighted head across systems, each
  system weighted by its weighted population (0 = every head gets the same; Gini ≤ 1).
- ``systems_below_50pct`` / ``_90pct``: systems funded below 50% / 90% of their fair share of the
  envelope's national delivery money (weighted-population share × the whole envelope).
- ``systems_with_nothing``, ``cat01_trusts_with_nothing``: systems with no national funding;
  category-0/1 organisations that bid (have a candidate project) with no funded project.
- ``platforms_introduced``: (system, platform) pairs a funded project brings into a system.
- ``unspent_<pot>_<year>`` and ``unspent_total``: what is left unspent each year and pot after
  transfers and carry-over (``accounts.budget_rows``; lost when there is no carry-over).
- ``run_cost_<year>``: revenue consequences created: run costs of funded projects each year, to the
  end of the appraisal horizon.
- participatory-budgeting instances (``ballots``): ``votes_for_funded`` (approvals of funded
  projects), ``voters_satisfied`` (share of voters with at least one approved project funded) and
  ``cost_utilised`` (share of the budget spent).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from solver.pipeline.accounts import account, budget_rows, view
from solver.pipeline.outcome import Outcome
from solver.rules.standardisation import funded_platforms


def _gini(values: np.ndarray, weights: np.ndarray) -> float:
    """Weighted Gini coefficient (weights sum to anything > 0); NaN when the mean is 0."""
    w = weights / weights.sum()
    mean = float(w @ values)
    if mean <= 0:
        return math.nan
    return float((w[:, None] * w[None, :] * np.abs(values[:, None] - values[None, :])).sum() / (2 * mean))


def _theil(values: np.ndarray, weights: np.ndarray) -> float:
    """Weighted Theil T index (0 · ln 0 = 0); NaN when the mean is 0."""
    w = weights / weights.sum()
    mean = float(w @ values)
    if mean <= 0:
        return math.nan
    r = values / mean
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(r > 0, r * np.log(np.where(r > 0, r, 1.0)), 0.0)
    return float(w @ terms)


def _cat01_money(o: Outcome) -> float:
    """National delivery funding of a plan's projects at category-0/1 organisations."""
    v = view(o.scenario)
    return sum(m for p, m in o.accounts.national().items() if v.projects[p].category in (0, 1))


def metrics(outcome: Outcome, reference: Outcome | None = None,
            fair_share_envelope: pd.DataFrame | None = None) -> dict[str, object]:
    """The metrics row of one plan (``reference``: the yardstick plan of the same scenario, usually
    need-first's optimum; ``fair_share_envelope``: the envelope fair shares are taken on, e.g. a baseline's,
    by default the scenario's). Without a plan: the status and message, figures empty."""
    sc = outcome.scenario
    row: dict[str, object] = {
        "scenario": sc.name, "policy": sc.policy.name, "status": outcome.status.value,
        "termination": outcome.termination.value, "objective": outcome.objective,
        "bound": outcome.bound, "gap": outcome.gap,
        "solve_seconds": round(outcome.build_seconds + outcome.solve_seconds, 3),
    }
    if not outcome.has_plan:
        row["message"] = outcome.message
        return row
    acc = outcome.accounts
    inst = sc.instance
    v = view(sc)
    money = acc.national()
    total = sum(money.values())
    cat01 = sum(m for p, m in money.items() if v.projects[p].category in (0, 1))

    if reference is not None and reference.has_plan:
        yard = account(reference.scenario, outcome.decisions)       # type: ignore[arg-type]
        value = sum(yard.value.values())
        ref_value = sum(reference.accounts.value.values())
        row["need_first_value"] = value
        row["pct_of_need_first"] = 100.0 * value / ref_value if ref_value else math.nan
        row["benefit_given_up"] = ref_value - value
        row["cat01_money_change"] = cat01 - _cat01_money(reference)
    row["national_funding"] = total
    row["cat01_money"] = cat01
    row["cat01_share"] = cat01 / total if total else math.nan

    systems = inst.systems
    wp = systems["weighted_population"].to_numpy(dtype=float)
    alloc = np.array([acc.allocation[s] for s in systems["system_id"]])
    row["gini"] = _gini(alloc / wp, wp)
    row["theil"] = _theil(alloc / wp, wp)
    basis = sc.envelope if fair_share_envelope is None else fair_share_envelope
    envelope_total = float(basis["capital"].sum() + basis["revenue"].sum())
    ratio = alloc / (wp / wp.sum() * envelope_total) if envelope_total > 0 else np.full(len(wp), math.nan)
    row["systems_below_50pct"] = int((ratio < 0.5).sum())
    row["systems_below_90pct"] = int((ratio < 0.9).sum())
    row["systems_with_nothing"] = int((alloc <= 0).sum())
    bidders = {o for o in inst.projects["org_id"] if isinstance(o, str)}
    funded_orgs = {o for p, o in zip(inst.projects["project_id"], inst.projects["org_id"])
                   if p in outcome.funded and isinstance(o, str)}
    row["cat01_trusts_with_nothing"] = int(sum(
        1 for o, c in zip(inst.organisations["org_id"], inst.organisations["category"])
        if int(c) in (0, 1) and o in bidders and o not in funded_orgs))
    assert outcome.decisions is not None
    row["platforms_introduced"] = sum(len(ks - v.present_platforms[s])
                                      for s, ks in funded_platforms(v, outcome.decisions).items())

    assert outcome.decisions is not None
    unspent = 0.0
    budget = 0.0
    for r in budget_rows(sc, outcome.decisions, acc):
        row[f"unspent_{r['pot']}_{r['year']}"] = r["unspent"]
        unspent += float(r["unspent"])
        budget += float(r["envelope"])
    row["unspent_total"] = unspent
    run: dict[int, float] = {int(y): 0.0 for y in sc.envelope["year"]} | {y: 0.0 for y in acc.revenue_tail}
    for line in acc.lines:
        run[line[1]] = run.get(line[1], 0.0) + line[6]
    for y, amount in acc.revenue_tail.items():
        run[y] = run.get(y, 0.0) + amount
    for y in sorted(run):
        row[f"run_cost_{y}"] = run[y]

    ballots = getattr(inst, "ballots", None)
    if ballots is not None and len(ballots):
        funded = ballots["project_id"].astype(str).isin(outcome.funded)
        row["votes_for_funded"] = int(funded.sum())
        voters = ballots["voter_id"].astype(str)
        row["voters_satisfied"] = float(voters[funded].nunique() / voters.nunique())
        row["cost_utilised"] = (budget - unspent) / budget if budget else math.nan
    return row


__all__ = ["metrics"]
