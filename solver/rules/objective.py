r"""The objective, chosen by the policy model's ``[objective]`` table (``kind``, default ``benefit``).

Each kind is a pair of independent twins: ``define`` sets the MILP's objective coefficients from
the formulation's arrays, and ``recompute`` recomputes the objective of a plan from the audit's
figures (``solver.pipeline.accounts``), sharing no code with ``define``. Penalty terms come from the
rule families (``Build.penalties`` when building, each family's ``penalty`` in the audit): fair
shares (:math:`-\pi` per £m of shortfall, excess or deviation) and standardisation (:math:`-\pi`
per platform new to a system). A kind decides how they enter; ``benefit`` subtracts them.

``benefit`` (maximise):

.. math::
    \sum_o \Big( \beta\, w_p\, b_p \sum_{\tau = g_o}^{t_0 + H - 1} \delta^{\tau - t_0}
          - \lambda \sum_t D_{o,t} \Big) x_o - \text{penalties}

with need weight :math:`w_p = c_{\mathrm{cat}(p)} \cdot \nu_{\mathrm{sys}(p)}^{\kappa}`,
discount :math:`\delta = 1/(1+\rho)`, horizon :math:`H` and spend weight :math:`\lambda`
(the discounted, need-weighted benefit of each option is ``Data.o_value``, from ``prepare``).

To add a kind: a policy class in ``solver/data/policy.py`` (joined to the ``ObjectiveKind`` union),
its two functions here, and an entry in ``KINDS`` (see docs/rules.md).
"""

from __future__ import annotations

from collections.abc import Callable

from solver.rules.base import Audit, Build, Family


def _define_benefit(m: Build) -> None:
    """Need-weighted discounted benefit less λ per £m of national draw, less the families' penalties."""
    d = m.d
    spend = (d.nat_cap + d.nat_rev).sum(axis=1)
    m.b.add_cost(m.x, d.o_value - m.scenario.policy.objective.spend_weight * spend)
    for cols, coef in m.penalties.values():
        m.b.add_cost(cols, coef)


def _recompute_benefit(a: Audit, penalties: dict[str, float]) -> tuple[float, dict[str, float]]:
    """The benefit objective of a plan from the accounts: value of each funded project, less λ × the
    national allocation, less each penalty; with the terms by name (``spend`` and the penalties)."""
    assert a.acc is not None
    spend_pen = a.scenario.policy.objective.spend_weight * sum(a.acc.allocation.values())
    objective = sum(a.acc.value.values()) - spend_pen
    for amount in penalties.values():
        objective -= amount
    return objective, {"spend": spend_pen, **penalties}


Define = Callable[[Build], None]
Recompute = Callable[[Audit, dict[str, float]], tuple[float, dict[str, float]]]
KINDS: dict[str, tuple[Define, Recompute]] = {
    "benefit": (_define_benefit, _recompute_benefit),
}
"""Objective kind → (define, recompute)."""


def define_objective(m: Build) -> None:
    """Set the objective coefficients for the policy's objective kind."""
    KINDS[m.scenario.policy.objective.kind][0](m)


def recompute(a: Audit, penalties: dict[str, float]) -> tuple[float, dict[str, float]]:
    """The plan's objective for the policy's objective kind, and its terms, from the audit's figures."""
    return KINDS[a.scenario.policy.objective.kind][1](a, penalties)


FAMILY = Family(name="objective", define=define_objective)
