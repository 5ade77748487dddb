"""Cut ladder: solve the scenario at a ladder of envelope levels and say who misses out first.

Levels are fractions of the scenario's envelope (``start`` → ``stop`` by ``step``, or an explicit
``levels`` list) or cuts in £m (``cuts_gbpm``). By default a level scales (or cuts, pro rata)
the whole envelope; ``year`` and/or ``pot`` restrict it to one year, one pot, or one year's pot.

Solving. Levels are solved in *ascending* budget order, each warm-started from the plan of the
level below (that plan spends less, so it is feasible one level up whenever the rules are
monotone in money — and a backend simply ignores a start it cannot use). Each level's model is
formulated afresh: only row and bound values change between levels and building costs ~1% of a
solve, so the model is never patched in place. ``workers`` > 1 splits the ladder into that many
contiguous chains, each solved (warm-started) on its own process.

Derived. Optimal plans are not nested as money falls: a project can leave at one level and
come back lower down (money freed by a larger project dropping out). Every such non-nesting is
reported (``flips``). ``nested=True`` then solves the ladder again top-down, each level
restricted to the projects funded at the level above (options of the others fixed to 0; start
years may still move), giving one priority order a planner can announce, and reports what that
costs in objective at each level. Where the unrestricted plan already fits inside the level
above it *is* the nested plan (no solve).

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

from solver.analyses.engine import Analysis, Point
from solver.analyses.value import (
    Band,
    SolveTask,
    _tight,
    compare,
    fmt_band,
    jsonable,
    merge,
    project_system_map,
    refine,
    refine_settings,
    scenario_summary,
    solve_point,
    solve_record,
    solver_summary,
    time_limited,
)
from solver.data.scenario import Scenario
from solver.errors import InputError
from solver.mip.formulation import POTS
from solver.run.executor import run_all
from solver.solve.accounts import need_weight_of, option_value
from solver.solve.checks import fy

MONEY_EPS = 1e-9


@dataclass(eq=False)
class Level:
    """One rung of the ladder: what was done to the envelope, and the envelope that results."""

    kind: str                 # "scale" (fraction of the envelope) or "cut" (£m taken)
    value: float
    label: str
    envelope: pd.DataFrame
    total: float              # whole envelope at this level, £m

    def key(self) -> tuple[float, ...]:
        """The envelope's numbers (levels with equal keys are the same problem)."""
        return tuple(self.envelope[["capital", "revenue"]].to_numpy().ravel().round(6))


def level_envelope(scenario: Scenario, kind: str, value: float, year: int | None = None,
                   pot: str | None = None) -> pd.DataFrame:
    """The envelope scaled by ``value`` (kind "scale") or cut by £``value``m pro rata (kind "cut"),
    over the whole envelope or only ``year`` and/or ``pot``."""
    env = scenario.envelope.copy().reset_index(drop=True)
    rows = env.index if year is None else env.index[env["year"] == year]
    pots = list(POTS) if pot is None else [pot]
    cells = env.loc[rows, pots].astype(float)
    if kind == "scale":
        env.loc[rows, pots] = (cells * value).round(6)
    else:
        total = float(cells.to_numpy().sum())
        if value > total + 1e-9:
            raise InputError(None, f"a cut of £{value:,.3f}m exceeds the £{total:,.3f}m it is taken from")
        factor = 1.0 - value / total if total > 0 else 1.0
        env.loc[rows, pots] = (cells * factor).round(6).clip(lower=0.0)
    return env


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
        env = level_envelope(scenario, kind, v, year, pot)
        label = f"{100 * v:g}%" if kind == "scale" else f"-£{v:g}m"
        lv = Level(kind, v, label, env, float(env[["capital", "revenue"]].to_numpy().sum()))
        if lv.key() not in seen:
            seen.add(lv.key())
            out.append(lv)
    out.sort(key=lambda lv: (-lv.total, lv.label))
    return out


@dataclass(frozen=True)
class _Chain:
    tasks: tuple[SolveTask, ...]
    warm: bool


def _solve_chain(chain: _Chain) -> list[Point]:
    """Solve levels in the order given (ascending budget), each warm-started from the last plan."""
    out: list[Point] = []
    prev: Point | None = None
    for t in chain.tasks:
        if chain.warm and prev is not None:
            t = dataclasses.replace(t, start=prev.decisions())
        p = solve_point(t)
        out.append(p)
        if p.feasible:
            prev = p
    return out


