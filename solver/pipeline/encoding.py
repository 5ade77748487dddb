"""Between a solver point and decisions: ``decode`` reads a plan off a column vector, ``encode``
writes a plan's integer decisions back (e.g. as a warm start)."""

from __future__ import annotations

import numpy as np

from solver.mip.formulation import Formulation
from solver.pipeline.decisions import Decisions


def decode(form: Formulation, x: np.ndarray) -> Decisions:
    """Read decisions off a solver point (binaries rounded; money rounded to 1e-9 £m)."""
    d = form.data
    chosen = np.flatnonzero(np.round(x[form.x]) == 1)
    starts = {str(d.project_ids[d.o_project[o]]): int(d.o_start[o]) for o in chosen}
    withdrawn: list[str] = []
    if "withdraw" in form.cols:
        com = np.flatnonzero(~np.isnan(d.p_committed))
        withdrawn = sorted(str(d.project_ids[p]) for p, j in zip(com, form.cols["withdraw"]) if round(x[j]) == 1)
    flex = {}
    if "flex" in form.cols:
        flex = {int(y): float(np.round(max(x[j], 0.0), 9)) for y, j in zip(d.years, form.cols["flex"])}
    carry = {}
    for pot in ("capital", "revenue"):
        key = f"carry_{pot}"
        if key in form.cols:
            for y, j in zip(d.years[:-1], form.cols[key]):
                carry[(pot, int(y))] = float(np.round(max(x[j], 0.0), 9))
    return Decisions(starts=dict(sorted(starts.items())), withdrawn=withdrawn, flex=flex, carry=carry)


def encode(form: Formulation, dec: Decisions) -> np.ndarray:
    """A column vector for a plan's integer decisions (options, withdrawals, platforms), e.g. as a
    warm start; continuous columns are left at 0 for the solver to complete."""
    d = form.data
    x = np.zeros(form.model.n_cols)
    pid = {str(p): i for i, p in enumerate(d.project_ids)}
    key = {(int(p), int(s)): j for j, (p, s) in enumerate(zip(d.o_project, d.o_start))}
    for p, s in dec.starts.items():
        j = key.get((pid[p], s)) if p in pid else None
        if j is not None:
            x[form.x[j]] = 1.0
    if "withdraw" in form.cols:
        com = np.flatnonzero(~np.isnan(d.p_committed))
        for p, j in zip(com, form.cols["withdraw"]):
            x[j] = float(str(d.project_ids[p]) in dec.withdrawn)
    if "platform" in form.cols:
        used = {(str(d.system_ids[d.p_system[pid[p]]]), str(d.p_platform[pid[p]])) for p in dec.starts if p in pid}
        for (s, k), j in zip(form.col_keys["platform"], form.cols["platform"]):
            x[j] = float((s, k) in used)
    return x
