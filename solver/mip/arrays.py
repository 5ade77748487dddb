"""The backend-neutral model: a mixed-integer programme held as plain arrays.

    maximise    c @ x + offset
    subject to  row_lo <= A @ x <= row_hi
                col_lo <= x <= col_hi
                x[j] integer where integrality[j]

Every column and row carries a label that maps back to the domain (``x[P012,2026]``,
``capital[2025]``), and rows are grouped into named rule families (``budget``, ``match``,
``fair_share`` ...) so that infeasibility explanations and reports can speak the user's terms.
The object is plain data (numpy + scipy.sparse) and pickles, so it can cross process and
cluster boundaries unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

INF = float("inf")


@dataclass(frozen=True)
class Stage:
    """An earlier tier of a lexicographic objective: maximise ``c @ x`` first, then keep it within
    ``tolerance`` (a fraction of its optimum) while the later tiers are optimised."""

    name: str
    c: np.ndarray
    tolerance: float = 0.0


@dataclass
class MILP:
    """A maximisation MILP in row-bounded form; see module docstring."""

    c: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    integrality: np.ndarray
    A: sp.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    col_names: list[str]
    row_names: list[str]
    row_family: np.ndarray
    col_kind: np.ndarray
    offset: float = 0.0
    families: list[str] = field(default_factory=list)
    stages: tuple[Stage, ...] = ()
    """Earlier tiers, solved in order before ``c`` (``solver.pipeline.core``); empty for one objective."""

    @property
    def n_cols(self) -> int:
        """Number of variables."""
        return int(self.c.shape[0])

    @property
    def n_rows(self) -> int:
        """Number of constraints."""
        return int(self.A.shape[0])

    @property
    def n_integer(self) -> int:
        """Number of integer (here: binary) variables."""
        return int(self.integrality.sum())

    @property
    def nnz(self) -> int:
        """Number of nonzeros in the constraint matrix."""
        return int(self.A.nnz)

    def size(self) -> dict[str, int]:
        """Model size figures for summaries and benchmarks."""
        return {
            "columns": self.n_cols,
            "integer_columns": self.n_integer,
            "rows": self.n_rows,
            "nonzeros": self.nnz,
        }

    def objective_value(self, x: np.ndarray) -> float:
        """Objective of a point, with the constant offset."""
        return float(self.c @ x + self.offset)

    def max_violation(self, x: np.ndarray) -> float:
        """Largest bound, row or integrality violation of a point (0 when feasible)."""
        ax = self.A @ x
        viol = [
            np.max(self.row_lo - ax, initial=0.0),
            np.max(ax - self.row_hi, initial=0.0),
            np.max(self.col_lo - x, initial=0.0),
            np.max(x - self.col_hi, initial=0.0),
        ]
        xi = x[self.integrality]
        viol.append(np.max(np.abs(xi - np.round(xi)), initial=0.0))
        return float(max(viol))


    def extended(self, *, columns: Sequence[tuple[str, float, float, bool]] = (),
                 rows: Sequence[tuple[str, np.ndarray, np.ndarray, float, float]] = (),
                 objective: tuple[np.ndarray, float] | None = None, family: str = "extra",
                 upper: tuple[np.ndarray, np.ndarray] | None = None) -> MILP:
        """A copy with extra columns ``(name, lo, hi, integer)`` appended after the existing ones,
        extra rows ``(name, cols, vals, lo, hi)`` (column indices into the extended model), an
        optional new objective ``(c, offset)`` over the extended columns (default: the old one, 0 on
        the new columns) and optional new upper bounds ``(cols, hi)`` (fixings, e.g. a project
        excluded from a re-solve). The first ``n_cols`` columns keep their meaning, so a plan decodes
        from the extended model's point as from the original."""
        n_new = len(columns)
        n = self.n_cols + n_new
        c = np.concatenate([self.c, np.zeros(n_new)])
        offset = self.offset
        if objective is not None:
            c, offset = np.asarray(objective[0], dtype=float), float(objective[1])
            if c.shape != (n,):
                raise ValueError(f"objective has {c.shape[0]} coefficients, the extended model {n} columns")
        A = sp.csr_matrix((self.A.data, self.A.indices, self.A.indptr), shape=(self.n_rows, n))
        if rows:
            r = np.concatenate([np.full(len(cols), i) for i, (_, cols, _, _, _) in enumerate(rows)])
            cc = np.concatenate([np.asarray(cols, dtype=np.int64) for _, cols, _, _, _ in rows])
            vv = np.concatenate([np.asarray(vals, dtype=float) for _, _, vals, _, _ in rows])
            extra = sp.csr_matrix((vv, (r, cc)), shape=(len(rows), n))
            extra.sum_duplicates()
            A = sp.vstack([A, extra], format="csr")
        col_hi = np.concatenate([self.col_hi, [col[2] for col in columns]])
        if upper is not None:
            col_hi[np.asarray(upper[0], dtype=np.int64)] = upper[1]
        return MILP(
            c=c,
            col_lo=np.concatenate([self.col_lo, [col[1] for col in columns]]),
            col_hi=col_hi,
            integrality=np.concatenate([self.integrality, np.array([col[3] for col in columns], dtype=bool)]),
            A=A,
            row_lo=np.concatenate([self.row_lo, [row[3] for row in rows]]),
            row_hi=np.concatenate([self.row_hi, [row[4] for row in rows]]),
            col_names=list(self.col_names) + [col[0] for col in columns],
            row_names=list(self.row_names) + [row[0] for row in rows],
            row_family=np.concatenate([self.row_family, np.array([family] * len(rows), dtype=object)]),
            col_kind=np.concatenate([self.col_kind, np.array([family] * n_new, dtype=object)]),
            offset=offset,
            families=list(self.families) + ([family] if rows else []),
            stages=tuple(Stage(st.name, np.concatenate([st.c, np.zeros(n_new)]), st.tolerance) for st in self.stages),
        )


