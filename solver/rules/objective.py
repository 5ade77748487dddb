r"""The objective, chosen by the policy model's ``[objective]`` table (``kind``, default ``benefit``).

An objective is built from *criteria* (``solver.data.policy.CRITERIA``), each a pair of independent
twins: ``_vector`` gives its coefficients over the MILP's columns from the formulation's arrays, and
``criterion`` recomputes its value for a plan from the audit's figures (``solver.pipeline.accounts``),
sharing no code with the first. With :math:`v_o` the discounted need-weighted benefit of option
:math:`o` (``Data.o_value``), :math:`L_o = \sum_{\tau = g_o}^{t_0 + H - 1} \delta^{\tau - t_0}` its
discounted live years within the horizon :math:`H` (``Data.o_live``), :math:`\delta = 1/(1+\rho)`:

- ``benefit`` :math:`= \sum_o v_o x_o`;
- ``category-k`` :math:`= \sum_{o:\ \mathrm{cat}(p_o) = k} v_o x_o` (projects at category-k
  organisations; system-wide projects count in no category);
- ``roi`` :math:`= \sum_o \big((S_p - r_p) L_o - \sum_{t \le t_0+H-1} \delta^{t-t_0}(K_{p,t-s}+R_{p,t-s})\big) x_o
  - \sum_p W_p z_p`: savings :math:`S_p` less run cost :math:`r_p` while live, less the whole
  delivery cost (national and local share) in the horizon, less withdrawal costs :math:`W_p` (paid
  in the first year); the access fee is a transfer within the NHS and is left out;
- ``min-share`` :math:`= \zeta` with :math:`N_s \zeta \le \sum_{o \in s} v_o x_o` for every system
  with need :math:`N_s > 0` and :math:`0 \le \zeta \le 1`: the worst-off system's share of its need
  met. :math:`N_s` sums its projects' value at their earliest allowed start (committed start when
  committed), each alternatives group among its projects counted once (its most valuable member)
  when the alternatives rule is on.

Penalty terms come from the rule families (``Build.penalties`` when building, each family's
``penalty`` in the audit): fair shares and standardisation. Kinds (each a ``define``/``recompute``
pair in ``KINDS``):

- ``benefit`` (default): :math:`\beta\,\mathrm{benefit} - \lambda \sum_o \sum_t D_{o,t} x_o
  - \text{penalties}` (benefit weight :math:`\beta` scales :math:`v_o`; spend weight :math:`\lambda`);
- ``roi``: :math:`\mathrm{roi} - \text{penalties}`;
- ``max-min``: tier 1 ``min-share``; then ``benefit`` - penalties with the share kept within the
  tolerance of its optimum;
- ``lexicographic``: the listed tiers in turn, each earlier tier kept within the tolerance of its
  optimum (:math:`c_k x \ge z_k^* - \epsilon |z_k^*|`); the last tier carries the penalties;
- ``weighted``: :math:`\sum_c w_c\, \mathrm{crit}_c / \sigma_c - \text{penalties}/\sigma_{\mathrm{benefit}}`
  with scale :math:`\sigma_c` the criterion's value with unlimited money (every project at its best
  start, each alternatives group once; for ``roi`` the size of each project's best return; 1 for
  ``min-share``) when ``normalise``, else 1.

Earlier tiers become ``MILP.stages``: the solve pipeline (``solver.pipeline.core``) solves each in
turn and adds its floor as a row before the last; the audit recomputes every tier with
``criterion`` and the pipeline checks each floor holds.

To add a kind: a policy class in ``solver/data/policy.py`` (joined to the ``ObjectiveKind`` union),
its two functions here, and an entry in ``KINDS`` (see docs/rules.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from solver.data.scenario import Scenario
from solver.mip.arrays import Stage
from solver.pipeline.accounts import View, best_values, live_years
from solver.rules.base import Audit, Build, Family

if TYPE_CHECKING:
    from solver.mip.formulation import Data

CATEGORY_PREFIX = "category-"


# ---- building: coefficient vectors over the model's columns ---------------------------------------

def _earliest_values(m: Build) -> np.ndarray:
    """Each project's value at its earliest allowed start (committed start when committed), vectorised."""
    d, sc = m.d, m.scenario
    pr = sc.instance.projects
    start = np.where(np.isnan(d.p_committed), pr["earliest_start"].to_numpy(dtype=float), d.p_committed)
    golive = start + d.p_duration
    t0 = int(d.years[0])
    obj = sc.policy.objective
    k = np.arange(obj.horizon_years)
    live = ((t0 + k)[None, :] >= golive[:, None]) * (1.0 / (1.0 + obj.discount_rate)) ** k[None, :]
    return obj.value_weight * d.p_need_weight * d.p_benefit * live.sum(axis=1)


