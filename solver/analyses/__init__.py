"""Sensitivity analyses: every one is a set of re-solves of the core model (``engine``), each
difference compared only within the band the solves' MIP gaps allow.

The public API, in one place::

    from solver.analyses import ladder, value_of_money, rule_prices, robustness, alternatives, thresholds
    from solver.analyses import Analysis, Context

    with Context(workers=4) as ctx:                      # one process pool for every stage
        result = ladder(scenario, [1.0, 0.9, 0.8], context=ctx)
    result.tables["projects"]; result.summary            # pandas tables, JSON summary
    solver.present.analyses.render(result)               # the ranked text summary
    solver.present.outputs.write_outputs("out/ladder", result)

Every analysis function takes ``context=`` (or the shorthand ``workers=``) and the solver
options (``backend``, ``mip_gap``, ``time_limit``, ``threads``, ``seed``), and starts from the
scenario's own plan (``engine.base_outcome``, the plan ``solve`` returns).
"""

from __future__ import annotations

from solver.analyses.cut_ladder import ladder

# Imported eagerly on purpose: ``ladder``, ``alternatives`` and ``thresholds`` are also submodule
# names, and only a from-import after the submodule has loaded leaves the function bound here.
from solver.analyses.engine import Analysis
from solver.analyses.prices import rule_prices
from solver.analyses.robust import robustness
from solver.analyses.value import value_of_money
from solver.run.context import Context

try:  # transitional: these two are being moved onto the engine in parallel
    from solver.analyses.borderline import thresholds
    from solver.analyses.near_optimal import alternatives
except ImportError:  # pragma: no cover
    pass

__all__ = ["Analysis", "Context", "alternatives", "ladder", "robustness", "rule_prices", "thresholds",
           "value_of_money"]
