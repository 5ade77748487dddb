"""One protocol every solver backend follows: ``available()``, ``refusal(model)``, ``solve(model, options)``
and ``lp_duals(model)``, with the ``Capabilities`` it declares."""

from __future__ import annotations

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
    """

    time_limit: float = 60.0
    mip_gap: float = 1e-3
    threads: int = 0
    seed: int = 0
    verbose: bool = False

    def as_dict(self) -> dict[str, object]:
        """Plain-dict form for summaries."""
        return asdict(self)


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, declared once; callers ask this, never the backend's name."""

    integer: bool = True            # integer (binary) variables
    mip_start: bool = False         # uses a warm start point
    lp_duals: bool = False          # ``lp_duals``: row duals of the LP relaxation
    interrupt: bool = True          # Ctrl-C stops the solve and keeps the incumbent
    exact_continuous: bool = True   # continuous variables at full precision (CP-SAT: £1 grid)


#: The backend that computes LP relaxation duals.
LP_DUALS_BACKEND = "highs"


def no_lp_duals(name: str) -> str:
    """The sentence a backend without ``lp_duals`` raises (as ``BackendError``)."""
    return (f"backend {name} does not compute LP relaxation duals; use backend '{LP_DUALS_BACKEND}' "
            f"(--backend {LP_DUALS_BACKEND}) for them")


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