def _groups(m: Build, by_system: bool = False) -> np.ndarray:
    """Each project's alternatives group ("" when none, or when the alternatives rule is off), optionally
    within its system (a system's need counts a group once among its own projects)."""
    d = m.d
    if not m.scenario.policy.alternatives.enabled:
        return np.full(len(d.project_ids), "", dtype=object)
    if not by_system:
        return d.p_group
    return np.where(d.p_group != "", d.system_ids[d.p_system].astype(str) + "\x00" + d.p_group.astype(str), "")


def _once_per_group(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``values`` with every alternatives group's members but its largest set to 0 (ties: the first)."""
    out = values.copy()
    for g in np.unique(groups[groups != ""]):
        members = np.flatnonzero(groups == g)
        keep = members[np.argmax(values[members])]
        out[members[members != keep]] = 0.0
    return out


def option_returns(d: Data) -> np.ndarray:
    """Discounted net financial return of each option (the ``roi`` criterion's coefficients)."""
    p = d.o_project
    cost = (d.nat_cap + d.nat_rev + d.loc_cap + d.loc_rev) @ d.t_discount
    return (d.p_savings[p] - d.p_run[p]) * d.o_live - cost


def _min_share_column(m: Build) -> int:
    """The ``min_share`` column and its rows (added once)."""
    if "min_share" in m.cols:
        return int(m.cols["min_share"][0])
    d = m.d
    col = m.b.add_columns("min_share", ["min_share"], 0.0, 1.0, integer=False)
    m.cols["min_share"] = col
    need = np.bincount(d.p_system, _once_per_group(_earliest_values(m), _groups(m, by_system=True)),
                       minlength=len(d.system_ids))
    systems = np.flatnonzero(need > 0)
    if systems.size:
        index = np.full(len(d.system_ids), -1)
        index[systems] = np.arange(systems.size)
        row_of = index[d.p_system[d.o_project]]
        on = row_of >= 0
        rows = np.concatenate([np.arange(systems.size), row_of[on]])
        cols = np.concatenate([np.full(systems.size, col[0]), m.x[on]])
        vals = np.concatenate([need[systems], -d.o_value[on]])
        m.b.add_rows("min_share", [f"min_share[{d.system_ids[s]}]" for s in systems], rows, cols, vals, -np.inf, 0.0)
    return int(col[0])


def _vector(m: Build, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A criterion as (columns, coefficients)."""
    d = m.d
    if name == "benefit":
        return m.x, d.o_value
    if name.startswith(CATEGORY_PREFIX):
        k = int(name.removeprefix(CATEGORY_PREFIX))
        return m.x, np.where(d.p_category[d.o_project] == k, d.o_value, 0.0)
    if name == "roi":
        cols, coef = m.x, option_returns(m.d)
        if m.withdraw is not None:
            w_cols, w_cost = m.withdraw
            cols, coef = np.concatenate([cols, w_cols]), np.concatenate([coef, -w_cost])
        return cols, coef
    if name == "min-share":
        return np.array([_min_share_column(m)]), np.array([1.0])
    raise ValueError(f"unknown criterion {name!r}")


def _scale(m: Build, name: str) -> float:
    """What a criterion reaches with unlimited money (every project at its best start, groups once; for
    ``roi`` the size of each project's best return); 1 for ``min-share`` and wherever that is 0."""
    d = m.d
    if name == "min-share":
        return 1.0
    if name == "roi":
        best = np.full(len(d.project_ids), -np.inf)
        np.maximum.at(best, d.o_project, option_returns(m.d))
        best[~np.isfinite(best)] = 0.0
        total = float(_once_per_group(np.abs(best), _groups(m)).sum())
    else:
        values = _earliest_values(m)
        if name.startswith(CATEGORY_PREFIX):
            values = np.where(d.p_category == int(name.removeprefix(CATEGORY_PREFIX)), values, 0.0)
        total = float(_once_per_group(values, _groups(m)).sum())
    return total if total > 0 else 1.0


def _dense(m: Build, name: str, factor: float = 1.0) -> np.ndarray:
    """A criterion's coefficients over every column of the model (build after every column exists)."""
    cols, coef = _vector(m, name)
    c = np.zeros(m.b.n_cols)
    np.add.at(c, cols, factor * coef)
    return c


def _add(m: Build, name: str, factor: float = 1.0) -> None:
    cols, coef = _vector(m, name)
    m.b.add_cost(cols, factor * coef)


def _add_penalties(m: Build, factor: float = 1.0) -> None:
    for cols, coef in m.penalties.values():
        m.b.add_cost(cols, factor * coef)


def _define_tiers(m: Build, tiers: list[str], tolerance: float) -> None:
    """Earlier tiers as stages, the last as the objective with the penalties."""
    if "min-share" in tiers:
        _min_share_column(m)          # every column exists before any stage is made dense
    for name in tiers[:-1]:
        m.b.stages.append(Stage(name=name, c=_dense(m, name), tolerance=tolerance))
    _add(m, tiers[-1])
    _add_penalties(m)


def _define_benefit(m: Build) -> None:
    """Need-weighted discounted benefit less λ per £m of national draw, less the families' penalties."""
    d = m.d
    spend = (d.nat_cap + d.nat_rev).sum(axis=1)
    m.b.add_cost(m.x, d.o_value - m.scenario.policy.objective.spend_weight * spend)
    _add_penalties(m)


def _define_roi(m: Build) -> None:
    """Discounted net financial return less the penalties."""
    _add(m, "roi")
    _add_penalties(m)


def _define_staged(m: Build) -> None:
    """max-min (the worst-off share, then benefit) and lexicographic (the model's tiers), in turn."""
    _define_tiers(m, all_tiers(m.scenario), m.scenario.policy.objective.tolerance)


def _define_weighted(m: Build) -> None:
    """Σ weight × criterion / scale, less the penalties / the benefit scale."""
    obj = m.scenario.policy.objective
    if "min-share" in obj.weights:
        _min_share_column(m)
    for name, w in obj.weights.items():
        if w:
            _add(m, name, w / (_scale(m, name) if obj.normalise else 1.0))
    _add_penalties(m, 1.0 / (_scale(m, "benefit") if obj.normalise else 1.0))


# ---- recomputing: plain loops over the audit's figures --------------------------------------------

def _loop_roi(sc: Scenario, v: View, p_id: str, start: int) -> float:
    """Discounted net financial return of one project started in ``start``, by loops."""
    p = v.projects[p_id]
    obj = sc.policy.objective
    t0 = v.years[0]
    total = (p.savings - p.run_cost) * live_years(sc, start, p.duration)
    for y in v.years:
        if y - t0 >= obj.horizon_years:
            continue
        c, r = p.profile.get(y - start, (0.0, 0.0))
        total -= (c + r) / (1.0 + obj.discount_rate) ** (y - t0)
    return total


def _groups_once(sc: Scenario, v: View, values: dict[str, float]) -> float:
    """Sum of ``values`` (by project) with each alternatives group counted once (its largest member) when
    the alternatives rule is on."""
    total, best = 0.0, {}
    for p_id, val in values.items():
        g = v.projects[p_id].group if sc.policy.alternatives.enabled else ""
        if g:
            best[g] = max(best.get(g, val), val)
        else:
            total += val
    return total + sum(best.values())


def criterion(a: Audit, name: str) -> float:
    """A criterion's value for the audited plan (``a.acc`` set), by loops over the tables."""
    assert a.acc is not None
    sc, v, acc = a.scenario, a.v, a.acc
    if name == "benefit":
        return sum(acc.value.values())
    if name.startswith(CATEGORY_PREFIX):
        k = int(name.removeprefix(CATEGORY_PREFIX))
        return sum(val for p, val in acc.value.items() if v.projects[p].category == k)
    if name == "roi":
        total = sum(_loop_roi(sc, v, p, s) for p, s in a.dec.starts.items())
        return total - sum(v.projects[p].withdrawal_cost for p in a.dec.withdrawn)
    if name == "min-share":
        best = best_values(sc)
        shares = []
        for s in v.local_capital:
            mine = [p for p in v.projects.values() if p.system == s]
            need = _groups_once(sc, v, {p.id: best[p.id] for p in mine})
            if need > 0:
                shares.append(sum(acc.value.get(p.id, 0.0) for p in mine) / need)
        return min(shares, default=1.0)
    raise ValueError(f"unknown criterion {name!r}")


def scale(a: Audit, name: str) -> float:
    """A criterion's scale for ``weighted`` (see the module docstring), by loops."""
    sc, v = a.scenario, a.v
    if name == "min-share":
        return 1.0
    if name == "roi":
        best = {}
        for p in v.projects.values():
            starts = [s for s in range(p.earliest, p.latest + 1) if s + max(p.profile, default=0) <= v.years[-1]]
            if p.committed is not None and sc.policy.commitments.mode != "ignore":
                starts = [p.committed]
            if starts:
                best[p.id] = abs(max(_loop_roi(sc, v, p.id, s) for s in starts))
        total = _groups_once(sc, v, best)
    else:
        k = int(name.removeprefix(CATEGORY_PREFIX)) if name.startswith(CATEGORY_PREFIX) else None
        best = best_values(sc)
        total = _groups_once(sc, v, {p.id: best[p.id] for p in v.projects.values() if k is None or p.category == k})
    return total if total > 0 else 1.0


def all_tiers(scenario: Scenario) -> list[str]:
    """Every tier of a staged objective, in order (max-min: the worst-off share, then benefit); [] otherwise."""
    obj = scenario.policy.objective
    if obj.kind == "max-min":
        return ["min-share", "benefit"]
    if obj.kind == "lexicographic":
        return list(obj.tiers)
    return []


def tiers(scenario: Scenario) -> list[str]:
    """The criteria solved as earlier tiers (stages) for the policy's objective, in order."""
    return all_tiers(scenario)[:-1]


def _recompute_benefit(a: Audit, penalties: dict[str, float]) -> tuple[float, dict[str, float]]:
    """The benefit objective of a plan from the accounts: value of each funded project, less λ × the
    national allocation, less each penalty; with the terms by name (``spend`` and the penalties)."""
    assert a.acc is not None
    spend_pen = a.scenario.policy.objective.spend_weight * sum(a.acc.allocation.values())
    objective = sum(a.acc.value.values()) - spend_pen
    for amount in penalties.values():
        objective -= amount
    return objective, {"spend": spend_pen, **penalties}


def _recompute_last(a: Audit, penalties: dict[str, float], last: str) -> tuple[float, dict[str, float]]:
    """The last tier less the penalties; terms: every tier's value and the penalties."""
    terms = {name: criterion(a, name) for name in [*tiers(a.scenario), last]}
    return terms[last] - sum(penalties.values()), {**terms, **penalties}


def _recompute_roi(a: Audit, penalties: dict[str, float]) -> tuple[float, dict[str, float]]:
    return _recompute_last(a, penalties, "roi")


def _recompute_staged(a: Audit, penalties: dict[str, float]) -> tuple[float, dict[str, float]]:
    return _recompute_last(a, penalties, all_tiers(a.scenario)[-1])


def _recompute_weighted(a: Audit, penalties: dict[str, float]) -> tuple[float, dict[str, float]]:
    obj = a.scenario.policy.objective
    terms: dict[str, float] = {}
    objective = 0.0
    for name, w in obj.weights.items():
        terms[name] = criterion(a, name)
        if w:
            objective += w * terms[name] / (scale(a, name) if obj.normalise else 1.0)
    objective -= sum(penalties.values()) / (scale(a, "benefit") if obj.normalise else 1.0)
    return objective, {**terms, **penalties}


Define = Callable[[Build], None]
Recompute = Callable[[Audit, dict[str, float]], tuple[float, dict[str, float]]]
KINDS: dict[str, tuple[Define, Recompute]] = {
    "benefit": (_define_benefit, _recompute_benefit),
    "roi": (_define_roi, _recompute_roi),
    "max-min": (_define_staged, _recompute_staged),
    "lexicographic": (_define_staged, _recompute_staged),
    "weighted": (_define_weighted, _recompute_weighted),
}
"""Objective kind → (define, recompute)."""


def define_objective(m: Build) -> None:
    """Set the objective coefficients (and earlier tiers) for the policy's objective kind."""
    KINDS[m.scenario.policy.objective.kind][0](m)


def recompute(a: Audit, penalties: dict[str, float]) -> tuple[float, dict[str, float]]:
    """The plan's objective for the policy's objective kind, and its terms, from the audit's figures."""
    return KINDS[a.scenario.policy.objective.kind][1](a, penalties)


FAMILY = Family(name="objective", define=define_objective)