def _chains(tasks: list[SolveTask], workers: int, warm: bool) -> list[_Chain]:
    """Ascending tasks split into ``workers`` contiguous chains of near-equal length."""
    n = max(1, min(workers, len(tasks)))
    parts = np.array_split(np.arange(len(tasks)), n)
    return [_Chain(tuple(tasks[i] for i in part), warm) for part in parts if len(part)]


def ladder(scenario: Scenario, levels: list[float] | None = None, *, start: float = 1.0, stop: float = 0.5,
           step: float = 0.05, cuts_gbpm: list[float] | None = None, year: int | None = None,
           pot: str | None = None, nested: bool = False, workers: int = 1, warm_start: bool = True,
           tighten: bool = True, refine_gaps: Sequence[float] | None = None,
           refine_time_limit: float | None = None, **solver: object) -> Analysis:
    """Solve a cut ladder and derive who misses out first.

    ``levels`` (fractions of the envelope) or ``start``/``stop``/``step``, or ``cuts_gbpm`` (£m
    taken, pro rata over what is cut); ``year``/``pot`` restrict the change to one year and/or pot.
    ``nested`` adds a ladder whose plans are nested top-down and its cost per level. ``workers``
    > 1 solves contiguous chains of levels in parallel. Differences whose band contains 0 are
    re-solved at ``refine_gaps`` (default 1e-4 then 0) within ``refine_time_limit`` s when
    ``tighten``. ``solver`` options (backend, mip_gap, time_limit, threads, seed) apply to every
    solve.

    Tables: ``levels`` (one row per level), ``funded`` (plan of each level), ``allocation``
    (system × level), ``projects`` (drop-out levels, ranked), ``systems`` (first level below the
    fair-share floor or with no funding, ranked), ``flips`` (every non-nesting).
    """
    sc = scenario.with_solver(**solver)
    gaps, tl = refine_settings(sc, refine_gaps, refine_time_limit)
    lvls = ladder_levels(sc, levels, start=start, stop=stop, step=step, cuts_gbpm=cuts_gbpm, year=year, pot=pot)
    wall0 = time.perf_counter()
    tasks = {lv.label: SolveTask(sc.with_envelope(lv.envelope), lv.label) for lv in lvls}
    ascending = [tasks[lv.label] for lv in reversed(lvls)]
    chains = _chains(ascending, workers, warm_start)
    results = run_all(_solve_chain, chains, workers=workers, label="cut ladder")
    points: dict[str, Point] = {}
    for chain, pts in zip(chains, results):
        for t, p in zip(chain.tasks, pts):
            points[t.label] = p
    t_ladder = time.perf_counter() - wall0

    labels = [lv.label for lv in lvls]
    steps = [(labels[i], labels[i + 1], False) for i in range(len(labels) - 1)]
    log: list[dict[str, object]] = []
    if tighten and gaps:
        refine(points, tasks, steps, gaps=gaps, time_limit=tl, workers=workers, log=log)

    npoints: dict[str, Point] = {}
    exact: dict[str, bool] = {}
    unrestricted: set[str] = set()
    if nested:
        npoints, exact, unrestricted = _nested(lvls, tasks, points, gaps if tighten else [], tl, log)

    psys = project_system_map(sc)
    tables = _tables(sc, lvls, points, npoints, exact, unrestricted, psys)
    summary: dict[str, object] = {
        "analysis": "ladder",
        "scenario": scenario_summary(sc),
        "parameters": {
            "kind": lvls[0].kind if lvls else None, "levels": [lv.value for lv in lvls],
            "labels": labels, "year": year, "pot": pot, "nested": nested, "workers": workers,
            "warm_start": warm_start, "tighten": tighten, "refine_gaps": gaps, "refine_time_limit": tl,
            "fair_share_floor": sc.policy.fair_share.floor, "fair_share_basis": sc.policy.fair_share.basis,
        },
        "solver": solver_summary(sc),
        "solves": [solve_record(points[k], "level") for k in labels]
        + ([solve_record(npoints[k], "nested") for k in labels if k in npoints and not exact.get(k)] if nested else []),
        "refinements": [{k: v for k, v in r.items() if k != "seconds"} for r in log],
        "time_limited": time_limited({**points, **{f"{k} nested": p for k, p in npoints.items()}}, log),
        "counts": {"levels": len(lvls), "flips": len(tables["flips"]),
                   "projects_leaving_and_reentering": int(
                       tables["flips"].loc[tables["flips"]["kind"] == "leaves and re-enters", "project_id"].nunique())
                   if len(tables["flips"]) else 0},
    }
    summary["timing"] = {
        "wall_seconds": time.perf_counter() - wall0, "ladder_seconds": t_ladder,
        "solve_seconds": {k: points[k].solve_seconds for k in labels},
        "nested_solve_seconds": {k: p.solve_seconds for k, p in npoints.items() if not exact.get(k)},
        "refine_seconds": [r["seconds"] for r in log],
    }
    text = _text(sc, lvls, points, npoints, tables, year, pot, nested)
    return Analysis(name="ladder", tables=tables, summary=jsonable(summary), text=text)  # type: ignore[arg-type]


