"""Cut ladder: solve the scenario at a ladder of envelope levels and say who misses out first.

Levels are fractions of the scenario's envelope (``start`` → ``stop`` by ``step``, or an explicit
``levels`` list) or cuts in £m (``cuts_gbpm``). By default a level scales (or cuts, pro rata)
the whole envelope; ``year`` and/or ``pot`` restrict it to one year, one pot, or one year's pot.

Solving. Levels are solved in *ascending* budget order, each warm-started from the plan of the
level below (that plan spends less, so it is feasible one level up whenever the rules are
monotone in money — and a backend simply ignores a start it cannot use). Each level's model is
formulated afresh: only row and bound values change between levels and building costs ~1% of a
solve, so the model is never patched in place. With more than one worker the ladder is split
into that many contiguous chains, solved round by round (the i-th level of every chain at once,
each warm-started from its chain's last plan). A level whose scenario is the scenario itself
(100%, or a cut of £0m) *is* the scenario's own plan: it reuses ``engine.base_outcome`` — the same
plan and figures as ``envelope solve`` — instead of solving again.

Derived. Optimal plans are not nested as money falls: a project can leave at one level and
come back lower down (money freed by a larger project dropping out). Every such non-nesting is
reported (``flips``). ``nested=True`` then solves the ladder again top-down, each level
restricted to the projects funded at the level above (the others forced out with
``variants.ForceOut``; start years may still move), giving one priority order a planner can
announce, and reports what that costs in objective at each level. Where the unrestricted plan
already fits inside the level above it *is* the nested plan (no solve).

Honesty. Every objective difference (loss against the level above, cost of nesting) carries
the band the two solves' gaps allow; one whose band contains 0 is re-solved tighter (gaps
``refine_gaps``, each within ``refine_time_limit``) before it is reported as a verdict.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from solver.analyses.engine import (
    ZERO,
    Analysis,
    Context,
    Task,
    analysis_context,
    base_solve,
    bound_of,
    compare,
    gap_of,
    header,
    jsonable,
    merge,
    raise_failures,
    refine,
    refine_log,
    refine_settings,
    relabel,
    solve_many,
    solve_one,
    solve_record,
    spend,
    tight,
    tighter,
    time_limited,
)
from solver.analyses.engine import allocation as plan_allocation
from solver.backends.result import SolutionStatus
from solver.data.scenario import Scenario
from solver.data.variants import CutEnvelope, ForceOut, ScaleEnvelope, apply
from solver.errors import InputError
from solver.mip.formulation import POTS
from solver.pipeline.accounts import need_weight_of, option_value, project_system
from solver.pipeline.outcome import Outcome

MONEY_EPS = 1e-9


@dataclass(eq=False)
class Level:
    """One rung of the ladder: the operation on the envelope, and the envelope that results."""

    kind: str                 # "scale" (fraction of the envelope) or "cut" (£m taken)
    value: float
    label: str
    op: ScaleEnvelope | CutEnvelope
    envelope: pd.DataFrame
    total: float              # whole envelope at this level, £m

    def key(self) -> tuple[float, ...]:
        """The envelope's numbers (levels with equal keys are the same problem)."""
        return tuple(self.envelope[["capital", "revenue"]].to_numpy().ravel().round(6))


