"""One protocol every solver backend follows: ``available()``, ``refusal(model)``, ``solve(model, options)``
and ``lp_duals(model)``, with the ``Capabilities`` it declares."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from solver.backends.result import LpDuals, SolveResult
from solver.mip.arrays import MILP


@dataclass(frozen=True)
class SolveOptions:
    """Solver settings common to every backend.

    ``mip_gap`` is the relative gap at which the solver may stop and call the plan optimal;
    ``threads`` 0 means the backend's default.

    ``tolerance`` (None: the backend's defaults) asks for a *strict* solve, used by the solve core
    when a plan broke a money row by the solver's own tolerance: primal feasibility and integrality
    tolerances at this absolute value (HiGHS ``primal_feasibility_tolerance`` and
    ``mip_feasibility_tolerance``; CBC ``primalTolerance`` and ``integerTolerance``; SCIP
    ``numerics/feastol``; CP-SAT, exact on its grid, ignores it) and no presolve reductions that
    rely on the default tolerances (HiGHS ``presolve off``).
    """

    time_limit: float = 60.0
    mip_gap: float = 1e-3
    threads: int = 0
    seed: int = 0
    verbose: bool = False
    tolerance: float | None = None

    def as_dict(self) -> dict[str, object]:
        """Plain-dict form for summaries (``tolerance`` only when set, so default summaries are unchanged)."""
        out = asdict(self)
        if out["tolerance"] is None:
            del out["tolerance"]
        return out


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, declared once; callers ask this, never the backend's name."""

    integer: bool = True            # integer (binary) variables
    mip_start: bool = False         # uses a warm start point
    lp_duals: bool = False          # ``lp_duals``: row duals of the LP relaxation
    interrupt: bool = True          # Ctrl-C stops the solve and keeps the incumbent
    exact_continuous: bool = True   # continuous variables at full precision (CP-SAT: £1 grid)
    writes: frozenset[str] = frozenset()  # model file formats ``write_model`` writes ("mps", "lp")


#: The backend that computes LP relaxation duals.
LP_DUALS_BACKEND = "highs"


def no_lp_duals(name: str) -> str:
    """The sentence a backend without ``lp_duals`` raises (as ``BackendError``)."""
    return (f"backend {name} does not compute LP relaxation duals; use backend '{LP_DUALS_BACKEND}' "
            f"(--backend {LP_DUALS_BACKEND}) for them")


#: Model file formats a backend may declare in ``Capabilities.writes``, with what each is.
MODEL_FORMATS = {"mps": "free-format MPS", "lp": "CPLEX LP"}


def cannot_write(name: str, fmt: str, writers: list[str]) -> str:
    """The sentence a backend that cannot write ``fmt`` raises (as ``BackendError``), naming those that can."""
    other = f"; backends that can: {', '.join(writers)}" if writers else ""
    return f"backend {name} does not write {fmt.upper()} files{other}"


STRICT_SCALE_GBPM = 1e3
"""Row size (£m) from which a solver's default tolerances (about 1e-6, relative to the row) no longer
resolve £1k: CBC and SCIP then solve strictly from the start (they were seen to prune the true
optimum away and still prove "optimal" at £100bn, which no re-solve of the returned plan can see)."""


def strict_at_scale(model: MILP, options: SolveOptions, tolerance: float = 1e-9) -> SolveOptions:
    """``options`` with a strict ``tolerance`` when any row bound of ``model`` reaches
    ``STRICT_SCALE_GBPM`` and none was asked for."""
    bounds = np.concatenate([model.row_lo, model.row_hi])
    finite = np.abs(bounds[np.isfinite(bounds)])
    if options.tolerance is not None or not finite.size or finite.max() < STRICT_SCALE_GBPM:
        return options
    return dataclasses.replace(options, tolerance=tolerance)


class Backend(Protocol):
    """A MILP solver adapter."""

    name: str
    install_hint: str
    capabilities: Capabilities

    def refusal(self, model: MILP) -> str | None:
        """Why this backend cannot solve ``model`` exactly (a sentence naming the feature and
        another backend to use), or None when it can."""
        ...

    def available(self) -> bool:
        """True if the solver can be used in this environment."""
        ...

    def version(self) -> str:
        """Solver version string."""
        ...

    def solve(self, model: MILP, options: SolveOptions, start: np.ndarray | None = None) -> SolveResult:
        """Solve ``model`` (maximisation) and return a normalised result.

        ``start`` is an optional warm start (a full column vector); backends that cannot use one
        ignore it.
        """
        ...

    def lp_duals(self, model: MILP) -> LpDuals:
        """The LP relaxation's optimal solution and duals (``capabilities.lp_duals``); backends without
        it raise ``BackendError`` naming the backend to use (``no_lp_duals``)."""
        ...

    def write_model(self, model: MILP, path: str, fmt: str, comment: str = "") -> None:
        """Write ``model`` exactly — maximisation, objective offset, bounds, integrality, and its column and
        row names as they are (the caller makes them legal for ``fmt``) — to ``path`` in ``fmt``, one of
        ``capabilities.writes``, with ``comment`` (lines of text) as comment lines at the top; backends
        without ``fmt`` raise ``BackendError`` (``cannot_write``)."""
        ...
