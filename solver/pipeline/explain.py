"""Why a scenario has no plan, in the user's terms.

An *elastic* copy of the model gets a penalised slack on every row of the rule families a
planner can change (budgets, local limits, mandatory items, commitments, dependencies, fair-share
floors and caps, standardisation). Minimising the weighted slack finds the smallest relaxation
that makes the scenario feasible; each non-zero slack is reported against its row: which rule,
which year and system, and by how much (£m for money rules). Money is relaxed before any project
rule (a project rule costs ``RULE_WEIGHT`` £m-equivalents, dropping a mandatory or committed project
twice that), so "short by £32.3m" is preferred to "drop a mandatory project" when either would do,
and the rule that blocks a required project is named rather than the project being dropped.
Which rows are relaxable, their weight class and their sentences belong to the rule families
(``rows``, ``bans`` and ``describe`` in ``solver/rules/<family>.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from solver.backends import DEFAULT_BACKEND, Backend, SolveOptions, get_backend
from solver.backends.result import Termination
from solver.data.scenario import Scenario
from solver.mip.arrays import INF, MILP
from solver.mip.formulation import Formulation, formulate
from solver.pipeline.checks import obvious_causes
from solver.rules import FAMILIES, elastic_roles

ROLES = elastic_roles()
"""Relaxable row family → (weight class, rule family), from each family's ``rows``."""
MONEY_FAMILIES = tuple(r for r, (w, _) in ROLES.items() if w == "money")
RULE_FAMILIES = tuple(r for r, (w, _) in ROLES.items() if w != "money")
REQUIRED_FAMILIES = tuple(r for r, (w, _) in ROLES.items() if w == "required")
RULE_WEIGHT = 1e4
SLACK_TOL = 1e-6


@dataclass
class Relaxation:
    """One rule that had to give, and by how much."""

    family: str
    row: str
    amount: float
    statement: str


@dataclass
class Explanation:
    """Cheap pre-checks plus the smallest relaxation found by the elastic model."""

    scenario: str
    causes: list[str]
    relaxations: list[Relaxation] = field(default_factory=list)
    status: str = ""

    @property
    def feasible(self) -> bool:
        """True when the elastic model proved that nothing needs relaxing."""
        return self.status == "optimal" and not self.relaxations and not self.causes

    def lines(self) -> list[str]:
        """All statements: the pre-checks' obvious causes, then the smallest relaxation."""
        out = list(self.causes)
        if self.relaxations:
            out.append("smallest relaxation that makes the scenario feasible:")
            out += ["  " + r.statement for r in self.relaxations]
        elif not self.causes:
            out.append(f"the elastic model found no relaxation (solver status: {self.status})")
        return out