def ladder_levels(scenario: Scenario, levels: Sequence[float] | None = None, *, start: float = 1.0,
                  stop: float = 0.5, step: float = 0.05, cuts_gbpm: Sequence[float] | None = None,
                  year: int | None = None, pot: str | None = None) -> list[Level]:
    """The ladder's levels, most money first (equal envelopes kept once)."""
    if year is not None and year not in set(int(y) for y in scenario.envelope["year"]):
        raise InputError(None, f"option --year: {year} is not an envelope year {list(scenario.envelope['year'])}")
    if pot is not None and pot not in POTS:
        raise InputError(None, f"option --pot: must be 'capital' or 'revenue' (got '{pot}')")
    if cuts_gbpm is not None and levels is not None:
        raise InputError(None, "give either levels (fractions) or cuts in £m, not both")
    specs: list[tuple[str, float]]
    if cuts_gbpm is not None:
        if not cuts_gbpm or any(not (c >= 0 and math.isfinite(c)) for c in cuts_gbpm):
            raise InputError(None, f"cuts must be non-negative amounts of £m (got {list(cuts_gbpm)})")
        specs = [("cut", round(float(c), 6)) for c in cuts_gbpm]
    else:
        if levels is None:
            if not (step > 0 and math.isfinite(step)):
                raise InputError(None, f"option --step: must be > 0 (got {step})")
            if not (0 <= stop <= start <= 100):
                raise InputError(None, "options --from/--to: need 0 <= to <= from <= 100 "
                                       f"(got from {start}, to {stop})")
            n = int(math.floor((start - stop) / step + 1e-9))
            levels = [round(start - k * step, 10) for k in range(n + 1)]
        if not levels or any(not (0 <= v <= 100 and math.isfinite(v)) for v in levels):
            raise InputError(None, f"levels must be fractions of the envelope in [0, 100] (got {list(levels)})")
        specs = [("scale", round(float(v), 10)) for v in levels]
    out: list[Level] = []
    seen: set[tuple[float, ...]] = set()
    for kind, v in specs:
        op: ScaleEnvelope | CutEnvelope = ScaleEnvelope(v, year, pot) if kind == "scale" else CutEnvelope(v, year, pot)
        env = op.apply(scenario).envelope
        label = f"{100 * v:g}%" if kind == "scale" else f"-£{v:g}m"
        lv = Level(kind, v, label, op, env, float(env[["capital", "revenue"]].to_numpy().sum()))
        if lv.key() not in seen:
            seen.add(lv.key())
            out.append(lv)
    out.sort(key=lambda lv: (-lv.total, lv.label))
    return out


def ladder(scenario: Scenario, levels: list[float] | None = None, *, start: float = 1.0, stop: float = 0.5,
           step: float = 0.05, cuts_gbpm: list[float] | None = None, year: int | None = None,
           pot: str | None = None, nested: bool = False, workers: int = 1, warm_start: bool = True,
           tighten: bool = True, refine_gaps: Sequence[float] | None = None,
           refine_time_limit: float | None = None, context: Context | None = None, **solver: object) -> Analysis:
    """Solve a cut ladder and derive who misses out first.

    ``levels`` (fractions of the envelope) or ``start``/``stop``/``step``, or ``cuts_gbpm`` (£m
    taken, pro rata over what is cut); ``year``/``pot`` restrict the change to one year and/or pot.
    ``nested`` adds a ladder whose plans are nested top-down and its cost per level. With more
    than one worker (``context``, or the shorthand ``workers``) contiguous chains of levels are
    solved in parallel. Differences whose band contains 0 are re-solved at ``refine_gaps``
    (default 1e-4 then 0) within ``refine_time_limit`` s when ``tighten``. ``solver`` options
    (backend, mip_gap, time_limit, threads, seed) apply to every solve.

    Tables: ``levels`` (one row per level), ``funded`` (plan of each level), ``allocation``
    (system × level), ``projects`` (drop-out levels, ranked), ``systems`` (first level below the
    fair-share floor or with no funding, ranked), ``flips`` (every non-nesting).
    """
    sc = scenario.with_solver(**solver)
    gaps, tl = refine_settings(sc, refine_gaps, refine_time_limit)
    lvls = ladder_levels(sc, levels, start=start, stop=stop, step=step, cuts_gbpm=cuts_gbpm, year=year, pot=pot)
    wall0 = time.perf_counter()
    with analysis_context(context, workers) as ctx:
        tasks = {lv.label: Task(sc, (lv.op,), lv.label) for lv in lvls}
        outs = _solve_levels(sc, lvls, tasks, ctx, warm_start)
        t_ladder = time.perf_counter() - wall0

        labels = [lv.label for lv in lvls]
        steps = [(labels[i], labels[i + 1], False) for i in range(len(labels) - 1)]
        log: list[dict[str, object]] = []
        if tighten and gaps:
            refine(outs, tasks, steps, gaps=gaps, time_limit=tl, context=ctx, log=log, label="cut ladder")

        nouts: dict[str, Outcome] = {}
        exact: dict[str, bool] = {}
        unrestricted: set[str] = set()
        if nested:
            with ctx.stage("nested ladder", max(0, len(lvls) - 1)):
                nouts, exact, unrestricted = _nested(sc, lvls, tasks, outs, gaps if tighten else [], tl, log, ctx)

    psys = project_system(sc)
    tables = _tables(sc, lvls, outs, nouts, exact, unrestricted, psys)
    summary = header(sc, "ladder", {
        "kind": lvls[0].kind if lvls else None, "levels": [lv.value for lv in lvls],
        "labels": labels, "year": year, "pot": pot, "nested": nested, "workers": ctx.workers,
        "warm_start": warm_start, "tighten": tighten, "refine_gaps": gaps, "refine_time_limit": tl,
        "fair_share_floor": sc.policy.fair_share.floor, "fair_share_basis": sc.policy.fair_share.basis,
    })
    summary.update({
        "solves": [solve_record(outs[k], "level", k) for k in labels]
        + ([solve_record(nouts[k], "nested", f"{k} nested") for k in labels if k in nouts and not exact.get(k)]
           if nested else []),
        "refinements": [{k: v for k, v in r.items() if k != "seconds"} for r in log],
        "time_limited": time_limited({**outs, **{f"{k} nested": o for k, o in nouts.items()}}, log),
        "counts": {"levels": len(lvls), "flips": len(tables["flips"]),
                   "projects_leaving_and_reentering": int(
                       tables["flips"].loc[tables["flips"]["kind"] == "leaves and re-enters", "project_id"].nunique())
                   if len(tables["flips"]) else 0},
    })
    summary["timing"] = {
        "wall_seconds": time.perf_counter() - wall0, "ladder_seconds": t_ladder,
        "solve_seconds": {k: outs[k].solve_seconds for k in labels},
        "nested_solve_seconds": {k: o.solve_seconds for k, o in nouts.items() if not exact.get(k)},
        "refine_seconds": [r["seconds"] for r in log],
    }
    return Analysis(name="ladder", tables=tables, summary=jsonable(summary))  # type: ignore[arg-type]


