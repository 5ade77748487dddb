r"""Robustness: how much of a plan survives uncertain costs, benefits and need weights.

Each *sample* is a perturbed copy of the instance — costs with lognormal overruns by project kind,
benefits and category weights drawn from intervals — defined, with its defaults and seeding, in
``solver.analyses.sampling``.

Every sample is a ``Task`` (the scenario with one ``variants.Sample``) re-solved, warm-started
from the nominal plan, with the engine's ``solve_many`` on the analysis's ``Context`` (sampling,
draws and plan re-checks: ``solver.analyses.sampling``). The nominal plan is ``base_outcome``, the
scenario's own solve. The analysis reports

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
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from solver.analyses.engine import (
    Analysis,
    Context,
    analysis_context,
    base_outcome,
    bound_of,
    gap_of,
    header,
    jsonable,
    require_optimising,
    solve_record,
)
from solver.analyses.sampling import (
    CATEGORIES,
    DEFAULT_BENEFIT_RANGE,
    TOL,
    SampleResult,
    Sampling,
    clean_float,
    core_table,
    hamming,
    regret_band,
    run_samples,
    sample_figures,
    wilson,
)
from solver.data.scenario import Scenario
from solver.errors import InputError
from solver.pipeline.decisions import Decisions
from solver.pipeline.outcome import Outcome


def base_record(outcome: Outcome) -> dict[str, object]:
    """The base solve's figures for summary.json: the engine's record, with termination and model size."""
    return {**solve_record(outcome, label="base"), "termination": outcome.termination.value,
            "model_size": dict(outcome.model_size)}


def sample_table(results: Sequence[SampleResult], nominal: Decisions, plan_index: int = 0) -> pd.DataFrame:
    """Per sample: the sample optimum, and the nominal plan's feasibility, value and regret band."""
    rows = []
    for r in results:
        o, chk = r.outcome, r.checks[plan_index]
        reg, lo, hi = regret_band(o, chk)
        row = {
            "sample": r.index, "feasible": o.has_plan, "status": o.status.value,
            "objective": clean_float(o.objective), "bound": clean_float(bound_of(o)), "gap": clean_float(gap_of(o)),
            "funded": len(o.funded) if o.has_plan else pd.NA,
            "hamming_to_nominal": hamming(o.funded, nominal.starts) if o.has_plan else pd.NA,
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


def overspend_quantiles(values: pd.Series) -> dict[str, float]:
    """Median, 80th and 90th percentile and maximum of a plan's overspend over the samples (£m)."""
    x = values.to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    if not x.size:
        return {}
    q = np.percentile(x, [50, 80, 90])
    return {"median": round(float(q[0]), 6), "p80": round(float(q[1]), 6), "p90": round(float(q[2]), 6),
            "max": round(float(x.max()), 6)}


def robustness(scenario: Scenario, *, samples: int = 100, seed: int = 0, workers: int = 1,
               cost_sigma: Mapping[str, float] | None = None,
               benefit_range: tuple[float, float] = DEFAULT_BENEFIT_RANGE,
               weight_ranges: Mapping | None = None, context: Context | None = None, **solver: object) -> Analysis:
    """Sample uncertain costs, benefits and category weights; re-solve each sample; report each
    project's core index (with a 95% Wilson interval) and the nominal plan's feasibility rate and
    regret under the samples.

    ``cost_sigma``: lognormal σ by project kind (``None``: ``sampling.DEFAULT_COST_SIGMA``; ``"*"``
    for other kinds). ``benefit_range``: multiplicative uniform interval on benefits.
    ``weight_ranges``: ``{category: (low, high)}`` for the need category weights (``None``: ±20%
    of the policy's). ``**solver``: ``backend``, ``time_limit``, ``mip_gap``, ``threads``,
    ``seed`` (solver seed) as in ``solver.api.solve``. Samples run on ``context`` (or a local
    pool of ``workers`` processes); results do not depend on the number of workers. Raises
    ``InfeasibleError`` if the nominal scenario is infeasible.

    Tables: ``projects`` (core index, interval, class, nominal start) and ``samples`` (per-sample
    optimum, gap, nominal feasibility and value, regret band, drawn factors).
    """
    require_optimising(scenario, "robust")
    t_start = time.perf_counter()
    if samples < 1:
        raise InputError(None, f"samples must be >= 1 (got {samples})")
    if workers < 1:
        raise InputError(None, f"workers must be >= 1 (got {workers})")
    sampling = Sampling.of(scenario, cost_sigma, benefit_range, weight_ranges)
    scenario = scenario.with_solver(**solver)
    with analysis_context(context, workers) as ctx:
        nominal = base_outcome(scenario, ctx)
        assert nominal.decisions is not None
        t_nominal = time.perf_counter() - t_start
        results = run_samples(scenario, sampling.draw(scenario, samples, seed), [nominal.decisions],
                              start=nominal.decisions, context=ctx, label="robustness samples")
        n_workers = ctx.workers
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
    summary = header(scenario, "robust", sampling.parameters(samples, seed))
    summary.update({
        "base": base_record(nominal),
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
            "sample_solve_seconds": sum(r.outcome.solve_seconds for r in results), "workers": n_workers,
        },
    })
    return Analysis(name="robust", tables={"projects": projects, "samples": table},
                    summary=jsonable(summary))  # type: ignore[arg-type]