def _nested(lvls: list[Level], tasks: dict[str, SolveTask], points: dict[str, Point], gaps: Sequence[float],
            time_limit: float, log: list[dict[str, object]]
            ) -> tuple[dict[str, Point], dict[str, bool], set[str]]:
    """Top-down nested plans: each level restricted to the projects funded at the nearest level
    above that has a nested plan. Refines a cost whose band contains 0, inline (the refined plan
    then constrains the levels below)."""
    all_projects = frozenset(tasks[lvls[0].label].scenario.instance.projects["project_id"].astype(str))
    npts: dict[str, Point] = {}
    exact: dict[str, bool] = {}
    unrestricted: set[str] = set()
    allowed: frozenset[str] | None = None
    for lv in lvls:
        k = lv.label
        u = points[k]
        if allowed is None:  # nothing above constrains this level: the nested plan is this solve
            npts[k], exact[k] = u, True
            unrestricted.add(k)
            if u.feasible:
                allowed = frozenset(u.starts)
            continue
        if not u.feasible and u.status == "infeasible":
            npts[k], exact[k] = dataclasses.replace(u, label=f"{k} nested"), True
            continue
        ntask = SolveTask(tasks[k].scenario, f"{k} nested", exclude=all_projects - allowed)
        if u.feasible and u.funded <= allowed:
            n, exact[k] = u, True
        else:
            restricted = dataclasses.replace(u.decisions(), starts={p: s for p, s in u.starts.items() if p in allowed})
            n = solve_point(dataclasses.replace(ntask, start=restricted if u.feasible else None))
            exact[k] = False
        for gap in gaps:
            if compare(u, n, nonnegative=True).verdict != "undetermined":
                break
            if not _tight(u, gap):
                new = solve_point(dataclasses.replace(tasks[k], scenario=tasks[k].scenario.with_solver(
                    mip_gap=gap, time_limit=time_limit), start=u.decisions() if u.feasible else None))
                u = points[k] = merge(u, new)
                log.append(_log(k, gap, time_limit, new))
            if u.feasible and u.funded <= allowed:
                n, exact[k] = u, True
            elif not _tight(n, gap):
                new = solve_point(dataclasses.replace(ntask, scenario=ntask.scenario.with_solver(
                    mip_gap=gap, time_limit=time_limit), start=n.decisions() if n.feasible else None))
                n = merge(n, new)
                log.append(_log(f"{k} nested", gap, time_limit, new))
        npts[k] = n
        if n.feasible:
            if not n.funded <= allowed:  # pragma: no cover - guarded by the exclusion and the audit
                raise AssertionError(f"nested plan at {k} is not inside the level above")
            allowed = frozenset(n.starts)
    return npts, exact, unrestricted


def _log(label: str, gap: float, time_limit: float, p: Point) -> dict[str, object]:
    return {"label": label, "mip_gap": gap, "time_limit": time_limit, "status": p.status,
            "objective": p.objective if p.feasible else None, "bound": p.bound if p.feasible else None,
            "gap": p.gap if p.feasible else None, "seconds": p.solve_seconds}


# --------------------------------------------------------------------------------------------
# tables


def _fair_shares(sc: Scenario, lv: Level, p: Point) -> dict[str, float]:
    """Each system's fair share (£m) at a level, on the policy's basis."""
    systems = sc.instance.systems
    wp = systems["weighted_population"].astype(float)
    sigma = dict(zip(systems["system_id"].astype(str), wp / wp.sum()))
    base = lv.total if sc.policy.fair_share.basis == "envelope" else sum(p.allocation.values())
    return {s: base * w for s, w in sigma.items()}


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