def _solve_levels(sc: Scenario, lvls: list[Level], tasks: dict[str, Task], ctx: Context,
                  warm: bool) -> dict[str, Outcome]:
    """Every level, in ascending budget order split into ``ctx.workers`` contiguous chains solved
    round by round (each level warm-started from the last plan of its chain). A level that is the
    scenario itself reuses the base solve."""
    own = sc.identity
    same = [lv.label for lv in lvls if apply(sc, (lv.op,)).identity == own]
    base = base_solve(sc, ctx) if same else None   # reused whatever its status: no level is solved twice
    ascending = list(reversed(lvls))
    n = max(1, min(ctx.workers, len(ascending)))
    chains = [[ascending[i] for i in part] for part in np.array_split(np.arange(len(ascending)), n) if len(part)]
    prev: list[Outcome | None] = [None] * len(chains)
    outs: dict[str, Outcome] = {}
    todo = sum(1 for lv in lvls if not (base is not None and lv.label in same))
    with ctx.stage("cut ladder", todo):
        for r in range(max((len(c) for c in chains), default=0)):
            batch: list[tuple[int, Task]] = []
            for ci, chain in enumerate(chains):
                if r >= len(chain):
                    continue
                lv = chain[r]
                if base is not None and lv.label in same:
                    outs[lv.label] = relabel(base, lv.label)
                    prev[ci] = base
                    continue
                p = prev[ci]
                start = p.decisions if warm and p is not None else None
                batch.append((ci, dataclasses.replace(tasks[lv.label], start=start)))
            results = solve_many([t for _, t in batch], ctx, "cut ladder")
            raise_failures(results)
            for (ci, t), o in zip(batch, results):
                outs[t.label] = o
                if o.has_plan:
                    prev[ci] = o
    return outs


