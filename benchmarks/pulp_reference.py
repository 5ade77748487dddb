"""The reference PuLP build for the build-speed comparison: the same model written the way a PuLP
model is usually written, one term at a time (``coef * var`` summed with ``lpSum`` per row).

``solver.backends.cbc.build_pulp_problem`` (what the CBC backend uses) is faster: it hands PuLP
each row's (variable, coefficient) pairs in bulk. Both are timed in ``run.py``.
"""

from __future__ import annotations

import math
from typing import Any

import pulp

from solver.mip.arrays import MILP


def build_term_by_term(model: MILP) -> Any:
    """A PuLP problem equal to ``model``, built term by term."""
    prob = pulp.LpProblem("envelope", pulp.LpMaximize)
    x = []
    for j in range(model.n_cols):
        lo = None if math.isinf(model.col_lo[j]) else float(model.col_lo[j])
        hi = None if math.isinf(model.col_hi[j]) else float(model.col_hi[j])
        cat = pulp.LpInteger if model.integrality[j] else pulp.LpContinuous
        x.append(pulp.LpVariable(f"c{j}", lowBound=lo, upBound=hi, cat=cat))
    prob += pulp.lpSum(float(model.c[j]) * x[j] for j in range(model.n_cols) if model.c[j] != 0)
    A = model.A.tocsr()
    for i in range(model.n_rows):
        cols = A.indices[A.indptr[i]:A.indptr[i + 1]]
        vals = A.data[A.indptr[i]:A.indptr[i + 1]]
        expr = pulp.lpSum(float(a) * x[j] for j, a in zip(cols, vals))
        lo, hi = model.row_lo[i], model.row_hi[i]
        if lo == hi:
            prob += expr == float(hi), f"r{i}"
            continue
        if not math.isinf(hi):
            prob += expr <= float(hi), f"r{i}_hi"
        if not math.isinf(lo):
            prob += expr >= float(lo), f"r{i}_lo"
    return prob