def _tables(sc: Scenario, lvls: list[Level], points: dict[str, Point], npoints: dict[str, Point],
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
            "cut": top_total - lv.total, "status": p.status, "objective": p.objective, "bound": p.bound,
            "gap": p.gap, "funded": len(p.starts) if p.feasible else None,
            "spend": sum(p.spend.values()) if p.feasible else math.nan,
        }
        row["unspent"] = lv.total - row["spend"] if p.feasible else math.nan  # type: ignore[operator]
        if i:
            b = compare(points[labels[i - 1]], p)
            row.update({"loss_vs_above": b.value, "loss_low": b.low, "loss_high": b.high, "loss_verdict": b.verdict})
        else:
            row.update({"loss_vs_above": math.nan, "loss_low": math.nan, "loss_high": math.nan, "loss_verdict": ""})
        if npoints:
            n = npoints[lv.label]
            # a level nothing above restricts is its own nested plan: the cost is 0 by construction
            c = Band(0.0, 0.0, 0.0, "zero") if lv.label in unrestricted else compare(p, n, nonnegative=True)
            row.update({"nested_status": n.status, "nested_objective": n.objective, "nested_bound": n.bound,
                        "nested_gap": n.gap, "nested_funded": len(n.starts) if n.feasible else None,
                        "nested_is_optimal_plan": bool(exact.get(lv.label)),
                        "nesting_cost": c.value, "nesting_cost_low": c.low, "nesting_cost_high": c.high,
                        "nesting_verdict": c.verdict})
        for y in years:
            for pot in POTS:
                row[f"spend_{pot}_{y}"] = p.spend.get(f"{pot} {y}", math.nan) if p.feasible else math.nan
        rows.append(row)
    levels = pd.DataFrame(rows)

    # funded and allocation
    plans = [("optimal", points)] + ([("nested", npoints)] if npoints else [])
    frows, arows = [], []
    for plan, pts in plans:
        for lv in lvls:
            p = pts[lv.label]
            if not p.feasible:
                continue
            for pid, s in sorted(p.starts.items()):
                frows.append({"label": lv.label, "level": lv.value, "plan": plan, "project_id": pid,
                              "system_id": psys.get(pid, ""), "start": s})
            share = _fair_shares(sc, lv, p)
            for s_id in sorted(share):
                a = float(p.allocation.get(s_id, 0.0))
                ratio = a / share[s_id] if share[s_id] > 0 else math.nan
                arows.append({"label": lv.label, "level": lv.value, "plan": plan, "system_id": s_id,
                              "allocation": a, "fair_share": share[s_id], "ratio": ratio,
                              "below_floor": bool(ratio < floor - MONEY_EPS) if ratio == ratio else False,
                              "unfunded": a <= MONEY_EPS})
    funded = pd.DataFrame(frows, columns=["label", "level", "plan", "project_id", "system_id", "start"])
    allocation = pd.DataFrame(arows, columns=["label", "level", "plan", "system_id", "allocation", "fair_share",
                                              "ratio", "below_floor", "unfunded"])

    feas = [lv.label for lv in lvls if points[lv.label].feasible]
    projects, flips = _project_tables(sc, feas, points, npoints, psys)
    systems = _system_tables(sc, feas, allocation, npoints)
    return {"levels": levels, "projects": projects, "systems": systems, "flips": flips, "funded": funded,
            "allocation": allocation}