def _nested(sc: Scenario, lvls: list[Level], tasks: dict[str, Task], outs: dict[str, Outcome],
            gaps: Sequence[float], time_limit: float, log: list[dict[str, object]], ctx: Context
            ) -> tuple[dict[str, Outcome], dict[str, bool], set[str]]:
    """Top-down nested plans: each level restricted to the projects funded at the nearest level
    above that has a nested plan. Refines a cost whose band contains 0, inline (the refined plan
    then constrains the levels below)."""
    all_projects = frozenset(sc.instance.projects["project_id"].astype(str))
    nouts: dict[str, Outcome] = {}
    exact: dict[str, bool] = {}
    unrestricted: set[str] = set()
    allowed: frozenset[str] | None = None
    for lv in lvls:
        k = lv.label
        u = outs[k]
        if allowed is None:  # nothing above constrains this level: the nested plan is this solve
            nouts[k], exact[k] = u, True
            unrestricted.add(k)
            if u.has_plan:
                allowed = frozenset(u.funded)
            continue
        if not u.has_plan and u.status == SolutionStatus.INFEASIBLE:
            nouts[k], exact[k] = relabel(u, f"{k} nested"), True
            continue
        ntask = Task(sc, (lv.op, ForceOut(all_projects - allowed)), f"{k} nested")
        if u.has_plan and u.funded <= allowed:
            n, exact[k] = u, True
        else:
            restricted = None
            if u.has_plan and u.decisions is not None:
                restricted = dataclasses.replace(
                    u.decisions, starts={p: s for p, s in u.decisions.starts.items() if p in allowed})
            n = solve_one(dataclasses.replace(ntask, start=restricted), ctx, "nested ladder")
            exact[k] = False
        for gap in gaps:
            if compare(u, n, nonnegative=True).verdict != "undetermined":
                break
            if not tight(u, gap):
                new = solve_one(tighter(tasks[k], u, gap, time_limit), ctx, "nested ladder")
                u = outs[k] = merge(u, new)
                log.append(refine_log(k, gap, time_limit, new))
            if u.has_plan and u.funded <= allowed:
                n, exact[k] = u, True
            elif not tight(n, gap):
                new = solve_one(tighter(ntask, n, gap, time_limit), ctx, "nested ladder")
                n = merge(n, new)
                log.append(refine_log(f"{k} nested", gap, time_limit, new))
        nouts[k] = n
        if n.has_plan:
            if not n.funded <= allowed:  # pragma: no cover - guarded by ForceOut and the audit
                raise AssertionError(f"nested plan at {k} is not inside the level above")
            allowed = frozenset(n.funded)
    return nouts, exact, unrestricted


# --------------------------------------------------------------------------------------------
# tables


def _fair_shares(sc: Scenario, lv: Level, p: Outcome) -> dict[str, float]:
    """Each system's fair share (£m) at a level, on the policy's basis."""
    systems = sc.instance.systems
    wp = systems["weighted_population"].astype(float)
    sigma = dict(zip(systems["system_id"].astype(str), wp / wp.sum()))
    base = lv.total if sc.policy.fair_share.basis == "envelope" else sum(plan_allocation(p).values())
    return {s: base * w for s, w in sigma.items()}


def _starts(o: Outcome) -> dict[str, int]:
    return dict(o.decisions.starts) if o.has_plan and o.decisions is not None else {}


def _ranks(keys: list[int], none_from: int) -> list[int | None]:
    """Competition ranks of sorted keys (equal keys share a rank); keys >= ``none_from`` get None."""
    out: list[int | None] = []
    for i, k in enumerate(keys):
        out.append(None if k >= none_from else (out[i - 1] if i and keys[i - 1] == k else i + 1))
    return out


def _first(labels: list[str], flags: list[bool]) -> str | None:
    for lab, f in zip(labels, flags):
        if f:
            return lab
    return None


