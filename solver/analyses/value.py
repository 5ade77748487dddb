r"""Value of money: what £1m more (or less) in each year and pot is worth, by re-solving.

An integer programme has no true duals, so the value of a pot is measured the only honest way:
solve the scenario again with £δm added to (and taken from) that pot and compare the optima.
Each comparison is reported with the band the two solves' gaps allow (see ``engine``), and a
comparison whose band contains 0 is re-solved tighter (to proven optimality where it can be had
within the refine time limit) before anything is ranked. The LP relaxation's dual of each
budget row is reported alongside, labelled *indicative*: it is the value of money in a model
where projects can be part-funded, which is not the decision a planner takes.

Sign of the LP dual. For a maximisation HiGHS reports a row dual :math:`y_r` equal to
:math:`\partial z / \partial b_r` of the row's active bound, so the dual of ``capital[2026]`` is
the LP objective gained per £1m of 2026 capital (≥ 0). Where the envelope also appears elsewhere
(carry-over limits :math:`\theta B_t`, fair-share rows :math:`\varphi\sigma_s B`, the flexibility
bound :math:`\alpha B^K_t`), those rows' and bounds' duals are added with the envelope's
coefficient, found by formulating the model at :math:`B + e_{t,\text{pot}}` (every row and bound
is affine in the envelope), so the figure is the LP's whole marginal value of that pot. The LP
is solved by a backend that declares ``capabilities.lp_duals`` (the scenario's, else HiGHS).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from solver.analyses.engine import (
    ZERO,
    Analysis,
    Comparison,
    Context,
    Task,
    analysis_context,
    base_outcome,
    certain_ranks,
    compare,
    header,
    jsonable,
    plan_changes,
    raise_failures,
    refine,
    refine_settings,
    relabel,
    solve_many,
    solve_record,
    time_limited,
)
from solver.backends import DEFAULT_BACKEND, backends_with, get_backend
from solver.backends.result import LpDuals
from solver.data.scenario import Scenario
from solver.data.variants import ShiftEnvelope
from solver.errors import BackendError, InputError
from solver.mip.arrays import MILP
from solver.mip.formulation import POTS, formulate
from solver.pipeline.accounts import project_system
from solver.pipeline.checks import fy
from solver.pipeline.outcome import Outcome

# --------------------------------------------------------------------------------------------
# LP relaxation duals


def lp_relaxation(model: MILP, backend: str = DEFAULT_BACKEND) -> LpDuals:
    """Solve ``model``'s LP relaxation with ``backend`` if it declares ``capabilities.lp_duals``,
    else with the default backend (HiGHS); ``BackendError`` unless the LP is solved to optimality."""
    engine = get_backend(backend)
    if not engine.capabilities.lp_duals:
        able = backends_with("lp_duals")
        if not able:
            raise BackendError("no installed backend computes LP relaxation duals; install highspy")
        engine = get_backend(able[0])
    return engine.lp_duals(model)


def _side(value: np.ndarray, lo: np.ndarray, hi: np.ndarray, d_lo: np.ndarray, d_hi: np.ndarray) -> np.ndarray:
    """Change of the active bound of each row/column (0 where neither bound is active)."""
    tol = 1e-7 * np.maximum(1.0, np.abs(value))
    at_hi = np.isfinite(hi) & (np.abs(value - np.where(np.isfinite(hi), hi, 0.0)) <= tol)
    at_lo = np.isfinite(lo) & (np.abs(value - np.where(np.isfinite(lo), lo, 0.0)) <= tol)
    return np.where(at_hi, np.nan_to_num(d_hi), np.where(at_lo, np.nan_to_num(d_lo), 0.0))


def lp_values(scenario: Scenario) -> pd.DataFrame:
    """Per year and pot, the LP relaxation's marginal value of £1m (indicative: the LP lets
    projects be part-funded). Columns year, pot, lp_row_dual (the budget row's dual alone),
    lp_dual (the whole derivative, see the module docstring)."""
    form = formulate(scenario)
    m = form.model
    lp = lp_relaxation(m, scenario.backend)
    act, rdual, xval, cdual = lp.row_activity, lp.row_dual, lp.col_value, lp.col_dual
    rows = []
    index = {n: i for i, n in enumerate(m.row_names)}
    for y in scenario.instance.years:
        for pot in POTS:
            i = index[f"{pot}[{y}]"]
            up = formulate(ShiftEnvelope(int(y), pot, 1.0).apply(scenario)).model
            env_pot = float(scenario.envelope.set_index("year").at[y, pot])
            with np.errstate(invalid="ignore"):
                d_rlo, d_rhi = up.row_lo - m.row_lo, up.row_hi - m.row_hi
                d_clo, d_chi = up.col_lo - m.col_lo, up.col_hi - m.col_hi
            total = float(rdual @ _side(act, m.row_lo, m.row_hi, d_rlo, d_rhi)
                          + cdual @ _side(xval, m.col_lo, m.col_hi, d_clo, d_chi))
            rows.append({"year": int(y), "pot": pot, "envelope": env_pot, "lp_row_dual": float(rdual[i]),
                         "lp_dual": total})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# value of money


def value_of_money(scenario: Scenario, *, delta: float = 1.0, workers: int = 1, tighten: bool = True,
                   refine_gaps: Sequence[float] | None = None, refine_time_limit: float | None = None,
                   lp: bool = True, context: Context | None = None, **solver: object) -> Analysis:
    """For each year and pot, the objective gained by £``delta``m more and lost by £``delta``m less.

    Variants (``ShiftEnvelope`` ±δ per year and pot) are solved and compared with the scenario's
    own plan (``base_outcome``); a gain or loss whose band contains 0, and any two pots whose
    order is not settled by their bands, are re-solved tighter (``refine_gaps`` in turn, default
    1e-4 then 0, each within ``refine_time_limit`` seconds, default the scenario's time limit)
    when ``tighten``. Ranks count only proven differences: equal ranks mean "not separable". A
    cut larger than the pot takes it to 0 (the applied change is reported). Runs on ``context``
    (or a new one with ``workers``).

    Tables: ``money`` (one row per year and pot). ``lp`` adds the LP-relaxation duals.
    """
    if not (delta > 0 and math.isfinite(delta)):
        raise InputError(None, f"delta must be a positive number of £m (got {delta})")
    sc = scenario.with_solver(**solver)
    gaps, tl = refine_settings(sc, refine_gaps, refine_time_limit)
    wall0 = time.perf_counter()
    env = sc.envelope.set_index("year")
    keys: list[tuple[int, str]] = [(int(y), pot) for y in sc.instance.years for pot in POTS]
    with analysis_context(context, workers) as ctx:
        base = base_outcome(sc, ctx)
        tasks: dict[str, Task] = {"base": Task(sc, (), "base")}
        applied: dict[str, float] = {}
        todo: list[str] = []
        for y, pot in keys:
            for sign in (1, -1):
                k = _vkey(y, pot, sign)
                op = ShiftEnvelope(y, pot, sign * delta)
                shifted = op.apply(sc).envelope.set_index("year")
                applied[k] = round(float(shifted.at[y, pot]) - float(env.at[y, pot]), 6)
                tasks[k] = Task(sc, (op,), k, start=base.decisions if sign > 0 else None)
                if applied[k] != 0:
                    todo.append(k)
        results = solve_many([tasks[k] for k in todo], ctx, "value of money")
        raise_failures(results)
        outs: dict[str, Outcome] = {"base": base, **dict(zip(todo, results))}
        alias = {k: "base" for k in tasks if k != "base" and applied[k] == 0}  # a pot at 0 cannot be cut
        for k in alias:
            outs[k] = relabel(base, k)
        plus = [_vkey(y, p, 1) for y, p in keys]
        minus = [_vkey(y, p, -1) for y, p in keys]
        # more money never lowers the optimum — unless fair shares are a share of the envelope, which then
        # grow with it: only otherwise are gains and losses known to be >= 0
        fs = sc.policy.fair_share
        monotone = fs.mode == "off" or fs.basis == "spend"
        comparisons: list[Comparison] = [(k, "base", monotone) for k in plus]
        comparisons += [("base", k, monotone) for k in minus if k not in alias]
        comparisons += [(a, b, False) for i, a in enumerate(plus) for b in plus[i + 1:]]
        comparisons += [(a, b, False) for i, a in enumerate(minus) for b in minus[i + 1:]]
        log: list[dict[str, object]] = []
        if tighten and gaps:
            refine(outs, tasks, comparisons, gaps=gaps, time_limit=tl, context=ctx, log=log, alias=alias,
                   label="value of money")
        base = outs["base"]        # refined: every figure below reads the same base plan

    lp_frame = lp_values(sc) if lp else None
    rank_plus = certain_ranks(plus, outs)
    rank_minus = certain_ranks(minus, outs)
    psys = project_system(sc)
    rows = []
    for (y, pot), kp, km in zip(keys, plus, minus):
        g = compare(outs[kp], outs["base"], nonnegative=monotone)
        lo = compare(outs["base"], outs[km], nonnegative=monotone) if km not in alias else ZERO
        row: dict[str, object] = {
            "year": y, "pot": pot, "envelope": float(env.at[y, pot]),
            "plus": applied[kp], "gain": g.value, "gain_low": g.low, "gain_high": g.high, "gain_verdict": g.verdict,
            "gain_per_gbpm": g.value / applied[kp] if applied[kp] else math.nan,
            "gain_rank": rank_plus[kp][0], "gain_tied_with": "; ".join(_pretty(t) for t in rank_plus[kp][1]),
            "minus": applied[km], "loss": lo.value, "loss_low": lo.low, "loss_high": lo.high,
            "loss_verdict": lo.verdict,
            "loss_per_gbpm": lo.value / -applied[km] if applied[km] else math.nan,
            "loss_rank": rank_minus[km][0], "loss_tied_with": "; ".join(_pretty(t) for t in rank_minus[km][1]),
            "plus_changes": _changes_text(plan_changes(base, outs[kp], psys)),
            "minus_changes": _changes_text(plan_changes(base, outs[km], psys)),
        }
        if lp_frame is not None:
            r = lp_frame[(lp_frame["year"] == y) & (lp_frame["pot"] == pot)].iloc[0]
            row["lp_dual"] = float(r["lp_dual"])
            row["lp_row_dual"] = float(r["lp_row_dual"])
        rows.append(row)
    money = pd.DataFrame(rows)
    money = money.sort_values(["gain_rank", "year", "pot"], kind="stable").reset_index(drop=True)

    summary = header(sc, "value_of_money", {
        "delta": delta, "workers": ctx.workers, "tighten": tighten, "refine_gaps": gaps, "refine_time_limit": tl,
        "lp": lp})
    summary.update({
        "base": solve_record(outs["base"]),
        "solves": [solve_record(outs[k], "plus" if k in plus else "minus", k) for k in plus + minus],
        "refinements": [{k: v for k, v in r.items() if k != "seconds"} for r in log],
        "time_limited": time_limited(outs, log),
        "notes": [
            "gain = objective with the pot raised − base objective; loss = base − objective with the pot cut",
            "low/high: the band the two solves' gaps allow; verdict 'undetermined' means the band contains 0",
            "ranks count only proven differences; pots whose order is not proven share a rank",
            "lp_dual is indicative only: the LP relaxation lets projects be part-funded",
        ],
    })
    summary["timing"] = {"wall_seconds": time.perf_counter() - wall0,
                         "solve_seconds": {k: o.solve_seconds for k, o in sorted(outs.items())},
                         "refine_seconds": [r["seconds"] for r in log]}
    return Analysis(name="value", tables={"money": money}, summary=jsonable(summary))  # type: ignore[arg-type]


def _vkey(year: int, pot: str, sign: int) -> str:
    return f"{pot} {year} {'+' if sign > 0 else '-'}"


def _pretty(key: str) -> str:
    pot, year, _ = key.split(" ")
    return f"{pot} {fy(int(year))}"


def _changes_text(rows: list[dict[str, object]]) -> str:
    parts = []
    for r in rows:
        mark = {"in": "+", "out": "-", "moved": "~"}[str(r["change"])]
        extra = f"({r['base_start']}->{r['new_start']})" if r["change"] == "moved" else ""
        parts.append(f"{mark}{r['project_id']}{extra}")
    return " ".join(parts)
