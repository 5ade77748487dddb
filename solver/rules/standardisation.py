r"""Standardisation: core (EPR) platforms per system, for projects with a platform only.

:math:`y_{s,k} \in \{0,1\}`: platform :math:`k` used by a funded project in system :math:`s`;
link :math:`\sum_s x_{(p,s)} \le y_{\mathrm{sys}(p),k(p)}`.

- ``no-divergence``: :math:`y_{s,k} = 0` for :math:`k \notin P_s` when the system already has
  platforms :math:`P_s \neq \emptyset`; a system with none: :math:`\sum_k y_{s,k} \le 1`.
- ``single``: :math:`\sum_k y_{s,k} \le 1` for every system.
- ``penalty``: each :math:`y_{s,k}` with :math:`k \notin P_s` costs π points — the family's
  contribution to the objective, which the objective family assembles (``Build.penalties``).
"""

from __future__ import annotations

import numpy as np

from solver.data.scenario import Scenario
from solver.data.variants import Override
from solver.mip.arrays import INF
from solver.pipeline.accounts import View
from solver.pipeline.decisions import Decisions
from solver.rules.base import Audit, Build, Cheap, Family, Priced, PriceRelaxation, row_key


def define(m: Build) -> None:
    """The ``platform`` columns (bans as zero upper bounds) and the ``standardisation`` rows."""
    mode = m.scenario.policy.standardisation.mode
    if mode == "off":
        return
    b, d, x = m.b, m.d, m.x
    o_plat = d.p_platform[d.o_project]
    has = np.flatnonzero(o_plat != "")
    if has.size == 0:
        return
    o_sys = d.p_system[d.o_project[has]]
    pairs = sorted({(int(s), str(k)) for s, k in zip(o_sys, o_plat[has])})
    pair_idx = {pk: i for i, pk in enumerate(pairs)}
    new = np.array([k not in d.sys_platforms[s] for s, k in pairs])
    ub = np.ones(len(pairs))
    cost = np.zeros(len(pairs))
    if mode == "no-divergence":
        has_any = np.array([bool(d.sys_platforms[s]) for s, _ in pairs])
        ub[new & has_any] = 0.0
    if mode == "penalty":
        cost[new] = -m.scenario.policy.standardisation.penalty
    y = b.add_columns("platform", [f"platform[{d.system_ids[s]},{k}]" for s, k in pairs], 0.0, ub, integer=True)
    m.penalties["standardisation"] = (y, cost)
    # link rows: one per project with a platform
    projs = np.unique(d.o_project[has])
    row_of = np.full(len(d.project_ids), -1)
    row_of[projs] = np.arange(projs.size)
    link_y = np.array([pair_idx[(int(d.p_system[p]), str(d.p_platform[p]))] for p in projs])
    b.add_rows("standardisation", [f"platform_link[{d.project_ids[p]}]" for p in projs],
               np.concatenate([row_of[d.o_project[has]], np.arange(projs.size)]),
               np.concatenate([x[has], y[link_y]]),
               np.concatenate([np.ones(has.size), -np.ones(projs.size)]), -INF, 0.0)
    if mode in ("no-divergence", "single"):
        sys_of = np.array([s for s, _ in pairs])
        if mode == "no-divergence":
            pick = np.array([not d.sys_platforms[s] for s in sys_of])
        else:
            pick = np.ones(len(pairs), dtype=bool)
        if pick.any():
            used, row = np.unique(sys_of[pick], return_inverse=True)
            b.add_rows("standardisation", [f"one_platform[{d.system_ids[s]}]" for s in used], row, y[pick],
                       np.ones(pick.sum()), -INF, 1.0)
    m.cols["platform"], m.keys["platform"] = y, [(str(d.system_ids[s]), k) for s, k in pairs]


def funded_platforms(v: View, dec: Decisions) -> dict[str, set[str]]:
    """Per system, the platforms of its funded projects."""
    out: dict[str, set[str]] = {}
    for p_id in dec.starts:
        p = v.projects[p_id]
        if p.platform:
            out.setdefault(p.system, set()).add(p.platform)
    return out


def check(a: Audit) -> list[str]:
    """no-divergence: no platform new to a system that has some, at most one for a system with none;
    single: at most one platform per system."""
    mode = a.scenario.policy.standardisation.mode
    present = a.v.present_platforms
    out = []
    for s, plats in sorted(funded_platforms(a.v, a.dec).items()):
        new = plats - present[s]
        if mode == "no-divergence":
            if present[s] and new:
                out.append(f"{s}: funds platform(s) {sorted(new)} not already in the system (no-divergence)")
            if not present[s] and len(plats) > 1:
                out.append(f"{s}: has no platform yet but funds {sorted(plats)}; may adopt exactly one")
        elif mode == "single" and len(plats) > 1:
            out.append(f"{s}: funds {len(plats)} platforms {sorted(plats)}; 'single' allows one")
    return out


def penalty(a: Audit) -> dict[str, float]:
    """The objective points lost to standardisation: π per platform newly introduced in a system."""
    std = a.scenario.policy.standardisation
    total = 0.0
    if std.mode == "penalty":
        for s, plats in sorted(funded_platforms(a.v, a.dec).items()):
            total += std.penalty * len(plats - a.v.present_platforms[s])
    return {"standardisation": total}


def causes(c: Cheap) -> list[str]:
    """Mandatory or committed projects on a platform that no-divergence forbids in their system."""
    if c.scenario.policy.standardisation.mode != "no-divergence":
        return []
    orgs = c.scenario.instance.organisations
    present: dict[str, set[str]] = {}
    for s, k in zip(orgs["system_id"], orgs["platform"]):
        if isinstance(k, str) and k:
            present.setdefault(s, set()).add(k)
    out = []
    for p in c.forced:
        k = c.projects.at[p, "platform"]
        s = c.psys[p]
        if isinstance(k, str) and k and present.get(s) and k not in present[s]:
            out.append(f"standardisation: {p} must be funded but uses platform {k}, "
                       f"which system {s} does not run (it runs {', '.join(sorted(present[s]))})")
    return out


def describe(row: str, activity: float, hi: float, amount: float) -> str:
    """A relaxed standardisation row (or platform ban) as a sentence."""
    key = row_key(row)
    parts = key.split(",")
    if row.startswith("new_platform"):
        return f"standardisation: system {parts[0]} would have to adopt platform {parts[1]}, new to it"
    if row.startswith("one_platform"):
        return f"standardisation: system {key} would need more than one platform"
    return f"standardisation: {key} uses a platform its system may not adopt"


def prices(scenario: Scenario) -> Priced:
    """Standardisation off (any platform may be funded anywhere)."""
    mode = scenario.policy.standardisation.mode
    if mode == "off":
        return [], {"standardisation": "mode off"}
    if not scenario.instance.projects["platform"].fillna("").astype(str).str.len().gt(0).any():
        return [], {"standardisation": "no project has a platform"}
    return [PriceRelaxation("standardisation", f"mode {mode} → off",
                            (Override.of({"standardisation": {"mode": "off"}}),))], {}


FAMILY = Family(name="standardisation", define=define, check=check, penalty=penalty, causes=causes,
                rows={"standardisation": "rule"}, describe=describe, bans=("platform", "new_platform"),
                prices=prices)
