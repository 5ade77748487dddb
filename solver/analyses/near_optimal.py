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

Every solve is an engine ``Task`` on the analysis's ``Context``: the optimum is the scenario's own
solve (``base_outcome``); an MGA round is the scenario's task with an ``extend`` (``MgaRound``, a
picklable callable building the extended model with ``MILP.extended``), and so is ``Polish``.

Each plan (the optimum included) is then scored on the robustness samples of
``solver.analyses.sampling`` (same seeds, same draws for every plan: a paired comparison): the
share of samples in which it still passes the audit (with a 95% Wilson interval), the mean core
index of the projects it funds, and its regret where it fits (with the gap band of each sample
optimum). Plans are ranked by feasibility rate, then mean core index, then objective; all three are
exact for a given set of samples (plans' values are recomputed by the audit, never read from a gap).
The objective loss of each plan against the optimum is reported with the band the optimum's gap
allows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from solver.analyses.engine import (
    Analysis,
    Context,
    Task,
    analysis_context,
    base_outcome,
    bound_of,
    gap_of,
    header,
    jsonable,
    merge,
    require_optimising,
    solve_one,
    solve_record,
)
from solver.analyses.sampling import (
    DEFAULT_BENEFIT_RANGE,
    TOL,
    Sampling,
    clean_float,
    core_table,
    hamming,
    regret_band,
    run_samples,
    sample_figures,
    wilson,
)
from solver.backends.result import SolutionStatus
from solver.data.scenario import Scenario
from solver.errors import InputError
from solver.mip.arrays import MILP
from solver.mip.formulation import Formulation, project_systems
from solver.pipeline.audit import audit
from solver.pipeline.decisions import Decisions
from solver.pipeline.outcome import Outcome

DEFAULT_MGA_GAP = 0.05
"""Relative gap on each MGA round's distance objective: a plan whose smallest distance is within 5%
of the best possible is different enough, and is usually found and proved long before a 0.1% proof."""


def loss_threshold(objective: float, bound: float, within: float) -> float:
    """Smallest objective an alternative may have: ``bound − within·|bound|``."""
    return bound - within * abs(bound)


@dataclass(frozen=True)
class MgaRound:
    """Extension for one MGA round: the plan at least ``threshold`` in objective that maximises its
    smallest project-level Hamming distance ``t`` to the funded sets ``plans``, ties broken by the
    sum of distances (a picklable callable formulation → MILP, for ``Task.extend``).

    ``t`` may be 0 so that the first plan (the optimum) is a valid warm start and the solver always
    holds a plan; a result with ``t = 0`` repeats a plan, and a bound below 1 proves that no
    distinct plan is left within the loss (every distinct plan scores at least 1)."""

    plans: tuple[frozenset[str], ...]
    threshold: float

    def __call__(self, form: Formulation) -> MILP:
        """The formulation's model with the distance column, rows and objective."""
        m = form.model
        d = form.data
        n_projects = len(d.project_ids)
        ids = [str(p) for p in d.project_ids]
        n = m.n_cols
        t_col = n
        obj_cols = np.flatnonzero(m.c)
        slack = 1e-6 * max(1.0, abs(self.threshold))
        rows = [("mga_objective", obj_cols, m.c[obj_cols], self.threshold - m.offset + slack, math.inf)]
        sum_c = np.zeros(n + 1)
        sum_const = 0.0
        for j, plan in enumerate(self.plans):
            in_plan = np.array([p in plan for p in ids], dtype=float)
            coef = 1.0 - 2.0 * in_plan[d.o_project]          # per option column
            size = float(in_plan.sum())
            # t - sum coef x <= |F_j|
            rows.append((f"mga_distance[{j}]", np.concatenate([[t_col], form.x]), np.concatenate([[1.0], -coef]),
                         -math.inf, size))
            sum_c[form.x] += coef
            sum_const += size
        eps = 1.0 / (len(self.plans) * n_projects + 1.0)
        c = eps * sum_c
        c[t_col] = 1.0
        return m.extended(columns=[("mga_min_distance", 0.0, float(n_projects), False)], rows=rows,
                          objective=(c, eps * sum_const), family="mga")


@dataclass(frozen=True)
class Polish:
    """Extension: exactly the projects ``funded`` are funded (the others fixed out), so that the
    scenario's objective picks their best start years. The distance objective is indifferent to
    start years, so an MGA plan's starts are arbitrary until this re-solve."""

    funded: frozenset[str]

    def __call__(self, form: Formulation) -> MILP:
        """The formulation's model with the funded set fixed."""
        m = form.model
        d = form.data
        funded = np.array([str(p) in self.funded for p in d.project_ids])
        rows = []
        for p in np.flatnonzero(funded):
            opts = form.x[d.o_project == p]
            rows.append((f"mga_funded[{d.project_ids[p]}]", opts, np.ones(opts.size), 1.0, 1.0))
        out = form.x[~funded[d.o_project]]
        return m.extended(rows=rows, family="mga", upper=(out, np.zeros(out.size)))


def distance_bound(outcome: Outcome) -> float:
    """The proven bound on an MGA round's distance objective (its own value when none was given)."""
    if outcome.bound is not None:
        return float(outcome.bound)
    return float(outcome.model_objective) if outcome.model_objective is not None else math.nan


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


def _mga_rounds(scenario: Scenario, optimum: Decisions, threshold: float, within: float, k: int, mga_gap: float,
                ctx: Context, notes: list[str]) -> tuple[list[tuple[str, Decisions]], list[dict[str, object]], float]:
    """Up to ``k`` MGA rounds, each plan polished: the plans (the optimum first), one record per
    round, and their solve seconds; a round that finds no distinct plan ends the search (noted)."""
    plans: list[tuple[str, Decisions]] = [("optimum", optimum)]
    rounds: list[dict[str, object]] = []
    seconds = 0.0
    with ctx.stage("alternatives: MGA rounds and start years", 2 * k):
        for r in range(1, k + 1):
            funded = tuple(frozenset(p.starts) for _, p in plans)
            v = solve_one(Task(scenario, label=f"mga round {r}", start=optimum, mip_gap=mga_gap,
                          extend=MgaRound(funded, threshold)), ctx, f"alternative {r}")
            seconds += v.solve_seconds
            dists = [hamming(v.funded, p.starts) for _, p in plans] if v.has_plan else [0]
            if not v.has_plan or v.decisions is None or min(dists) < 1:
                proved = v.status == SolutionStatus.INFEASIBLE or (v.has_plan and distance_bound(v) < 1 - 1e-6)
                why = ("no further distinct plan exists" if proved else
                       f"the solver found no distinct plan before stopping ({v.status.value}; raise the time limit)")
                rounds.append({"round": r, "status": v.status.value,
                               "outcome": "exhausted" if proved else "not_found"})
                notes.append(f"round {r}: {why} within {within:.2%}; stopped after {len(plans) - 1} alternative(s)")
                break
            best = solve_one(Task(scenario, label=f"mga round {r} polish", start=v.decisions,
                             extend=Polish(frozenset(v.funded))), ctx, f"alternative {r} start years")
            seconds += best.solve_seconds
            if best.has_plan and best.decisions is not None and best.funded == v.funded \
                    and best.objective >= v.objective:
                v_plan = best.decisions
            else:   # cannot happen (the MGA plan is a feasible start); keep the MGA plan
                v_plan = v.decisions
            rounds.append({"round": r, "status": v.status.value, "outcome": "found",
                           "min_distance": int(min(dists)),
                           "min_distance_bound": math.floor(distance_bound(v) + 1e-6), "gap": gap_of(v),
                           "value_before_polish": v.objective, "polish_status": best.status.value})
            plans.append((f"alt {r}", v_plan))
    return plans, rounds, seconds


def alternatives(scenario: Scenario, *, k: int = 5, within: float = 0.02, robustness_samples: int = 20,
                 seed: int = 0, workers: int = 1, cost_sigma: Mapping[str, float] | None = None,
                 benefit_range: tuple[float, float] = DEFAULT_BENEFIT_RANGE, weight_ranges: Mapping | None = None,
                 mga_gap: float = DEFAULT_MGA_GAP, context: Context | None = None, **solver: object) -> Analysis:
    """Up to ``k`` plans within ``within`` (relative) of the optimum's bound that differ as much as
    possible from the optimum and from each other, each scored by robustness and ranked.

    ``robustness_samples``, ``seed``, ``cost_sigma``, ``benefit_range``, ``weight_ranges`` are as in
    ``robustness`` (0 samples: no robustness score, ranked by objective); every solve runs on
    ``context`` (or a local pool of ``workers`` processes). ``**solver``: ``backend``,
    ``time_limit``, ``mip_gap``, ``threads``, ``seed`` as in ``solver.api.solve``; each MGA round
    gets the same time limit and stops once its distance is within ``mga_gap`` (relative) of the
    distance bound: "as different as possible" needs no proof to 0.1%, and proving it would take
    the round to its time limit on England. Raises ``InfeasibleError`` if the scenario is infeasible.

    Tables: ``plans`` (ranked: objective, loss with the gap band, distances, robustness score),
    ``differences`` (what each plan funds instead of the optimum), ``distances`` (pairwise
    Hamming distances), ``starts`` (every plan's funded projects and start years, and
    withdrawals), ``core`` (core index of every project over the samples) and ``samples`` (each
    plan under each sample).
    """
    require_optimising(scenario, "alternatives")
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
    sampling = Sampling.of(scenario, cost_sigma, benefit_range, weight_ranges)
    scenario = scenario.with_solver(**solver)

    with analysis_context(context, workers) as ctx:
        # 1. the optimum, tight enough that "within" can be stated against its bound
        opt = base_outcome(scenario, ctx)
        notes: list[str] = []
        tightened = False
        if loss_threshold(opt.objective, bound_of(opt), within) > opt.objective + TOL:
            tighter = min(scenario.solver.mip_gap, within / 4)
            opt = merge(opt, solve_one(Task(scenario, label="optimum tightened", start=opt.decisions, mip_gap=tighter),
                                  ctx, "re-solving the optimum"))
            tightened = True
            notes.append(f"optimum re-solved at gap {tighter:g}: its gap band was wider than the stated loss")
        assert opt.decisions is not None
        bound = bound_of(opt)
        proven = loss_threshold(opt.objective, bound, within) <= opt.objective + TOL
        threshold = loss_threshold(opt.objective, bound, within) if proven else \
            opt.objective - within * abs(opt.objective)
        if not proven:
            notes.append("the optimum's gap is still wider than the stated loss; alternatives are within "
                         f"{within:.2%} of the plan found, not provably of the true optimum")
        t_opt = time.perf_counter() - t_start

        # 2. MGA rounds, each polished
        plans, rounds, mga_seconds = _mga_rounds(scenario, opt.decisions, threshold, within, k, mga_gap, ctx, notes)

        # 3. robustness of every plan on the same samples
        results = []
        if robustness_samples:
            results = run_samples(scenario, sampling.draw(scenario, robustness_samples, seed), [p for _, p in plans],
                                  start=opt.decisions, context=ctx, label="alternative robustness samples")
        n_workers = ctx.workers
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
            regs = [regret_band(res.outcome, res.checks[i]) for res in results]
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
                reg, rlo, rhi = regret_band(res.outcome, chk)
                sample_rows.append({"plan": label, "sample": res.index, "feasible": chk.feasible,
                                    "value": chk.value, "sample_optimum": res.outcome.objective,
                                    "sample_bound": bound_of(res.outcome), "regret": reg, "regret_low": rlo,
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

    summary = header(scenario, "alternatives", {
        "k": k, "within": within, "threshold": threshold, "mga_gap": mga_gap,
        "loss_measured_against": "bound" if proven else "objective",
        "distance": "project-level Hamming (funded or not; start years ignored)",
        "mga_objective": "max-min distance to the optimum and earlier alternatives, ties by sum of distances",
        "ranking": ["feasible_rate desc", "mean_core_index desc", "objective desc"] if results
        else ["objective desc"],
        "robustness": sampling.parameters(robustness_samples, seed) if robustness_samples else None,
    })
    summary.update({
        "optimum": {**solve_record(opt, label="optimum"), "termination": opt.termination.value,
                    "model_size": dict(opt.model_size), "tightened": tightened},
        "mga_rounds": rounds,
        "sample_solves": sample_figures(results) if results else None,
        "results": {"alternatives": len(plans) - 1, "ranking": list(plans_df["plan"]),
                    "min_pairwise_distance": int(min((dist[i, j] for i in range(len(plans))
                                                      for j in range(len(plans)) if i != j), default=0))},
        "notes": notes,
        "timing": {"wall_seconds": time.perf_counter() - t_start, "optimum_seconds": t_opt,
                   "mga_solve_seconds": mga_seconds,
                   "sample_solve_seconds": sum(res.outcome.solve_seconds for res in results), "workers": n_workers},
    })
    return Analysis(name="alternatives", tables=tables, summary=jsonable(summary))  # type: ignore[arg-type]
