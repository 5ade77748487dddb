"""Envelope: optimal, audited allocation of a constrained technology envelope.

Public API (one place; see README "Python API"):

- load and validate: ``load_scenario``, ``load_instance``, ``validate_tables`` (DataFrames →
  ``Instance``), ``variants`` (declarative edits; ``Scenario.identity`` is a content hash);
- solve: ``solve`` → ``Outcome`` (audited plan, status, bound, gap); ``tables(outcome)`` gives the
  output DataFrames and ``write_outputs(folder, result)`` writes any result folder;
- analyse: ``ladder``, ``value_of_money``, ``rule_prices``, ``robustness``, ``alternatives``,
  ``thresholds`` → ``Analysis``, each on an execution ``Context`` (serial, one process pool, or any
  ``concurrent.futures`` executor); ``render(analysis)`` gives its ranked text summary.

Heavy solver libraries are imported lazily, by the backend that needs them.
"""

from __future__ import annotations

__version__ = "0.1.0"

from solver.analyses import (  # noqa: E402
    Analysis,
    Context,
    alternatives,
    ladder,
    robustness,
    rule_prices,
    thresholds,
    value_of_money,
)
from solver.api import solve  # noqa: E402
from solver.data import variants  # noqa: E402
from solver.data.instance import load_instance, validate_tables  # noqa: E402
from solver.data.scenario import Scenario, load_scenario  # noqa: E402
from solver.errors import (  # noqa: E402
    AuditError,
    BackendError,
    EnvelopeError,
    InfeasibleError,
    InputError,
    NoSolutionError,
)
from solver.pipeline.outcome import Outcome  # noqa: E402
from solver.present.analyses import render  # noqa: E402
from solver.present.outputs import write_outputs  # noqa: E402
from solver.present.report import tables  # noqa: E402

__all__ = ["__version__", "load_scenario", "load_instance", "validate_tables", "variants", "solve", "tables",
           "write_outputs", "render", "Scenario", "Outcome", "Analysis", "Context", "ladder", "value_of_money",
           "rule_prices", "robustness", "alternatives", "thresholds",
           "EnvelopeError", "InputError", "InfeasibleError", "BackendError", "AuditError", "NoSolutionError"]
