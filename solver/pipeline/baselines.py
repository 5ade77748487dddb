"""Rule-based allocations: the rules planners and cities use, as baselines for the optimising policies.

A policy whose ``[allocation] method`` is not ``optimise`` is allocated here, with no solver: the plan
is made on the model's own rows (``greedy_start`` with a fixed order, so every rule family holds by
construction), then decoded and audited like any plan. Its status is ``heuristic``: no bound is
claimed. Definitions (docs/policies.md):

- ``greedy``: rank the projects by ``order`` and go down the list, funding each at the earliest start
  at which every rule still holds (what must be funded — commitments, mandatory projects — first);
  a project that does not fit is skipped, the next one tried. Orders: ``value-per-cost`` (need-weighted
  discounted benefit per £m of national funding), ``value`` (need-weighted discounted benefit; on a
  participatory-budgeting instance, the votes: the utilitarian greedy rule), ``roi`` (net discounted
  financial return per £m of cost), ``need`` (need weight, then value per £m). Ties: the cheaper
  project (national funding), then the order of projects.csv. Projects whose benefit is below
  ``min_benefit`` are never funded by the rule (Warsaw's 3,000-vote threshold).
- ``capitation``: each system gets its fair share (weighted population) of each year's capital and
  revenue pots as national delivery funding (fees and run costs paid by the centre are not counted);
  commitments and mandatory projects come first and count against the share (a system whose
  commitments exceed its share gets nothing more); then each system's projects are funded down the
  ranking within its share. Money a system cannot use is not passed on.
- ``equal-shares``: the Method of Equal Shares on the instance's ballots (``ballots.csv``), with the
  completion in ``solver.pipeline.participatory``; for one-year, one-pot instances.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from solver.backends.result import SolutionStatus, Termination
from solver.data.scenario import Scenario
from solver.errors import AuditError, InputError
from solver.mip.arrays import MILP
from solver.mip.formulation import Data, Formulation, formulate
from solver.pipeline.audit import audit
from solver.pipeline.checks import obvious_causes
from solver.pipeline.encoding import decode
from solver.pipeline.greedy import greedy_start
from solver.pipeline.outcome import Outcome
from solver.rules.objective import option_returns


def allocate(scenario: Scenario, form: Formulation | None = None, label: str = "") -> Outcome:
    """The plan of the policy's rule-based allocation, audited, as an ``Outcome`` (status ``heuristic``;
    ``no_solution`` when the rule cannot make a plan that keeps every rule)."""
    t0 = time.perf_counter()
    form = form if form is not None else formulate(scenario)
    alloc = scenario.policy.allocation
    model = form.model
    if alloc.method == "equal-shares":
        x = _equal_shares(scenario, form)
    elif alloc.method == "capitation":
        x = _capitation(scenario, form)
    else:
        x = greedy_start(model, form.x, order=ranked_options(scenario, form))
    seconds = time.perf_counter() - t0
    common = dict(scenario=scenario, termination=Termination.COMPLETED, backend=f"rule:{alloc.method}",
                  build_seconds=form.build_seconds, solve_seconds=seconds, model_size=model.size(),
                  options={"method": alloc.method, "order": alloc.order, "min_benefit": alloc.min_benefit},
                  label=label)
    if x is None:
        causes = obvious_causes(scenario)
        if causes:          # no plan exists under any policy: infeasible, with the causes (explained by the caller)
            return Outcome(status=SolutionStatus.INFEASIBLE, **common, message="; ".join(causes))
        return Outcome(status=SolutionStatus.NO_SOLUTION, **common,
                       message=f"the {alloc.method} rule cannot fund what must be funded (commitments, mandatory "
                               "projects, floors) within the rules")
    dec = decode(form, x[:model.n_cols])
    report = audit(scenario, dec)
    if not report.ok:       # the plan keeps every row of the model: a disagreement with the audit is a bug
        raise AuditError(report.violations)
    return Outcome(status=SolutionStatus.HEURISTIC, objective=report.objective, decisions=dec, audit=report,
                   message=f"{alloc.method} rule ({_describe(scenario)}); no bound is claimed", **common)


def _describe(scenario: Scenario) -> str:
    alloc = scenario.policy.allocation
    if alloc.method == "equal-shares":
        return "Method of Equal Shares with its completion"
    text = f"ranked by {alloc.order}"
    return text + (f", benefit at least {alloc.min_benefit:g}" if alloc.min_benefit > 0 else "")


def _national_cost(d: Data) -> np.ndarray:
    """National delivery funding of each option (all years)."""
    return (d.nat_cap + d.nat_rev).sum(axis=1)


def ranked_options(scenario: Scenario, form: Formulation) -> np.ndarray:
    """Option columns in the rule's order: projects by the ranking key (of their earliest option), each
    project's options by start year; projects below ``min_benefit`` left out."""
    d = form.data
    alloc = scenario.policy.allocation
    nP = len(d.project_ids)
    first = np.full(nP, -1)
    for o in np.lexsort((d.o_start, d.o_project))[::-1]:     # each project's earliest option wins
        first[d.o_project[o]] = o
    has = first >= 0
    cost = np.where(has, _national_cost(d)[np.maximum(first, 0)], np.inf)
    value = np.where(has, d.o_value[np.maximum(first, 0)], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_cost = np.where(cost > 0, value / cost, np.inf)
        if alloc.order == "value":
            key = value
        elif alloc.order == "roi":
            total = (d.nat_cap + d.nat_rev + d.loc_cap + d.loc_rev).sum(axis=1)[np.maximum(first, 0)]
            ret = option_returns(d)[np.maximum(first, 0)]
            key = np.where(total > 0, ret / total, np.where(ret > 0, np.inf, -np.inf))   # free: first or last
        else:
            key = per_cost
    keys = (np.arange(nP), cost, -key) if alloc.order != "need" else (np.arange(nP), cost, -per_cost, -d.p_need_weight)
    projects = np.lexsort(keys)
    projects = projects[has[projects] & (d.p_benefit[projects] >= alloc.min_benefit)]
    rank = np.full(nP, nP)
    rank[projects] = np.arange(projects.size)
    opts = np.flatnonzero(rank[d.o_project] < nP)
    opts = opts[np.lexsort((d.o_start[opts], rank[d.o_project[opts]]))]
    return form.x[opts]


def _capitation(scenario: Scenario, form: Formulation) -> np.ndarray | None:
    """Greedy within each system's fair share of each year's pots (rows added to the model)."""
    d = form.data
    model = form.model
    rows = []
    opt_sys = d.p_system[d.o_project]
    for s, sid in enumerate(d.system_ids):
        mine = np.flatnonzero(opt_sys == s)
        for t, year in enumerate(d.years):
            for q, (pot, draw) in enumerate((("capital", d.nat_cap), ("revenue", d.nat_rev))):
                use = draw[mine, t]
                on = use != 0
                if on.any():
                    rows.append((f"capitation[{sid},{pot},{int(year)}]", form.x[mine[on]], use[on], -np.inf,
                                 float(d.fair_share[s] * d.budget[q, t])))
    ext: MILP = model.extended(rows=rows, family="capitation")
    soft = np.zeros(ext.n_rows, dtype=bool)
    soft[model.n_rows:] = True
    x = greedy_start(ext, form.x, order=ranked_options(scenario, form), soft=soft)
    if x is None or model.max_violation(x[:model.n_cols]) > 1e-7:
        return None
    return x


def _equal_shares(scenario: Scenario, form: Formulation) -> np.ndarray | None:
    """The Method of Equal Shares' projects, each at its earliest start, as a point of the model."""
    inst = scenario.instance
    d = form.data
    ballots = inst.ballots
    if len(ballots) == 0:
        raise InputError(inst.file("ballots"), "the equal-shares rule needs ballots (ballots.csv): this instance "
                                               "has none")
    if len(d.years) != 1:
        raise InputError(Path(inst.root) / "instance.toml", f"the equal-shares rule allocates one budget: this "
                                                            f"instance has {len(d.years)} envelope years")
    budget = float(d.budget[:, 0].sum())
    first: dict[str, int] = {}
    for o in np.argsort(d.o_start, kind="stable"):
        first.setdefault(str(d.project_ids[d.o_project[o]]), int(o))
    cost = _national_cost(d)
    costs = {p: float(cost[o]) for p, o in first.items()
             if d.p_benefit[d.o_project[o]] >= scenario.policy.allocation.min_benefit}
    utility = ballots["utility"] if "utility" in ballots.columns else np.ones(len(ballots))
    approvals: dict[str, dict[str, float]] = {}
    for v, p, u in zip(ballots["voter_id"].astype(str), ballots["project_id"].astype(str), utility):
        if p in costs:
            approvals.setdefault(p, {})[v] = float(u)
    from solver.pipeline.participatory import equal_shares

    # Add1 raises every voter's share by one unit of the file's currency (instance.toml records the unit of an
    # imported instance; £1k otherwise); every voter shares the budget, also those whose projects are left out
    step = 10.0 ** -int(inst.sources.get("money_unit_exponent", "3"))
    chosen = equal_shares(costs, approvals, budget, step=step, voters=int(ballots["voter_id"].nunique()))
    cols = form.x[[first[p] for p in chosen]]
    x = greedy_start(form.model, form.x, order=np.asarray(cols, dtype=int))
    if x is None or not np.all(x[cols] >= 0.5):
        return None      # another rule of the model forbids a project the method chose
    return x
