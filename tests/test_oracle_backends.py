"""Every backend against a brute-force oracle, on random small instances over every rule family and
policy option (fair-share modes and enforcement, carry-over or capital-to-revenue flexibility, fee
payers, commitments, standardisation modes, ...; ``tests/strategies.py``, ``brute_forceable=True``).

For each backend and each case (mip_gap 0):

- every "optimal" plan's audited objective equals the oracle's optimum (``tests/bruteforce.py``);
- every bound is valid (at least the oracle's optimum) and every "feasible" plan is worth at most it;
- every "infeasible" is real (the oracle finds no plan) and every plan is a real one (audited);
- a model the backend cannot solve exactly is refused with ``BackendError`` naming the backend, the
  feature and another backend to use.

Examples per backend: ``ENVELOPE_ORACLE_EXAMPLES`` (default 20, slow lane); the fast lane runs 2.
Reproducible: derandomized, no example database, no deadline (the oracle is cached per scenario, so
the backends share one enumeration of each case).
"""

from __future__ import annotations

import math
import os

import pytest
from hypothesis import HealthCheck, Phase, assume, event, given, note, settings

from solver import solve
from solver.backends import available_backends
from solver.backends.result import SolutionStatus
from solver.errors import BackendError, InfeasibleError
from tests.bruteforce import brute_force, project_choices
from tests.strategies import Case, cases

BACKENDS = available_backends()
MAX_PLANS = 5000
RTOL = {"cpsat": 1e-5}          # CP-SAT puts continuous amounts on a £1 grid
EXACT_RTOL = 1e-6
SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "print_blob": False,
    "phases": (Phase.explicit, Phase.reuse, Phase.generate),   # each OR-Tools solve is a child process
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
}
EXAMPLES = int(os.environ.get("ENVELOPE_ORACLE_EXAMPLES", "20"))


def close(a: float, b: float, rtol: float) -> bool:
    """Equal within ``rtol`` relative (absolute below 1)."""
    return abs(a - b) <= rtol * max(1.0, abs(a), abs(b))


def check_against_oracle(case: Case, backend: str) -> None:
    """One case, one backend: the properties in the module docstring."""
    note(case.describe())
    sc = case.scenario
    assume(math.prod(len(c) for c in project_choices(sc).values()) <= MAX_PLANS)
    best, plans = brute_force(sc)
    rtol = RTOL.get(backend, EXACT_RTOL)
    try:
        out = solve(sc, backend=backend, mip_gap=0.0)
    except InfeasibleError:
        event("infeasible")
        assert not plans, f"{backend} says infeasible; the oracle found objective {best} with {plans[0]}"
        return
    except BackendError as exc:
        text = str(exc)
        event(f"{backend} refused")
        assert f"backend {backend}" in text, text
        assert "cannot" in text, text
        assert "backend" in text.split(":", 1)[-1], f"no other backend suggested: {text}"
        return
    assert out.audit is not None
    assert out.audit.ok, out.audit.violations
    assert plans, f"{backend} found a plan worth {out.objective} with {out.decisions}; the oracle found none"
    assert out.objective <= best + rtol * max(1.0, abs(best)), f"{backend} plan {out.objective} beats the oracle {best}"
    if out.bound is not None:
        assert out.bound >= best - rtol * max(1.0, abs(best)), f"{backend} bound {out.bound} below the optimum {best}"
    event(f"{backend} {out.status.value}")
    if out.status == SolutionStatus.OPTIMAL:
        assert close(out.objective, best, rtol), f"{backend} 'optimal' {out.objective!r} vs oracle {best!r}"


@pytest.mark.parametrize("backend", BACKENDS)
@settings(**SETTINGS, max_examples=2)
@given(case=cases(max_projects=6, brute_forceable=True))
def test_backend_matches_the_oracle_fast(case: Case, backend: str) -> None:
    check_against_oracle(case, backend)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@settings(**SETTINGS, max_examples=EXAMPLES)
@given(case=cases(max_projects=6, brute_forceable=True))
def test_backend_matches_the_oracle(case: Case, backend: str) -> None:
    check_against_oracle(case, backend)
