r"""Selection and phasing: start-year options and "funded at most once".

.. math:: x_o \in \{0,1\}, \qquad \sum_{s} x_{(p,s)} \le 1 \quad \forall p

An option :math:`o = (p, s)` exists when :math:`s \in [e_p, l_p]` and the whole cost profile fits
in the envelope years (``formulation.prepare``). A project the scenario excludes
(``variants.ForceOut``) has its options fixed at 0. The objective coefficient of :math:`x_o` is set
by the objective family (``solver/rules/objective.py``).
"""

from __future__ import annotations

import numpy as np

from solver.mip.arrays import INF
from solver.rules.base import Audit, Build, Family


def define(m: Build) -> None:
    """The option columns ``x`` and the "once" rows."""
    b, d, scenario = m.b, m.d, m.scenario
    names = [f"x[{d.project_ids[p]}@{s}]" for p, s in zip(d.o_project, d.o_start)]
    hi = np.ones(len(names))
    if scenario.excluded:
        hi[np.isin(d.project_ids[d.o_project].astype(str), sorted(scenario.excluded))] = 0.0
    x = b.add_columns("x", names, 0.0, hi, integer=True)
    counts = np.bincount(d.o_project, minlength=len(d.project_ids))
    multi = np.flatnonzero(counts > 1)
    if multi.size:
        row_of = np.full(len(d.project_ids), -1)
        row_of[multi] = np.arange(multi.size)
        sel = row_of[d.o_project] >= 0
        b.add_rows("once", [f"once[{d.project_ids[p]}]" for p in multi],
                   row_of[d.o_project[sel]], x[sel], np.ones(sel.sum()), -INF, 1.0)
    m.x = x


def check(a: Audit) -> list[str]:
    """Every funded project is a project of the instance, starts in its window, fits the envelope
    years and is not excluded by the scenario."""
    v, dec, years = a.v, a.dec, a.v.years
    out: list[str] = []
    for p_id, s in dec.starts.items():
        if p_id not in v.projects:
            out.append(f"{p_id}: funded but not a project of the instance")
            continue
        p = v.projects[p_id]
        if not p.earliest <= s <= p.latest:
            out.append(f"{p_id}: starts {s}, outside [{p.earliest}, {p.latest}]")
        if s + max(p.profile) > years[-1]:
            out.append(f"{p_id}: cost profile starting {s} runs past {years[-1]}")
        if p_id in a.scenario.excluded:
            out.append(f"{p_id}: funded although the scenario excludes it")
    return out


def unknown(a: Audit) -> list[str] | None:
    """When the plan names a project the instance does not have (funded or withdrawn), the messages
    for the withdrawn ones; None when every project is known (the accounts can then be computed)."""
    v, dec = a.v, a.dec
    if any(p not in v.projects for p in list(dec.starts) + list(dec.withdrawn)):
        return [f"{p}: withdrawn but not a project of the instance" for p in dec.withdrawn if p not in v.projects]
    return None


FAMILY = Family(name="selection", define=define, check=check)
