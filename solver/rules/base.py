"""What a rule family is: one object holding its rows, its audit check, its cheap infeasibility
statements, its role in the elastic model and its relaxation for the price of each rule.

A family module (``solver/rules/<family>.py``) ends with ``FAMILY = Family(...)`` naming the
functions it has; every part is optional. The registry (``solver/rules/__init__.py``) runs them:

- ``define(m: Build)`` adds the family's columns and rows to the MILP (vectorised; maths in its
  docstring). Terms another family's rows must carry (the fee and run costs in the budget and
  headroom rows) go into ``m.terms``; objective contributions (penalties) into ``m.penalties``,
  which the objective family assembles.
- ``check(a: Audit) -> list[str]`` re-checks the rule for a plan with plain loops over the
  ``solver.pipeline.accounts`` figures; it never reads the solver's matrix nor shares code with
  ``define``. ``penalty(a)`` returns the family's objective penalty recomputed the same way.
- ``causes(c: Cheap) -> list[str]`` cheap statements of why no plan can exist (no solver).
- ``rows`` maps the family's relaxable row families to a weight class (``money``, ``rule`` or
  ``required``) for the elastic model, ``describe(row, activity, hi, amount)`` says a relaxed
  row as a sentence, and ``bans`` names a column kind whose zero upper bounds are relaxable too.
- ``prices(scenario)`` returns the family's relaxations for the ``rules`` command as
  declarative variant operations (``solver.data.variants``), or the reason it is inactive.

Everything here is plain data and functions referenced by module, so it pickles.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from solver.data.scenario import Scenario
from solver.pipeline.accounts import Accounts, View, project_system
from solver.pipeline.decisions import Decisions

if TYPE_CHECKING:
    from solver.data.variants import Operation
    from solver.mip.arrays import ModelBuilder
    from solver.mip.formulation import Data

MONEY_TOL = 1e-6
"""Money tolerance of the audit (£m): £1, a thousandth of the data's £k resolution, plus float noise
(``MONEY_NOISE`` of the limit). Below half a £k at every accepted size (2e-6 £m at £1tn)."""
MONEY_NOISE = 1e-12
"""Relative allowance for floating-point rounding in sums of money (about 1e-7 £m at £100bn)."""


def fy(year: int) -> str:
    """Financial-year label: 2026 → '2026/27'."""
    return f"{year}/{(year + 1) % 100:02d}"


def row_key(row: str) -> str:
    """What is inside a row name's brackets (``capital[2025]`` → ``2025``), or the whole name."""
    inside = re.search(r"\[(.*)\]", row)
    return inside.group(1) if inside else row


def money_tolerance(limit: float) -> float:
    """The audit's money tolerance at a limit (£m): ``MONEY_TOL`` plus float noise, always below £0.5k.

    Amounts are whole £k, so where every term of a rule is a whole £k (no fee, no match share, no
    transfers) the amount used is itself a whole number of £k and this comparison is exact: any
    overspend is at least £1k, a thousand times the tolerance."""
    return MONEY_TOL + MONEY_NOISE * abs(limit)


def over(used: float, limit: float) -> bool:
    """True when ``used`` exceeds ``limit`` beyond the audit's money tolerance (``money_tolerance``)."""
    return used > limit + money_tolerance(limit)


def rows_from_mask(mask: np.ndarray, coef: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, ...]:
    """COO triplets for rows given as a (row, option) boolean mask and coefficient array."""
    r, o = np.nonzero(mask)
    return r, cols[o], coef[r, o]


@dataclass
class Build:
    """What the families share while one MILP is built (``formulate`` runs them in order)."""

    b: ModelBuilder
    d: Data
    scenario: Scenario
    x: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))   # column of each option
    cols: dict[str, np.ndarray] = field(default_factory=dict)
    keys: dict[str, list[tuple]] = field(default_factory=dict)
    withdraw: tuple[np.ndarray, np.ndarray] | None = None      # (columns, withdrawal cost) of commitments
    terms: dict[str, list[np.ndarray]] = field(default_factory=lambda: {"revenue": [], "headroom": []})
    """(option, year) coefficients other families add to the national revenue rows (``revenue``) and to
    the systems' revenue headroom rows (``headroom``), in the order added."""
    penalties: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    """Objective contributions by family: (columns, coefficient per column), assembled by ``objective``."""


@dataclass
class Audit:
    """A plan and the scenario's figures, as the audit checks see them."""

    scenario: Scenario
    dec: Decisions
    v: View
    acc: Accounts | None = None


@dataclass
class Cheap:
    """A scenario's tables as the cheap infeasibility statements read them."""

    scenario: Scenario
    forced: dict[str, int | None]
    fixed: dict[str, int]
    projects: pd.DataFrame                           # indexed by project_id
    profile: dict[str, dict[int, tuple[float, float]]]
    psys: dict[str, str]
    env: pd.DataFrame                                # indexed by year
    years: list[int]

    def match(self, p: str) -> float:
        """Local match share of a project (0 when match funding is off)."""
        return float(self.projects.at[p, "match_share"]) if self.scenario.policy.match_funding.enabled else 0.0


def forced_starts(scenario: Scenario) -> dict[str, int | None]:
    """Projects that must be funded: committed (kept) at their start, mandatory ones (start None when
    they have a choice of start)."""
    pol = scenario.policy
    out: dict[str, int | None] = {}
    for p, c, mand, e, l_ in scenario.instance.projects[
        ["project_id", "committed_start", "mandatory", "earliest_start", "latest_start"]
    ].itertuples(index=False):
        if c == c and pol.commitments.mode == "keep":
            out[p] = int(c)
        elif mand and pol.mandatory.enabled:
            fixed = c == c and pol.commitments.mode != "ignore"
            out[p] = int(c) if fixed else (int(e) if e == l_ else None)
    return out


def cheap(scenario: Scenario) -> Cheap:
    """Read what the cheap statements need, once."""
    inst = scenario.instance
    forced = forced_starts(scenario)
    profile: dict[str, dict[int, tuple[float, float]]] = {}
    for p, k, c, r in inst.costs[["project_id", "year_offset", "capital", "revenue"]].itertuples(index=False):
        profile.setdefault(p, {})[int(k)] = (float(c), float(r))
    return Cheap(scenario=scenario, forced=forced, fixed={p: s for p, s in forced.items() if s is not None},
                 projects=inst.projects.set_index("project_id"), profile=profile, psys=project_system(scenario),
                 env=scenario.envelope.set_index("year"), years=list(inst.years))


@dataclass(frozen=True)
class PriceRelaxation:
    """One relaxation of a family for the ``rules`` command: what is relaxed, as variant operations."""

    family: str
    relaxed: str
    ops: tuple[Operation, ...]


Priced = tuple[list[PriceRelaxation], dict[str, str]]
"""A family's relaxations, and its inactive price names with the reason."""


@dataclass(frozen=True)
class Family:
    """One rule family; see the module docstring for what each part does."""

    name: str
    define: Callable[[Build], None] | None = None
    check: Callable[[Audit], list[str]] | None = None
    penalty: Callable[[Audit], dict[str, float]] | None = None
    causes: Callable[[Cheap], list[str]] | None = None
    rows: Mapping[str, str] = field(default_factory=dict)
    describe: Callable[[str, float, float, float], str] | None = None
    bans: tuple[str, str] | None = None
    prices: Callable[[Scenario], Priced] | None = None