def elastic(form: Formulation) -> tuple[MILP, np.ndarray, np.ndarray]:
    """The elastic model: returns (model, slack column → row, slack sign +1 above / -1 below)."""
    m = form.model
    col_hi = m.col_hi.copy()
    A = m.A
    row_lo, row_hi = m.row_lo, m.row_hi
    names, fam = list(m.row_names), list(m.row_family)
    for family in FAMILIES:
        if family.bans is None:
            continue
        # bans held as bounds (e.g. platform columns fixed at 0) become relaxable rows of the family
        kind, label = family.bans
        banned = np.flatnonzero((m.col_kind == kind) & (m.col_hi == 0))
        col_hi[banned] = 1.0
        if banned.size:
            ban = sp.csr_matrix((np.ones(banned.size), (np.arange(banned.size), banned)),
                                shape=(banned.size, m.n_cols))
            A = sp.vstack([A, ban]).tocsr()
            row_lo = np.concatenate([row_lo, np.full(banned.size, -INF)])
            row_hi = np.concatenate([row_hi, np.zeros(banned.size)])
            names += [m.col_names[j].replace(f"{kind}[", f"{label}[") for j in banned]
            fam += [next(iter(family.rows))] * banned.size
    fam_arr = np.asarray(fam, dtype=object)
    relax = np.isin(fam_arr, MONEY_FAMILIES + RULE_FAMILIES)
    up = np.flatnonzero(relax & np.isfinite(row_hi))
    down = np.flatnonzero(relax & np.isfinite(row_lo))
    slack_rows = np.concatenate([up, down])
    sign = np.concatenate([np.ones(up.size), -np.ones(down.size)])
    k = slack_rows.size
    # money gives first; then the rule that blocks a project; dropping a required project comes last
    weight = np.where(np.isin(fam_arr[slack_rows], MONEY_FAMILIES), 1.0,
                      np.where(np.isin(fam_arr[slack_rows], REQUIRED_FAMILIES), 2 * RULE_WEIGHT,
                               RULE_WEIGHT))
    S = sp.csr_matrix((-sign, (slack_rows, np.arange(k))), shape=(A.shape[0], k))
    big = max(float(np.abs(m.A.data).sum()) if m.A.nnz else 1.0, 1.0) * 10
    model = MILP(
        c=np.concatenate([np.zeros(m.n_cols), -weight]),
        col_lo=np.concatenate([m.col_lo, np.zeros(k)]),
        col_hi=np.concatenate([col_hi, np.full(k, big)]),
        integrality=np.concatenate([m.integrality, np.zeros(k, dtype=bool)]),
        A=sp.hstack([A, S]).tocsr(),
        row_lo=row_lo, row_hi=row_hi,
        col_names=m.col_names + [f"slack[{names[r]}]" for r in slack_rows],
        row_names=names, row_family=fam_arr,
        col_kind=np.concatenate([m.col_kind, np.full(k, "slack", dtype=object)]),
        families=list(dict.fromkeys(fam)),
    )
    return model, slack_rows, sign


def describe(family: str, row: str, activity: float, hi: float, amount: float) -> str:
    """One relaxation as a sentence a planner can act on (said by the row's rule family)."""
    role = ROLES.get(family)
    if role is not None and role[1].describe is not None:
        return role[1].describe(row, activity, hi, amount)
    return f"{family}: {row} relaxed by {amount:,.6g}"


def elastic_backend(name: str) -> Backend:
    """The backend for the elastic model: ``name`` when it solves continuous slacks exactly, else the
    default backend (CP-SAT rounds continuous variables to a grid, so it cannot size a shortfall)."""
    engine = get_backend(name)
    return engine if engine.capabilities.exact_continuous else get_backend(DEFAULT_BACKEND)


def explain(scenario: Scenario, *, backend: str | None = None, time_limit: float | None = None) -> Explanation:
    """Pre-checks and the smallest relaxation that makes ``scenario`` feasible."""
    causes = obvious_causes(scenario)
    form = formulate(scenario)
    model, slack_rows, sign = elastic(form)
    opts = SolveOptions(time_limit=time_limit or scenario.solver.time_limit, mip_gap=1e-6,
                        threads=scenario.solver.threads, seed=scenario.solver.seed)
    result = elastic_backend(backend or scenario.backend).solve(model, opts)
    if result.termination == Termination.INTERRUPTED:
        raise KeyboardInterrupt    # Ctrl-C: stop, rather than explain from a half-finished search
    out = Explanation(scenario=scenario.name, causes=causes, status=result.status.value)
    if not result.has_solution or result.x is None:
        return out
    x = result.x
    n = form.model.n_cols
    slack = x[n:]
    act = model.A[:, :n] @ x[:n]
    for j in np.flatnonzero(slack > SLACK_TOL):
        r = int(slack_rows[j])
        fam, name = str(model.row_family[r]), model.row_names[r]
        amount = float(slack[j])
        out.relaxations.append(Relaxation(
            family=fam, row=name, amount=amount,
            statement=describe(fam, name, float(act[r]), float(model.row_hi[r]), amount),
        ))
    out.relaxations.sort(key=lambda r: (r.family not in MONEY_FAMILIES, r.row))
    return out
