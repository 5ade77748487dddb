"""A greedy plan on the model's own rows: an incumbent before the solver starts.

On a large instance a MIP solver can spend its whole time limit in presolve and root heuristics
and stop without any plan. A plan that keeps every rule is often cheap to find: fund what must
be funded, then the best options by value per £ while every row still holds. ``greedy_start``
does that on the backend-neutral arrays (so every rule family is respected by construction,
with no rule-specific code): it returns a point that satisfies every row and bound of the model,
or None when the greedy pass cannot satisfy a lower-bound row (a hard fair-share floor, a
mandatory project that does not fit). The point is used as a MIP start, and as the plan of last
resort when the solver stops without one; like every plan, it is decoded and audited.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from solver.mip.arrays import MILP

SLACK_KINDS = ("fs_short", "fs_excess")
"""Continuous columns that exist to absorb a row's shortfall or excess at a penalty: set last,
to the least value that makes their row hold."""
TOL = 1e-9


def greedy_start(model: MILP, options: np.ndarray, order: np.ndarray | None = None,
                 soft: np.ndarray | None = None) -> np.ndarray | None:
    """A point satisfying every row and bound of ``model``, built greedily, or None.

    ``options`` are the columns of the start-year options (``Formulation.x``). Other integer
    columns (platform flags, withdrawals) are switched on only when an option needs them;
    continuous columns other than penalised slacks stay at their lower bound. ``order`` replaces
    the value-per-use ranking of step 2 by the given option columns, all tried in that order, the
    list gone through again while anything more fits (a rule-based allocation). ``soft`` marks
    rows that what must be funded (step 1) may exceed: they bind only the options added after it,
    and the point is checked against the other rows.
    """
    A = model.A.tocsc()
    n = model.n_cols
    x = np.array(model.col_lo, dtype=float)
    if np.any(~np.isfinite(x)):
        return None
    act = model.A @ x
    slack = np.flatnonzero(np.isin(model.col_kind, SLACK_KINDS) & (model.col_hi > 0))
    free_rows = np.zeros(model.n_rows, dtype=bool)
    for k in slack:
        free_rows[A.indices[A.indptr[k]:A.indptr[k + 1]]] = True
    hi = np.where(free_rows, np.inf, model.row_hi)
    soft = np.zeros(model.n_rows, dtype=bool) if soft is None else soft
    hard_hi = hi
    hi = np.where(soft, np.inf, hard_hi)

    def column(j: int) -> tuple[np.ndarray, np.ndarray]:
        return A.indices[A.indptr[j]:A.indptr[j + 1]], A.data[A.indptr[j]:A.indptr[j + 1]]

    helpers = np.flatnonzero(model.integrality & ~np.isin(np.arange(n), options))

    def add(j: int) -> bool:
        """Set column j to 1 (and any helper column its rows need) if every upper bound holds."""
        if x[j] >= 1 or model.col_hi[j] < 1:
            return False
        rows, vals = column(j)
        new = act[rows] + vals
        over = new > hi[rows] + TOL
        if not over.any():            # the common case: nothing else needed
            act[rows] = new
            x[j] = 1.0
            return True
        picked = [j]
        if over.any():
            # a link row (option − flag ≤ 0) asks for a helper flag: switch one on if it fits
            if not link_rows[rows[over]].all():
                return False          # a money or count row is full: no flag can help
            for r in rows[over]:
                row_cols = model.A.indices[model.A.indptr[r]:model.A.indptr[r + 1]]
                row_vals = model.A.data[model.A.indptr[r]:model.A.indptr[r + 1]]
                cand = [c for c, v in zip(row_cols, row_vals)
                        if v < 0 and x[c] == 0 and model.col_hi[c] >= 1 and c in helper_set]
                if not cand:
                    return False
                picked.append(int(cand[0]))
        delta: dict[int, float] = {}
        for c in picked:
            rr, vv = column(c)
            for r, v in zip(rr, vv):
                delta[r] = delta.get(r, 0.0) + v
        rr = np.fromiter(delta, dtype=np.int64, count=len(delta))
        vv = np.fromiter(delta.values(), dtype=float, count=len(delta))
        if np.any(act[rr] + vv > hi[rr] + TOL):
            return False
        act[rr] += vv
        x[picked] = 1.0
        return True

    helper_set = set(helpers.tolist())
    link_rows = np.zeros(model.n_rows, dtype=bool)     # rows where switching a helper flag on adds room
    for k in helpers:
        rr, vv = column(int(k))
        link_rows[rr[vv < 0]] = True
    slack_set = set(slack.tolist())
    # 1. rows that must reach a positive level (mandatory items, commitments): cheapest member that fits
    option_set = set(options.tolist())
    A_csr = model.A
    for r in np.flatnonzero(np.isfinite(model.row_lo) & (model.row_lo > TOL) & ~free_rows):
        if act[r] >= model.row_lo[r] - TOL:
            continue
        cols = A_csr.indices[A_csr.indptr[r]:A_csr.indptr[r + 1]]
        members = [int(c) for c in cols if c in option_set or c in helper_set]
        members.sort(key=lambda c: (c not in option_set, -model.c[c]))
        for c in members:                # as many as the row needs (one for a mandatory item, more for a floor)
            if add(c) and act[r] >= model.row_lo[r] - TOL:
                break
        if act[r] < model.row_lo[r] - TOL:
            return None
    # 2. the best options by value per unit of what they use (or in the given order), while every row holds
    hi[:] = hard_hi
    if order is None:
        value = model.c[options]
        use = np.asarray(abs(A[:, options]).sum(axis=0)).ravel()
        ranked = options[np.argsort(-(value / (1.0 + use)), kind="stable")]
        for j in ranked[model.c[ranked] > 0]:
            add(int(j))
    else:
        # a rule goes down its list again while something more fits (a project skipped because its
        # prerequisite was not funded yet is reconsidered once it is)
        added = True
        while added:
            added = False
            for j in order:
                if x[j] < 1 and add(int(j)):
                    added = True
    # 3. penalised slacks: in each of their rows, the least amount that brings the row into bounds
    for r in np.flatnonzero(free_rows):
        lo, up = model.row_lo[r], model.row_hi[r]
        short = lo - act[r] if act[r] < lo - TOL else (up - act[r] if act[r] > up + TOL else 0.0)
        if short == 0.0:
            continue
        cols = A_csr.indices[A_csr.indptr[r]:A_csr.indptr[r + 1]]
        vals = A_csr.data[A_csr.indptr[r]:A_csr.indptr[r + 1]]
        for k, v in zip(cols, vals):
            if k not in slack_set or v * short <= 0:
                continue              # only a slack that moves the row the right way
            amount = min(short / v, float(model.col_hi[k]) - x[k])
            rr, vv = column(int(k))
            act[rr] += vv * amount
            x[k] += amount
            short -= v * amount
            if abs(short) <= TOL:
                break
        if abs(short) > TOL:
            return None
    if soft.any():
        return x if dataclasses.replace(model, row_hi=np.where(soft, np.inf, model.row_hi)).max_violation(x) <= 1e-7 \
            else None
    return x if model.max_violation(x) <= 1e-7 else None
