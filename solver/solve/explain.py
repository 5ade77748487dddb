"""Why a scenario has no plan, in the user's terms.

An *elastic* copy of the model gets a penalised slack on every row of the rule families a
planner can change (budgets, local limits, mandatory items, commitments, dependencies, fair-share
floors and caps, standardisation). Minimising the weighted slack finds the smallest relaxation
that makes the scenario feasible; each non-zero slack is reported against its row: which rule,
which year and system, and by how much (£m for money rules). Money is relaxed before any project
rule (a project rule costs ``RULE_WEIGHT`` £m-equivalents, dropping a mandatory or committed project
twice that), so "short by £32.3m" is preferred to "drop a mandatory project" when either would do,
and the rule that blocks a required project is named rather than the project being dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from solver.backends import DEFAULT_BACKEND, Backend, SolveOptions, get_backend
from solver.backends.result import Termination
from solver.data.scenario import Scenario
from solver.mip.arrays import INF, MILP
from solver.mip.formulation import Formulation, formulate
from solver.solve.checks import fy, obvious_causes

MONEY_FAMILIES = ("budget", "local_capital", "headroom", "carry_over", "fair_share")
RULE_FAMILIES = ("mandatory", "commitment", "dependency", "alternatives", "standardisation")
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
    # standardisation bans are bounds (platform columns fixed at 0); make them relaxable rows
    banned = np.flatnonzero((m.col_kind == "platform") & (m.col_hi == 0))
    col_hi[banned] = 1.0
    A = m.A
    row_lo, row_hi = m.row_lo, m.row_hi
    names, fam = list(m.row_names), list(m.row_family)
    if banned.size:
        ban = sp.csr_matrix((np.ones(banned.size), (np.arange(banned.size), banned)), shape=(banned.size, m.n_cols))
        A = sp.vstack([A, ban]).tocsr()
        row_lo = np.concatenate([row_lo, np.full(banned.size, -INF)])
        row_hi = np.concatenate([row_hi, np.zeros(banned.size)])
        names += [m.col_names[j].replace("platform[", "new_platform[") for j in banned]
        fam += ["standardisation"] * banned.size
    fam_arr = np.asarray(fam, dtype=object)
    relax = np.isin(fam_arr, MONEY_FAMILIES + RULE_FAMILIES)
    up = np.flatnonzero(relax & np.isfinite(row_hi))
    down = np.flatnonzero(relax & np.isfinite(row_lo))
    slack_rows = np.concatenate([up, down])
    sign = np.concatenate([np.ones(up.size), -np.ones(down.size)])
    k = slack_rows.size
    # money gives first; then the rule that blocks a project; dropping a required project comes last
    weight = np.where(np.isin(fam_arr[slack_rows], MONEY_FAMILIES), 1.0,
                      np.where(np.isin(fam_arr[slack_rows], ("mandatory", "commitment")), 2 * RULE_WEIGHT,
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


def _fy(year: str) -> str:
    return fy(int(year))


def describe(family: str, row: str, activity: float, hi: float, amount: float) -> str:
    """One relaxation as a sentence a planner can act on."""
    inside = re.search(r"\[(.*)\]", row)
    key = inside.group(1) if inside else row
    parts = key.split(",")
    if family == "budget":
        pot = row.split("[")[0]
        return (f"{_fy(parts[0])} {pot}: the plan needs £{activity:,.3f}m, the envelope is £{hi:,.3f}m — "
                f"short by £{amount:,.3f}m")
    if family == "local_capital":
        return (f"{parts[0]} {_fy(parts[1])}: local match of £{activity:,.3f}m needed, local_capital is "
                f"£{hi:,.3f}m — short by £{amount:,.3f}m")
    if family == "headroom":
        return (f"{parts[0]} {_fy(parts[1])}: local revenue (match, run costs, fees) of £{activity:,.3f}m needed, "
                f"revenue_headroom is £{hi:,.3f}m — short by £{amount:,.3f}m")
    if family == "carry_over":
        return f"{parts[0]} {_fy(parts[1])}: carry-over limit exceeded by £{amount:,.3f}m"
    if family == "fair_share":
        kind = row.split("[")[0]
        if kind == "fair_floor":
            return f"{key}: fair-share floor cannot be met — short by £{amount:,.3f}m"
        if kind == "fair_cap":
            return f"{key}: fair-share cap cannot be kept — over by £{amount:,.3f}m"
        return f"{key}: fair-share deviation rule relaxed by £{amount:,.3f}m"
    if family == "mandatory":
        return f"mandatory: {key} cannot be funded within the other rules"
    if family == "commitment":
        return f"commitment: {key} cannot keep its committed start within the other rules"
    if family == "dependency":
        p, q = key.split(",")[0].split("<-")
        return f"dependency: {p} (start {_fy(parts[-1])}) needs {q} to have started earlier, which cannot happen"
    if family == "alternatives":
        return f"alternatives: group {key} needs more than one of its projects funded"
    if family == "standardisation":
        if row.startswith("new_platform"):
            return f"standardisation: system {parts[0]} would have to adopt platform {parts[1]}, new to it"
        if row.startswith("one_platform"):
            return f"standardisation: system {key} would need more than one platform"
        return f"standardisation: {key} uses a platform its system may not adopt"
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
