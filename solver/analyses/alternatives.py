r"""Near-optimal alternatives: plans within a stated objective loss that differ as much as
possible from the optimum and from each other (modelling to generate alternatives, MGA), each
scored by its robustness under sampled uncertainty and ranked.

Method. Solve the scenario (value :math:`z`, bound :math:`\bar z`). The loss is measured against
the *bound*, so that "within 2%" holds against the true optimum, not only against the plan the
solver happened to stop at: every alternative must reach

.. math:: c^\top x + c_0 \;\ge\; \bar z - w\,|\bar z| \qquad (w = \text{within}).

When the optimum's own gap band is too wide for that (:math:`\bar z - w|\bar z| > z`), the
optimum is re-solved tighter first. Then, for each round, with :math:`F_j` the projects funded by
the optimum and the alternatives found so far and :math:`f_p = \sum_s x_{(p,s)}` the project's
funded indicator, the Hamming distance to plan :math:`j` is linear:

.. math:: d_j(x) = \sum_{p \in F_j} (1 - f_p) + \sum_{p \notin F_j} f_p = |F_j| + \sum_p (1 - 2[p \in F_j])\, f_p

and the round maximises the smallest of them (max-min, so a new plan is far from *every* earlier
one), :math:`\max\; t + \varepsilon \sum_j d_j` subject to :math:`0 \le t \le d_j` for every
:math:`j` (ε small enough that the sum only breaks ties), warm-started from the optimum (:math:`t = 0`,
so the solver always holds a plan). Only a plan with :math:`t \ge 1` is distinct; when the bound
proves :math:`t < 1` no distinct plan is left within the loss and the search stops early. Distances
count projects, not start years (a plan that only moves a start is not an alternative), so the
start years of each alternative are then re-optimised with its funded projects fixed (``polish``).
MGA rounds that stop at the time limit keep the most distant plan found (its distance bound is
reported).

Each plan (the optimum included) is then scored on the robustness samples of
``solver.analyses.robust`` (same seeds, same draws for every plan: a paired comparison): the
share of samples in which it still passes the audit (with a 95% Wilson interval), the mean core
index of the projects it funds, and its regret where it fits (with the gap band of each sample
optimum). Plans are ranked by feasibility rate, then mean core index, then objective; all three are
exact for a given set of samples (plans' values are recomputed by the audit, never read from a gap).
The objective loss of each plan against the optimum is reported with the band the optimum's gap
allows.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import pandas as pd

from solver.analyses.engine import Analysis
from solver.analyses.robust import (
    TOL,
    Variant,
    check_benefit_range,
    clean_float,
    core_table,
    draw_samples,
    extend_model,
    hamming,
    regret_band,
    resolve_cost_sigma,
    resolve_weight_ranges,
    run_samples,
    sample_figures,
    sampling_parameters,
    solve_variant,
    solver_figures,
    wilson,
)
from solver.api import solve
from solver.data.scenario import Scenario
from solver.errors import InputError
from solver.mip.formulation import Formulation, formulate, project_systems
from solver.solve.audit import audit
from solver.solve.decisions import Decisions
from solver.solve.outcome import Outcome

DEFAULT_MGA_GAP = 0.05
"""Relative gap on each MGA round's distance objective: a plan whose smallest distance is within 5%
of the best possible is different enough, and is usually found and proved long before a 0.1% proof."""


def loss_threshold(objective: float, bound: float, within: float) -> float:
    """Smallest objective an alternative may have: ``bound − within·|bound|``."""
    return bound - within * abs(bound)


def mga_variant(scenario: Scenario, form: Formulation, plans: list[Decisions], threshold: float,
                mga_gap: float | None = None) -> Variant:
    """One MGA round: the plan at least ``threshold`` in objective that maximises its smallest
    project-level Hamming distance ``t`` to ``plans``, ties broken by the sum of distances.
    ``mga_gap`` is the relative gap on that distance objective (default: the scenario's).

    ``t`` may be 0 so that ``plans[0]`` (the optimum) is a valid warm start and the solver always
    holds a plan; a result with ``t = 0`` repeats a plan, and a bound below 1 proves that no
    distinct plan is left within the loss (every distinct plan scores at least 1)."""
    m = form.model
    d = form.data
    n_projects = len(d.project_ids)
    ids = [str(p) for p in d.project_ids]
    n = m.n_cols
    t_col = n
    rows = []
    # objective row over the original objective
    obj_cols = np.flatnonzero(m.c)
    slack = 1e-6 * max(1.0, abs(threshold))
    rows.append(("mga_objective", obj_cols, m.c[obj_cols], threshold - m.offset + slack, math.inf))
    sum_c = np.zeros(n + 1)
    sum_const = 0.0
    for j, plan in enumerate(plans):
        in_plan = np.array([p in plan.starts for p in ids], dtype=float)
        coef = 1.0 - 2.0 * in_plan[d.o_project]          # per option column
        size = float(in_plan.sum())
        # t - sum coef x <= |F_j|
        rows.append((f"mga_distance[{j}]", np.concatenate([[t_col], form.x]), np.concatenate([[1.0], -coef]),
                     -math.inf, size))
        sum_c[form.x] += coef
        sum_const += size
    eps = 1.0 / (len(plans) * n_projects + 1.0)
    c = eps * sum_c
    c[t_col] = 1.0
    model = extend_model(m, columns=[("mga_min_distance", 0.0, float(n_projects), False)], rows=rows,
                         objective=(c, eps * sum_const), family="mga")
    sc = scenario if mga_gap is None else scenario.with_solver(mip_gap=mga_gap)
    return solve_variant(sc, form, model, start=plans[0])


def polish(scenario: Scenario, form: Formulation, plan: Decisions) -> Variant:
    """The best start years for exactly the projects ``plan`` funds (its distances unchanged): the
    distance objective is indifferent to start years, so an MGA plan's starts are arbitrary until
    this re-solve maximises the scenario's objective with the funded set fixed."""
    m = form.model
    d = form.data
    funded = np.array([str(p) in plan.starts for p in d.project_ids])
    col_hi = m.col_hi.copy()
    col_hi[form.x[~funded[d.o_project]]] = 0.0
    rows = []
    for p in np.flatnonzero(funded):
        opts = form.x[d.o_project == p]
        rows.append((f"mga_funded[{d.project_ids[p]}]", opts, np.ones(opts.size), 1.0, 1.0))
    model = extend_model(dataclasses.replace(m, col_hi=col_hi), rows=rows, family="mga")
    return solve_variant(scenario, form, model, start=plan)


def _differences(scenario: Scenario, optimum: Decisions, plans: list[tuple[str, Decisions]],
                 values: dict[str, dict[str, float]]) -> pd.DataFrame:
    """What each plan funds instead of the optimum: dropped, added and moved projects."""
    pr = scenario.instance.projects
    info = {p: (n, k or "", s) for p, n, k, s in zip(pr["project_id"], pr["name"], pr["kind"],
                                                          project_systems(scenario))}
    opt_value = values["optimum"]
    rows = []
    for label, plan in plans:
        val = values[label]
        for p in sorted(set(optimum.starts) | set(plan.starts)):
            a, b = optimum.starts.get(p), plan.starts.get(p)
            if a == b:
                continue
            change = "added" if a is None else "dropped" if b is None else "moved"
            name, kind, system = info[p]
            rows.append({"plan": label, "change": change, "project_id": p, "name": name, "kind": kind,
                         "system_id": system, "start_optimum": a, "start_plan": b,
                         "value_optimum": opt_value.get(p, 0.0), "value_plan": val.get(p, 0.0)})
    cols = ["plan", "change", "project_id", "name", "kind", "system_id", "start_optimum", "start_plan",
            "value_optimum", "value_plan"]
    df = pd.DataFrame(rows, columns=cols)
    for col in ("start_optimum", "start_plan"):
        df[col] = df[col].astype("Int64")
    order = {"dropped": 0, "added": 1, "moved": 2}
    df = df.assign(_o=df["change"].map(order)).sort_values(["plan", "_o", "project_id"], kind="mergesort")
    return df.drop(columns="_o").reset_index(drop=True)


def alternatives(scenario: Scenario, *, k: int = 5, within: float = 0.02, robustness_samples: int = 20,
                 seed: int = 0, workers: int = 1, cost_sigma: dict[str, float] | None = None,
                 benefit_range: tuple[float, float] = (0.8, 1.2), weight_ranges: dict | None = None,
                 mga_gap: float = DEFAULT_MGA_GAP, **solver: object) -> Analysis:
    """Up to ``k`` plans within ``within`` (relative) of the optimum's bound that differ as much as
    possible from the optimum and from each other, each scored by robustness and ranked.

    ``robustness_samples``, ``seed``, ``cost_sigma``, ``benefit_range``, ``weight_ranges`` and
    ``workers`` are as in ``robustness`` (0 samples: no robustness score, ranked by objective).
    ``**solver``: ``backend``, ``time_limit``, ``mip_gap``, ``threads``, ``seed`` as in
    ``solver.api.solve``; each MGA round gets the same time limit and stops once its distance is
    within ``mga_gap`` (relative) of the distance bound: "as different as possible" needs no
    proof to 0.1%, and proving it would take the round to its time limit on England. Raises ``InfeasibleError`` if
    the scenario is infeasible.

    Tables: ``plans`` (ranked: objective, loss with the gap band, distances, robustness score),
    ``differences`` (what each plan funds instead of the optimum), ``distances`` (pairwise
    Hamming distances), ``starts`` (every plan's funded projects and start years, and
    withdrawals), ``core`` (core index of every project over the samples) and ``samples`` (each
    plan under each sample).
    """
    t_start = time.perf_counter()
    if k < 1:
        raise InputError(None, f"k must be >= 1 (got {k})")
    if not (0 <= within < 1) or not math.isfinite(within):
        raise InputError(None, f"within must be a fraction in [0, 1) (got {within})")
    if robustness_samples < 0:
        raise InputError(None, f"robustness samples must be >= 0 (got {robustness_samples})")
    if workers < 1:
        raise InputError(None, f"workers must be >= 1 (got {workers})")
    if not (0 <= mga_gap < 1) or not math.isfinite(mga_gap):
        raise InputError(None, f"the MGA gap must be a fraction in [0, 1) (got {mga_gap})")
    sigma = resolve_cost_sigma(cost_sigma)
    brange = check_benefit_range(benefit_range)
    wranges = resolve_weight_ranges(scenario, weight_ranges)
    scenario = scenario.with_solver(**solver)

    # 1. the optimum, tight enough that "within" can be stated against its bound
    opt = solve(scenario)
    notes: list[str] = []
    tightened = False
    bound = opt.bound if opt.bound is not None else opt.objective
    if loss_threshold(opt.objective, bound, within) > opt.objective + TOL:
        tighter = min(scenario.solver.mip_gap, within / 4)
        opt = solve(scenario, mip_gap=tighter, start=opt.decisions)
        tightened = True
        bound = opt.bound if opt.bound is not None else opt.objective
        notes.append(f"optimum re-solved at gap {tighter:g}: its gap band was wider than the stated loss")
    proven = loss_threshold(opt.objective, bound, within) <= opt.objective + TOL
    threshold = loss_threshold(opt.objective, bound, within) if proven else opt.objective - within * abs(opt.objective)
    if not proven:
        notes.append("the optimum's gap is still wider than the stated loss; alternatives are within "
                     f"{within:.2%} of the plan found, not provably of the true optimum")
    t_opt = time.perf_counter() - t_start

    # 2. MGA rounds
    form = formulate(scenario)
    plans: list[tuple[str, Decisions]] = [("optimum", opt.decisions)]
    rounds: list[dict[str, object]] = []
    mga_seconds = 0.0
    for r in range(1, k + 1):
        v = mga_variant(scenario, form, [p for _, p in plans], threshold, mga_gap)
        mga_seconds += v.solve_seconds
        dists = [hamming(v.decisions.starts, p.starts) for _, p in plans] if v.decisions is not None else [0]
        if not v.found or v.decisions is None or min(dists) < 1:
            proved = v.status == "infeasible" or (v.found and v.bound < 1 - 1e-6)
            why = ("no further distinct plan exists" if proved else
                   f"the solver found no distinct plan before stopping ({v.status}; raise the time limit)")
            rounds.append({"round": r, "status": v.status, "outcome": "exhausted" if proved else "not_found"})
            notes.append(f"round {r}: {why} within {within:.2%}; stopped after {len(plans) - 1} alternative(s)")
            break
        best = polish(scenario, form, v.decisions)
        mga_seconds += best.solve_seconds
        if best.found and best.decisions is not None and set(best.decisions.starts) == set(v.decisions.starts) \
                and best.value >= v.value:
            v_plan = best.decisions
        else:   # cannot happen (the MGA plan is a feasible start); keep the MGA plan
            v_plan = v.decisions
        rounds.append({"round": r, "status": v.status, "outcome": "found", "min_distance": int(min(dists)),
                       "min_distance_bound": math.floor(v.bound + 1e-6), "gap": v.gap,
                       "value_before_polish": v.value, "polish_status": best.status})
        plans.append((f"alt {r}", v_plan))

    # 3. robustness of every plan on the same samples
    results = []
    if robustness_samples:
        draws = draw_samples(scenario, robustness_samples, seed, sigma, brange, wranges)
        results = run_samples(scenario, draws, [p for _, p in plans], start=opt.decisions, workers=workers,
                              label="alternative robustness samples")
    core = core_table(scenario, results, opt.decisions) if results else pd.DataFrame()
    core_index = dict(zip(core["project_id"], core["core_index"])) if results else {}

    # 4. tables
    reports = {label: audit(scenario, p) for label, p in plans}
    values = {label: dict(rep.accounts.value) if rep.accounts else {} for label, rep in reports.items()}
    labels = [label for label, _ in plans]
    dist = np.array([[hamming(a.starts, b.starts) for _, b in plans] for _, a in plans], dtype=int)
    rows = []
    sample_rows = []
    for i, (label, plan) in enumerate(plans):
        rep = reports[label]
        value = rep.objective
        others = [dist[i, j] for j in range(len(plans)) if j != i]
        row: dict[str, object] = {
            "plan": label, "objective": value,
            "loss": clean_float(opt.objective - value), "loss_low": clean_float(opt.objective - value),
            "loss_high": clean_float(max(opt.objective - value, bound - value)),
            "loss_pct": clean_float((opt.objective - value) / abs(bound)) if bound else 0.0,
            "loss_pct_high": clean_float(max(opt.objective - value, bound - value) / abs(bound)) if bound else 0.0,
            "within": bool(rep.ok and value >= threshold - TOL * max(1.0, abs(threshold))),
            "audit_ok": rep.ok, "funded": len(plan.starts),
            "distance_to_optimum": int(dist[i, 0]), "min_distance_to_others": int(min(others)) if others else 0,
        }
        if results:
            feas = [res.checks[i].feasible for res in results]
            nf = int(sum(feas))
            lo, hi = wilson(nf, len(results))
            regs = [regret_band(res.point, res.checks[i]) for res in results]
            regs = [g for g in regs if math.isfinite(g[0])]
            funded_ci = [core_index[p] for p in plan.starts if math.isfinite(core_index.get(p, float("nan")))]
            row.update({
                "feasible_rate": nf / len(results), "feasible_ci_low": lo, "feasible_ci_high": hi,
                "mean_core_index": float(np.mean(funded_ci)) if funded_ci else float("nan"),
                "median_overspend_national": float(np.median([res.checks[i].overspend_national for res in results])),
                "median_overspend_local": float(np.median([res.checks[i].overspend_local for res in results])),
                "mean_regret": float(np.mean([g[0] for g in regs])) if regs else float("nan"),
                "mean_regret_low": float(np.mean([g[1] for g in regs])) if regs else float("nan"),
                "mean_regret_high": float(np.mean([g[2] for g in regs])) if regs else float("nan"),
            })
            for res in results:
                chk = res.checks[i]
                reg, rlo, rhi = regret_band(res.point, chk)
                sample_rows.append({"plan": label, "sample": res.index, "feasible": chk.feasible,
                                    "value": chk.value, "sample_optimum": res.point.objective,
                                    "sample_bound": res.point.bound, "regret": reg, "regret_low": rlo,
                                    "regret_high": rhi, "overspend_national": chk.overspend_national,
                                    "overspend_local": chk.overspend_local, "violation": chk.violation})
        rows.append(row)
    plans_df = pd.DataFrame(rows)
    if results:
        key = plans_df[["feasible_rate", "mean_core_index", "objective"]].fillna(-math.inf)
        order = sorted(range(len(plans_df)), key=lambda i: (-key.iat[i, 0], -key.iat[i, 1], -key.iat[i, 2], i))
    else:
        order = sorted(range(len(plans_df)), key=lambda i: (-plans_df["objective"].iat[i], i))
    plans_df = plans_df.iloc[order].reset_index(drop=True)
    plans_df.insert(0, "rank", range(1, len(plans_df) + 1))
    differences = _differences(scenario, opt.decisions, plans[1:], values)
    distances = pd.DataFrame(dist, columns=labels)
    distances.insert(0, "plan", labels)
    starts = pd.DataFrame(
        [row for label, plan in plans
         for row in [(label, p, s, False) for p, s in sorted(plan.starts.items())]
         + [(label, p, None, True) for p in sorted(plan.withdrawn)]],
        columns=["plan", "project_id", "start", "withdrawn"])
    starts["start"] = starts["start"].astype("Int64")
    tables = {"plans": plans_df, "differences": differences, "distances": distances, "starts": starts}
    if results:
        tables["core"] = core
        tables["samples"] = pd.DataFrame(sample_rows)

    summary: dict[str, object] = {
        "analysis": "alternatives",
        "scenario": scenario.name,
        "parameters": {
            "k": k, "within": within, "threshold": threshold, "mga_gap": mga_gap,
            "loss_measured_against": "bound" if proven else "objective",
            "distance": "project-level Hamming (funded or not; start years ignored)",
            "mga_objective": "max-min distance to the optimum and earlier alternatives, ties by sum of distances",
            "ranking": ["feasible_rate desc", "mean_core_index desc", "objective desc"] if results
            else ["objective desc"],
            "robustness": sampling_parameters(robustness_samples, seed, sigma, brange, wranges)
            if robustness_samples else None,
        },
        "optimum": {**solver_figures(opt), "tightened": tightened},
        "mga_rounds": rounds,
        "sample_solves": sample_figures(results) if results else None,
        "results": {"alternatives": len(plans) - 1, "ranking": list(plans_df["plan"]),
                    "min_pairwise_distance": int(min((dist[i, j] for i in range(len(plans))
                                                      for j in range(len(plans)) if i != j), default=0))},
        "notes": notes,
        "timing": {"wall_seconds": time.perf_counter() - t_start, "optimum_seconds": t_opt,
                   "mga_solve_seconds": mga_seconds,
                   "sample_solve_seconds": sum(res.point.solve_seconds for res in results), "workers": workers},
    }
    text = _text(scenario, opt, bound, within, plans_df, differences, summary, bool(results))
    return Analysis(name="alternatives", tables=tables, summary=summary, text=text)


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.1f}%"