class ModelBuilder:
    """Accumulates column and row blocks as triplets, then freezes them into a ``MILP``.

    Each ``define_*`` function adds its variables and rows in whole numpy blocks; nothing here
    loops over terms in Python.
    """

    def __init__(self) -> None:
        self._c: list[np.ndarray] = []
        self._lo: list[np.ndarray] = []
        self._hi: list[np.ndarray] = []
        self._int: list[np.ndarray] = []
        self._col_names: list[str] = []
        self._col_kind: list[str] = []
        self._n_cols = 0
        self._rows: list[np.ndarray] = []
        self._cols: list[np.ndarray] = []
        self._vals: list[np.ndarray] = []
        self._row_lo: list[np.ndarray] = []
        self._row_hi: list[np.ndarray] = []
        self._row_names: list[str] = []
        self._row_family: list[str] = []
        self._n_rows = 0
        self.offset = 0.0
        self.stages: list[Stage] = []

    @property
    def n_cols(self) -> int:
        """Columns added so far."""
        return self._n_cols

    def add_columns(
        self,
        kind: str,
        names: list[str],
        lo: np.ndarray | float,
        hi: np.ndarray | float,
        *,
        integer: bool,
        cost: np.ndarray | float = 0.0,
    ) -> np.ndarray:
        """Add a block of columns; returns their indices."""
        n = len(names)
        idx = np.arange(self._n_cols, self._n_cols + n)
        self._c.append(np.broadcast_to(np.asarray(cost, dtype=float), (n,)).copy())
        self._lo.append(np.broadcast_to(np.asarray(lo, dtype=float), (n,)).copy())
        self._hi.append(np.broadcast_to(np.asarray(hi, dtype=float), (n,)).copy())
        self._int.append(np.full(n, integer))
        self._col_names.extend(names)
        self._col_kind.extend([kind] * n)
        self._n_cols += n
        return idx

    def add_cost(self, cols: np.ndarray, values: np.ndarray | float) -> None:
        """Add to the objective coefficients of existing columns."""
        c = self._frozen_cost()
        np.add.at(c, np.asarray(cols, dtype=int), values)
        self._c = [c]

    def _frozen_cost(self) -> np.ndarray:
        return np.concatenate(self._c) if self._c else np.zeros(0)

    def add_rows(
        self,
        family: str,
        names: list[str],
        rows: np.ndarray,
        cols: np.ndarray,
        vals: np.ndarray,
        lo: np.ndarray | float,
        hi: np.ndarray | float,
    ) -> np.ndarray:
        """Add a block of rows given COO triplets with row indices local to the block."""
        n = len(names)
        idx = np.arange(self._n_rows, self._n_rows + n)
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            raise ValueError(f"{family}: row index outside the block")
        self._rows.append(rows + self._n_rows)
        self._cols.append(np.asarray(cols, dtype=np.int64))
        self._vals.append(np.asarray(vals, dtype=float))
        self._row_lo.append(np.broadcast_to(np.asarray(lo, dtype=float), (n,)).copy())
        self._row_hi.append(np.broadcast_to(np.asarray(hi, dtype=float), (n,)).copy())
        self._row_names.extend(names)
        self._row_family.extend([family] * n)
        self._n_rows += n
        return idx

    def build(self) -> MILP:
        """Freeze into a ``MILP`` (duplicate triplets are summed, explicit zeros dropped)."""
        def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

        A = sp.coo_matrix(
            (cat(self._vals, float), (cat(self._rows, np.int64), cat(self._cols, np.int64))),
            shape=(self._n_rows, self._n_cols),
        ).tocsr()
        A.sum_duplicates()
        A.eliminate_zeros()
        families = list(dict.fromkeys(self._row_family))
        return MILP(
            c=self._frozen_cost() if self._c else np.zeros(0),
            col_lo=cat(self._lo, float),
            col_hi=cat(self._hi, float),
            integrality=cat(self._int, bool),
            A=A,
            row_lo=cat(self._row_lo, float),
            row_hi=cat(self._row_hi, float),
            col_names=list(self._col_names),
            row_names=list(self._row_names),
            row_family=np.asarray(self._row_family, dtype=object),
            col_kind=np.asarray(self._col_kind, dtype=object),
            offset=self.offset,
            families=families,
            stages=tuple(Stage(st.name, np.concatenate([st.c, np.zeros(self._n_cols - st.c.shape[0])]), st.tolerance)
                         for st in self.stages),
        )