def _tables(sc: Scenario, lvls: list[Level], points: dict[str, Outcome], npoints: dict[str, Outcome],
            exact: dict[str, bool], unrestricted: set[str], psys: dict[str, str]) -> dict[str, pd.DataFrame]:
    labels = [lv.label for lv in lvls]
    top_total = lvls[0].total if lvls else 0.0
    floor = sc.policy.fair_share.floor
    years = [int(y) for y in sc.instance.years]

    # levels
    rows = []
    for i, lv in enumerate(lvls):
        p = points[lv.label]
        row: dict[str, object] = {
            "level": lv.value, "label": lv.label, "kind": lv.kind, "envelope": lv.total,
            "cut": top_total - lv.total, "status": p.status.value, "objective": p.objective, "bound": bound_of(p),
            "gap": gap_of(p), "funded": len(p.funded) if p.has_plan else None,
            "spend": sum(spend(p).values()) if p.has_plan else math.nan,
        }
        row["unspent"] = lv.total - row["spend"] if p.has_plan else math.nan  # type: ignore[operator]
        if i:
            b = compare(points[labels[i - 1]], p)
            row.update({"loss_vs_above": b.value, "loss_low": b.low, "loss_high": b.high, "loss_verdict": b.verdict})
        else:
            row.update({"loss_vs_above": math.nan, "loss_low": math.nan, "loss_high": math.nan, "loss_verdict": ""})
        if npoints:
            n = npoints[lv.label]
            # a level nothing above restricts is its own nested plan: the cost is 0 by construction
            c = ZERO if lv.label in unrestricted else compare(p, n, nonnegative=True)
            row.update({"nested_status": n.status.value, "nested_objective": n.objective,
                        "nested_bound": bound_of(n), "nested_gap": gap_of(n),
                        "nested_funded": len(n.funded) if n.has_plan else None,
                        "nested_is_optimal_plan": bool(exact.get(lv.label)),
                        "nesting_cost": c.value, "nesting_cost_low": c.low, "nesting_cost_high": c.high,
                        "nesting_verdict": c.verdict})
        for y in years:
            for pot in POTS:
                row[f"spend_{pot}_{y}"] = spend(p).get(f"{pot} {y}", math.nan) if p.has_plan else math.nan
        rows.append(row)
    levels = pd.DataFrame(rows)

    # funded and allocation
    plans = [("optimal", points)] + ([("nested", npoints)] if npoints else [])
    frows, arows = [], []
    for plan, pts in plans:
        for lv in lvls:
            p = pts[lv.label]
            if not p.has_plan or p.decisions is None:
                continue
            for pid, s in sorted(p.decisions.starts.items()):
                frows.append({"label": lv.label, "level": lv.value, "plan": plan, "project_id": pid,
                              "system_id": psys.get(pid, ""), "start": s})
            share = _fair_shares(sc, lv, p)
            for s_id in sorted(share):
                a = float(plan_allocation(p).get(s_id, 0.0))
                ratio = a / share[s_id] if share[s_id] > 0 else math.nan
                arows.append({"label": lv.label, "level": lv.value, "plan": plan, "system_id": s_id,
                              "allocation": a, "fair_share": share[s_id], "ratio": ratio,
                              "below_floor": bool(ratio < floor - MONEY_EPS) if ratio == ratio else False,
                              "unfunded": a <= MONEY_EPS})
    funded = pd.DataFrame(frows, columns=["label", "level", "plan", "project_id", "system_id", "start"])
    allocation = pd.DataFrame(arows, columns=["label", "level", "plan", "system_id", "allocation", "fair_share",
                                              "ratio", "below_floor", "unfunded"])

    feas = [lv.label for lv in lvls if points[lv.label].has_plan]
    projects, flips = _project_tables(sc, feas, points, npoints, psys)
    systems = _system_tables(sc, feas, allocation, npoints)
    return {"levels": levels, "projects": projects, "systems": systems, "flips": flips, "funded": funded,
            "allocation": allocation}


