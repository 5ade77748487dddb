"""One protocol every solver backend follows: ``available()`` and ``solve(model, options)``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from solver.backends.result import SolveResult
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


class Backend(Protocol):
    """A MILP solver adapter."""

    name: str
    install_hint: str

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