def _project_tables(sc: Scenario, feas: list[str], points: dict[str, Point], npoints: dict[str, Point],
                    psys: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    pr = sc.instance.projects
    weights = need_weight_of(sc)
    info = {str(r.project_id): r for r in pr.itertuples(index=False)}
    top = points[feas[0]] if feas else None
    nfeas = [k for k in feas if npoints and npoints[k].feasible]
    rows, flips = [], []
    for pid in sorted(info):
        r = info[pid]
        f = [pid in points[k].starts for k in feas]
        starts = [points[k].starts.get(pid) for k in feas]
        top_start = top.starts.get(pid) if top is not None else None
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
            nf = [pid in npoints[k].starts for k in nfeas]
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


def _system_tables(sc: Scenario, feas: list[str], allocation: pd.DataFrame, npoints: dict[str, Point]) -> pd.DataFrame:
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


# --------------------------------------------------------------------------------------------
# text


def _names(ids: list[str], limit: int = 6) -> str:
    more = f" (+{len(ids) - limit} more)" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


def _text(sc: Scenario, lvls: list[Level], points: dict[str, Point], npoints: dict[str, Point],
          t: dict[str, pd.DataFrame], year: int | None, pot: str | None, nested: bool) -> str:
    scope = "the envelope" if year is None and pot is None else \
        f"{pot or 'both pots'}{'' if year is None else ' ' + fy(year)}"
    first, last = lvls[0], lvls[-1]
    lines = [f"Cut ladder — scenario {sc.name} ({sc.policy.name}): {len(lvls)} levels of {scope}, "
             f"{first.label} → {last.label} (£{first.total:,.1f}m → £{last.total:,.1f}m in all)", ""]
    lv = t["levels"]
    lines.append(f"  {'level':>8} {'envelope £m':>12} {'objective':>11} {'gap':>8} {'funded':>7}  lost vs level above")
    for r in lv.itertuples():
        if r.status in ("infeasible", "no_solution"):
            lines.append(f"  {r.label:>8} {r.envelope:>12,.1f} {'no plan':>11} ({r.status})")
            continue
        lost = "" if not r.loss_verdict else fmt_band(Band(r.loss_vs_above, r.loss_low, r.loss_high, r.loss_verdict), 1)
        lines.append(f"  {r.label:>8} {r.envelope:>12,.1f} {r.objective:>11,.1f} {100 * r.gap:>7.3f}% "
                     f"{int(r.funded):>7}  {lost}")
    pj = t["projects"]
    drop = pj[pj["misses_out_rank"].notna()]
    lines += ["", f"Who misses out first — projects funded at {first.label} and not at a lower level "
                  f"({len(drop)} of {int(pj['funded_at_top'].sum())}):"]
    shown = 0
    for k in [lv_.label for lv_ in lvls]:
        ids = list(drop.loc[drop["drops_out_at"] == k, "project_id"])
        if ids and shown < 5:
            lines.append(f"  at {k}: {len(ids)} drop out — {_names(ids)}")
            shown += 1
    if not len(drop):
        lines.append("  none: every project funded at the top stays funded down the ladder")
    sy = t["systems"]
    miss = sy[sy["misses_out_rank"].notna()] if len(sy) else sy
    floor = sc.policy.fair_share.floor
    lines += ["", f"Systems, in the order they miss out (below {floor:.0%} of fair share, or no funding):"]
    for r in miss.head(8).itertuples():
        what = []
        if isinstance(r.below_floor_at, str):
            what.append(f"below floor at {r.below_floor_at}")
        if isinstance(r.unfunded_at, str):
            what.append(f"no funding at {r.unfunded_at}")
        lines.append(f"  {int(r.misses_out_rank):>2}. {r.system_id} {r.name}: {'; '.join(what)} "
                     f"(ratio {r.ratio_at_first_miss:.2f} there)")
    if len(miss) > 8:
        lines.append(f"  ... {len(miss) - 8} more (systems.csv)")
    if not len(miss):
        lines.append("  none")
    fl = t["flips"]
    lines.append("")
    if len(fl):
        back = fl[fl["kind"] == "leaves and re-enters"]
        enter = fl[fl["kind"] == "enters as money falls"]
        lines.append(f"Not nested: {back['project_id'].nunique()} project(s) leave and re-enter, "
                     f"{enter['project_id'].nunique()} enter only as money falls (flips.csv):")
        for r in fl.head(6).itertuples():
            above = f"funded at {r.funded_above}, " if isinstance(r.funded_above, str) else ""
            span = r.out_from if r.out_from == r.out_to else f"{r.out_from}..{r.out_to}"
            lines.append(f"  {r.project_id} ({r.system_id}): {above}out at {span}, back at {r.enters_at}")
        if len(fl) > 6:
            lines.append(f"  ... {len(fl) - 6} more")
    else:
        lines.append("Plans are nested: no project leaves and re-enters as money falls.")
    if nested:
        lines += ["", "Nested ladder (one priority order): cost in objective against the optimal plan "
                      "[band]; '=' plan already nested:"]
        for r in lv.itertuples():
            if r.nested_status in ("infeasible", "no_solution"):
                lines.append(f"  {r.label:>8}: no nested plan ({r.nested_status})")
                continue
            mark = "=" if r.nested_is_optimal_plan else " "
            band = fmt_band(Band(r.nesting_cost, r.nesting_cost_low, r.nesting_cost_high, r.nesting_verdict), 1)
            lines.append(f"  {r.label:>8}{mark} {band} ({r.nesting_verdict})")
    return "\n".join(lines)