def _text(scenario: Scenario, opt: Outcome, bound: float, within: float, plans: pd.DataFrame,
          differences: pd.DataFrame, summary: dict, scored: bool) -> str:
    n_alt = summary["results"]["alternatives"]
    lines = [f"Alternatives for {scenario.name}: {n_alt} plan(s) within {within:.2%} of the optimum "
             f"(objective {opt.objective:,.2f}, bound {bound:,.2f}), as different as possible"]
    if scored:
        rob = summary["parameters"]["robustness"]
        lines.append(f"Ranked by robustness over {rob['samples']} samples (seed {rob['seed']}): share of samples "
                     "the plan still fits, then mean core index of its projects, then objective")
    for note in summary["notes"]:
        lines.append(f"  note: {note}")
    for r in plans.itertuples():
        head = (f"{r.rank}. {r.plan:<8} objective {r.objective:,.2f}  loss {r.loss_pct * 100:.2f}% "
                f"(≤ {r.loss_pct_high * 100:.2f}% of the true optimum)  {r.funded} projects, "
                f"{r.distance_to_optimum} differ from the optimum, ≥ {r.min_distance_to_others} from any other plan")
        lines.append(head)
        if scored:
            regret = (f"mean regret {r.mean_regret:,.2f} (gap band {r.mean_regret_low:,.2f}-{r.mean_regret_high:,.2f})"
                      if math.isfinite(r.mean_regret) else "regret n/a (never fits)")
            lines.append(f"     fits in {_pct(r.feasible_rate)} of samples (95% CI {_pct(r.feasible_ci_low)}-"
                         f"{_pct(r.feasible_ci_high)}), mean core index {r.mean_core_index:.2f}, {regret}; "
                         f"median overspend £{r.median_overspend_national:,.1f}m national, "
                         f"£{r.median_overspend_local:,.1f}m local")
        if r.plan != "optimum":
            d = differences[differences["plan"] == r.plan]
            for change, verb, col in (("dropped", "drops", "value_optimum"), ("added", "funds instead", "value_plan"),
                                      ("moved", "moves", "value_plan")):
                sel = d[d["change"] == change]
                if len(sel):
                    kinds = sel["kind"].replace("", "other").value_counts()
                    by_kind = ", ".join(f"{n} {kind}" for kind, n in kinds.head(4).items())
                    worth = (f", worth {sel[col].sum():,.1f} points" if change != "moved" else
                             f", {sel['value_plan'].sum() - sel['value_optimum'].sum():+,.1f} points")
                    shown = ", ".join(sel["project_id"].head(6))
                    more = f" +{len(sel) - 6} more" if len(sel) > 6 else ""
                    lines.append(f"     {verb} {len(sel)} ({by_kind}{worth}): {shown}{more}")
    return "\n".join(lines)
