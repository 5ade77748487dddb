r"""Alternatives: at most one project per alternatives group, :math:`\sum_{p \in g} \sum_s x_{(p,s)} \le 1`."""

from __future__ import annotations

import numpy as np

from solver.data.scenario import Scenario
from solver.data.variants import Override
from solver.mip.arrays import INF
from solver.rules.base import Audit, Build, Cheap, Family, Priced, PriceRelaxation, row_key


def define(m: Build) -> None:
    """The ``alternatives`` rows, one per group (when the rule is on)."""
    if not m.scenario.policy.alternatives.enabled:
        return
    d = m.d
    groups = d.p_group[d.o_project]
    has = groups != ""
    if not has.any():
        return
    names, row = np.unique(groups[has].astype(str), return_inverse=True)
    m.b.add_rows("alternatives", [f"group[{g}]" for g in names], row, m.x[has], np.ones(has.sum()), -INF, 1.0)


def check(a: Audit) -> list[str]:
    """No group has more than one funded project."""
    if not a.scenario.policy.alternatives.enabled:
        return []
    out = []
    for g, members in sorted(a.v.group_members.items()):
        funded = sorted(p for p in members if p in a.dec.starts)
        if len(funded) > 1:
            out.append(f"group {g}: {len(funded)} alternatives funded ({', '.join(funded)}), at most one allowed")
    return out


def causes(c: Cheap) -> list[str]:
    """Mandatory or committed projects that share an alternatives group."""
    if not c.scenario.policy.alternatives.enabled:
        return []
    groups: dict[str, list[str]] = {}
    for p in c.forced:
        g = c.projects.at[p, "group"]
        if isinstance(g, str) and g:
            groups.setdefault(g, []).append(p)
    return [f"alternatives: group {g} allows one project, but {', '.join(sorted(ps))} are all mandatory or committed"
            for g, ps in sorted(groups.items()) if len(ps) > 1]


def describe(row: str, activity: float, hi: float, amount: float) -> str:
    """A relaxed alternatives row as a sentence."""
    return f"alternatives: group {row_key(row)} needs more than one of its projects funded"


def prices(scenario: Scenario) -> Priced:
    """Alternatives may be funded together."""
    if not scenario.policy.alternatives.enabled:
        return [], {"alternatives": "off"}
    if not scenario.instance.projects["group"].fillna("").astype(str).str.len().gt(0).any():
        return [], {"alternatives": "no alternatives group"}
    return [PriceRelaxation("alternatives", "alternatives may be funded together",
                            (Override.of({"alternatives": {"enabled": False}}),))], {}


FAMILY = Family(name="alternatives", define=define, check=check, causes=causes, rows={"alternatives": "rule"},
                describe=describe, prices=prices)
