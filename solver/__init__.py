"""Envelope: optimal, audited allocation of a constrained technology envelope.

Public API: ``load_scenario`` → ``solve`` → ``Outcome``; ``tables(outcome)`` gives the output
DataFrames and ``write_outputs`` writes them. Heavy solver libraries are imported lazily.
"""

from __future__ import annotations

__version__ = "0.1.0"

from solver.api import solve  # noqa: E402
from solver.data.instance import load_instance  # noqa: E402
from solver.data.scenario import Scenario, load_scenario  # noqa: E402
from solver.errors import (  # noqa: E402
    AuditError,
    BackendError,
    EnvelopeError,
    InfeasibleError,
    InputError,
    NoSolutionError,
)
from solver.present.report import tables  # noqa: E402
from solver.solve.outcome import Outcome  # noqa: E402

__all__ = ["__version__", "load_scenario", "load_instance", "solve", "tables", "Scenario", "Outcome",
           "EnvelopeError", "InputError", "InfeasibleError", "BackendError", "AuditError", "NoSolutionError"]