def _project_tables(sc: Scenario, feas: list[str], points: dict[str, Outcome], npoints: dict[str, Outcome],
                    psys: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    pr = sc.instance.projects
    weights = need_weight_of(sc)
    info = {str(r.project_id): r for r in pr.itertuples(index=False)}
    top = points[feas[0]] if feas else None
    nfeas = [k for k in feas if npoints and npoints[k].has_plan]
    rows, flips = [], []
    for pid in sorted(info):
        r = info[pid]
        f = [pid in points[k].funded for k in feas]
        starts = [_starts(points[k]).get(pid) for k in feas]
        top_start = _starts(top).get(pid) if top is not None else None
        value = (option_value(sc, weights[pid], float(r.benefit), int(top_start), int(r.duration_years))
                 if top_start is not None else math.nan)
        lowest = None
        for k, on in zip(feas, f):
            if on:
                lowest = k
        drops = None
        if f and f[0]:
            drops = _first(feas, [not x for x in f])
        reentries = 0
        for i in range(1, len(f)):
            if f[i] and not f[i - 1]:
                j = i - 1
                while j >= 0 and not f[j]:
                    j -= 1
                kind = "leaves and re-enters" if j >= 0 else "enters as money falls"
                reentries += kind == "leaves and re-enters"
                flips.append({"project_id": pid, "system_id": psys.get(pid, ""), "kind": kind,
                              "funded_above": feas[j] if j >= 0 else None, "out_from": feas[j + 1],
                              "out_to": feas[i - 1], "enters_at": feas[i], "start_at_entry": starts[i]})
        moved = sum(1 for i in range(1, len(f)) if f[i] and f[i - 1] and starts[i] != starts[i - 1])
        row: dict[str, object] = {
            "project_id": pid, "name": r.name, "system_id": psys.get(pid, ""),
            "funded_at_top": bool(f and f[0]), "top_start": top_start, "value_at_top": value,
            "levels_funded": int(sum(f)), "lowest_funded": lowest, "drops_out_at": drops,
            "reentries": reentries, "start_changes": moved,
        }
        if npoints:
            nf = [pid in npoints[k].funded for k in nfeas]
            row["nested_drops_out_at"] = _first(nfeas, [not x for x in nf]) if nf and nf[0] else None
            row["nested_lowest_funded"] = next((k for k, on in zip(reversed(nfeas), reversed(nf)) if on), None)
        rows.append(row)
    projects = pd.DataFrame(rows)
    order = {k: i for i, k in enumerate(feas)}
    drop_idx = [order[k] if isinstance(k, str) else len(order) + (0 if f0 else 1)
                for k, f0 in zip(projects["drops_out_at"], projects["funded_at_top"])]
    projects["_drop"] = drop_idx
    projects["_v"] = -projects["value_at_top"].fillna(-np.inf)
    projects = projects.sort_values(["_drop", "_v", "project_id"], kind="stable")
    projects.insert(0, "misses_out_rank", pd.array(_ranks(list(projects["_drop"]), len(order)), dtype="Int64"))
    projects = projects.drop(columns=["_drop", "_v"])
    projects["top_start"] = projects["top_start"].astype("Int64")
    flip_cols = ["project_id", "system_id", "kind", "funded_above", "out_from", "out_to", "enters_at",
                 "start_at_entry"]
    return projects.reset_index(drop=True), pd.DataFrame(flips, columns=flip_cols)


def _system_tables(sc: Scenario, feas: list[str], allocation: pd.DataFrame,
                   npoints: dict[str, Outcome]) -> pd.DataFrame:
    systems = sc.instance.systems
    names = dict(zip(systems["system_id"].astype(str), systems["name"]))
    wp = systems["weighted_population"].astype(float)
    pct = dict(zip(systems["system_id"].astype(str), 100 * wp / wp.sum()))
    order = {k: i for i, k in enumerate(feas)}
    rows = []
    for s_id in sorted(names):
        a = allocation[(allocation["system_id"] == s_id) & (allocation["plan"] == "optimal")].set_index("label")
        a = a.loc[[k for k in feas if k in a.index]]
        below = _first(list(a.index), list(a["below_floor"]))
        none = _first(list(a.index), list(a["unfunded"]))
        events = [k for k in (below, none) if isinstance(k, str)]
        first = min(events, key=lambda k: order[k]) if events else None
        row: dict[str, object] = {
            "system_id": s_id, "name": names[s_id], "fair_share_pct": pct[s_id],
            "allocation_at_top": float(a["allocation"].iloc[0]) if len(a) else math.nan,
            "ratio_at_top": float(a["ratio"].iloc[0]) if len(a) else math.nan,
            "below_floor_at": below, "unfunded_at": none, "first_miss_at": first,
            "ratio_at_first_miss": float(a.at[first, "ratio"]) if first else math.nan,
        }
        if npoints:
            na = allocation[(allocation["system_id"] == s_id) & (allocation["plan"] == "nested")].set_index("label")
            row["nested_below_floor_at"] = _first(list(na.index), list(na["below_floor"]))
            row["nested_unfunded_at"] = _first(list(na.index), list(na["unfunded"]))
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["_o"] = [order[k] if isinstance(k, str) else len(order) for k in out["first_miss_at"]]
    out = out.sort_values(["_o", "ratio_at_first_miss", "system_id"], kind="stable")
    out.insert(0, "misses_out_rank", pd.array(_ranks(list(out["_o"]), len(order)), dtype="Int64"))
    out = out.drop(columns="_o")
    return out.reset_index(drop=True)
