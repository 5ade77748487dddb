"""Declarative scenario variants and the content identity of a scenario.

An analysis or a batch run never edits a scenario by hand: it lists *operations* — scale or cut
the envelope, shift one year's pot, scale a project's cost or benefit, force a project in or out,
override policy parameters, set a system column, apply a sampled draw — and ``apply`` turns a
scenario plus operations into a new, valid ``Scenario``. Operations are frozen dataclasses:
picklable, hashable and comparable, so a task can be shipped to a worker as (scenario, ops) and
two equal variants are recognised as one.

``identity`` is a content hash of what determines a plan: the instance's tables, the envelope,
the policy (with overrides), the fixings, the solver settings and Envelope's version. Two
scenarios with the same identity give the same plan; batch runs and caches key on it. A
scenario's *name* is only a label.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from solver.data.policy import Policy
from solver.data.scenario import Scenario
from solver.errors import InputError

POTS = ("capital", "revenue")
MONEY_DECIMALS = 3          # £k: the resolution of every money cell
ENVELOPE_DECIMALS = 6


def _env_cells(scenario: Scenario, year: int | None, pot: str | None) -> tuple[pd.DataFrame, pd.Index, list[str]]:
    env = scenario.envelope.copy().reset_index(drop=True)
    if year is not None and year not in set(int(y) for y in env["year"]):
        raise InputError(None, f"year {year} is not an envelope year {[int(y) for y in env['year']]}")
    if pot is not None and pot not in POTS:
        raise InputError(None, f"pot must be 'capital' or 'revenue' (got '{pot}')")
    rows = env.index if year is None else env.index[env["year"] == year]
    return env, rows, list(POTS) if pot is None else [pot]


def _edit_instance(scenario: Scenario, **tables: pd.DataFrame) -> Scenario:
    return dataclasses.replace(scenario, instance=dataclasses.replace(scenario.instance, **tables))


def _known(scenario: Scenario, project: str) -> None:
    if project not in set(scenario.instance.projects["project_id"]):
        raise InputError(None, f"project '{project}' is not in instance {scenario.instance.name}")


def _factor(what: str, factor: float) -> None:
    if not (math.isfinite(factor) and factor >= 0):
        raise InputError(None, f"{what} factor must be a finite number >= 0 (got {factor})")


@dataclass(frozen=True)
class ScaleEnvelope:
    """Multiply the envelope (or one ``year`` and/or ``pot`` of it) by ``factor``."""

    factor: float
    year: int | None = None
    pot: str | None = None

    def apply(self, scenario: Scenario) -> Scenario:
        """The scaled scenario."""
        if not (math.isfinite(self.factor) and 0 <= self.factor <= 100):
            raise InputError(None, f"envelope scale must be in [0, 100] (got {self.factor})")
        env, rows, pots = _env_cells(scenario, self.year, self.pot)
        env.loc[rows, pots] = (env.loc[rows, pots].astype(float) * self.factor).round(ENVELOPE_DECIMALS)
        return scenario.with_envelope(env)


@dataclass(frozen=True)
class CutEnvelope:
    """Take ``amount`` £m from the envelope (or one ``year`` and/or ``pot``), pro rata."""

    amount: float
    year: int | None = None
    pot: str | None = None

    def apply(self, scenario: Scenario) -> Scenario:
        """The cut scenario; a cut larger than what it is taken from is an input error."""
        if not (math.isfinite(self.amount) and self.amount >= 0):
            raise InputError(None, f"a cut must be a non-negative amount of £m (got {self.amount})")
        env, rows, pots = _env_cells(scenario, self.year, self.pot)
        cells = env.loc[rows, pots].astype(float)
        total = float(cells.to_numpy().sum())
        if self.amount > total + 1e-9:
            raise InputError(None, f"a cut of £{self.amount:,.3f}m exceeds the £{total:,.3f}m it is taken from")
        factor = 1.0 - self.amount / total if total > 0 else 1.0
        env.loc[rows, pots] = (cells * factor).round(ENVELOPE_DECIMALS).clip(lower=0.0)
        return scenario.with_envelope(env)


@dataclass(frozen=True)
class ShiftEnvelope:
    """Add ``amount`` £m to one year's pot (negative: take it), floored at 0 — unlike ``CutEnvelope``,
    taking more than the pot holds is not an error: value-of-money probes every pot by ±£δm, and a
    pot already at 0 simply stays there."""

    year: int
    pot: str
    amount: float

    def apply(self, scenario: Scenario) -> Scenario:
        """The shifted scenario."""
        env, rows, _ = _env_cells(scenario, self.year, self.pot)
        i = rows[0]
        env.at[i, self.pot] = max(0.0, round(float(env.at[i, self.pot]) + self.amount, ENVELOPE_DECIMALS))
        return scenario.with_envelope(env)


@dataclass(frozen=True)
class ScaleCost:
    """Multiply one project's whole cost profile (capital and revenue) by ``factor``, to £k."""

    project: str
    factor: float

    def apply(self, scenario: Scenario) -> Scenario:
        """The scenario with the project's costs scaled."""
        _known(scenario, self.project)
        _factor("cost", self.factor)
        if self.factor == 1.0:
            return scenario
        co = scenario.instance.costs.copy()
        sel = co["project_id"] == self.project
        for col in POTS:
            co.loc[sel, col] = np.round(co.loc[sel, col].astype(float).to_numpy() * self.factor, MONEY_DECIMALS)
        return _edit_instance(scenario, costs=co)


@dataclass(frozen=True)
class ScaleBenefit:
    """Multiply one project's benefit points by ``factor``."""

    project: str
    factor: float

    def apply(self, scenario: Scenario) -> Scenario:
        """The scenario with the project's benefit scaled."""
        _known(scenario, self.project)
        _factor("benefit", self.factor)
        if self.factor == 1.0:
            return scenario
        pr = scenario.instance.projects.copy()
        sel = pr["project_id"] == self.project
        pr.loc[sel, "benefit"] = pr.loc[sel, "benefit"].astype(float) * self.factor
        return _edit_instance(scenario, projects=pr)


@dataclass(frozen=True)
class ForceIn:
    """The project must be funded (made mandatory; with the mandatory rule off, it is switched on
    for this project alone)."""

    project: str

    def apply(self, scenario: Scenario) -> Scenario:
        """The scenario with the project required."""
        _known(scenario, self.project)
        pr = scenario.instance.projects.copy()
        sc = scenario
        if not scenario.policy.mandatory.enabled:
            pr["mandatory"] = False
            sc = scenario.with_overrides({"mandatory": {"enabled": True}})
        pr.loc[pr["project_id"] == self.project, "mandatory"] = True
        return _edit_instance(sc, projects=pr)


@dataclass(frozen=True)
class ForceOut:
    """The projects cannot be funded: the formulation fixes their options at 0 and the audit checks
    it. Everything else follows from the rules (a project requiring one cannot start; a mandatory
    one makes the scenario infeasible). The tables stay as they are, so they stay valid."""

    projects: frozenset[str]

    def apply(self, scenario: Scenario) -> Scenario:
        """The scenario with the projects excluded."""
        for p in sorted(self.projects):
            _known(scenario, p)
        return dataclasses.replace(scenario, excluded=scenario.excluded | frozenset(self.projects))


@dataclass(frozen=True)
class Override:
    """Policy parameters changed, as a scenario's ``[overrides]`` table (deep-merged, validated).

    Held as canonical JSON so the operation stays hashable: build it with ``Override.of({...})``.
    """

    json: str

    @staticmethod
    def of(values: dict[str, Any]) -> Override:
        """The operation for a (nested) dict of overrides."""
        return Override(json.dumps(values, sort_keys=True))

    def apply(self, scenario: Scenario) -> Scenario:
        """The scenario with the overrides merged into its policy."""
        return scenario.with_overrides(json.loads(self.json))


@dataclass(frozen=True)
class SetPolicy:
    """Another policy model for the scenario (``envelope compare``), held as canonical JSON so the
    operation stays hashable: build it with ``SetPolicy.of(policy, path)``."""

    json: str
    path: str = ""

    @staticmethod
    def of(policy: Policy, path: str = "") -> SetPolicy:
        """The operation for a validated policy (and the file it came from, for reports)."""
        return SetPolicy(json.dumps(policy.model_dump(mode="json"), sort_keys=True), path)

    def apply(self, scenario: Scenario) -> Scenario:
        """The scenario under this policy, with the scenario's own ``[overrides]`` on top (``with_policy``)."""
        return scenario.with_policy(Policy.model_validate(json.loads(self.json)), self.path)


@dataclass(frozen=True)
class SetSystems:
    """Set one systems-table column (``local_capital`` or ``revenue_headroom``) to ``value`` £m for
    every system — e.g. a local limit that never binds."""

    column: str
    value: float

    def apply(self, scenario: Scenario) -> Scenario:
        """The scenario with the column set."""
        if self.column not in ("local_capital", "revenue_headroom"):
            raise InputError(None, f"only local_capital and revenue_headroom can be set (got '{self.column}')")
        if not (math.isfinite(self.value) and self.value >= 0):
            raise InputError(None, f"{self.column} must be a finite amount of £m >= 0 (got {self.value})")
        systems = scenario.instance.systems.copy()
        systems[self.column] = float(self.value)
        return _edit_instance(scenario, systems=systems)


@dataclass(frozen=True)
class Sample:
    """One sampled draw: per-project cost and benefit factors and category weights.

    Costs are rounded to £k and benefits to 6 decimals, so the sampled tables stay valid.
    """

    index: int
    cost_factor: tuple[tuple[str, float], ...]
    benefit_factor: tuple[tuple[str, float], ...]
    weights: tuple[tuple[str, float], ...]

    def apply(self, scenario: Scenario) -> Scenario:
        """The scenario under this draw."""
        inst = scenario.instance
        costs = inst.costs.copy()
        f = costs["project_id"].map(dict(self.cost_factor)).astype(float)
        for col in POTS:
            costs[col] = (costs[col] * f).round(MONEY_DECIMALS)
        projects = inst.projects.copy()
        projects["benefit"] = (projects["benefit"] * projects["project_id"].map(dict(self.benefit_factor))
                               .astype(float)).round(6)
        sampled = _edit_instance(scenario, costs=costs, projects=projects)
        return sampled.with_overrides({"need": {"category_weights": dict(self.weights)}})


Operation = (ScaleEnvelope | CutEnvelope | ShiftEnvelope | ScaleCost | ScaleBenefit | ForceIn | ForceOut | Override
             | SetPolicy | SetSystems | Sample)


def apply(scenario: Scenario, ops: Iterable[Operation], label: str | None = None) -> Scenario:
    """``scenario`` with every operation applied in order; named ``<name>#<label>`` when a label is
    given (the name is a label only: the identity is the content)."""
    out = scenario
    for op in ops:
        out = op.apply(out)
    if label:
        out = dataclasses.replace(out, name=f"{scenario.name}#{label}")
    return out


def _frame_digest(h: Any, name: str, frame: pd.DataFrame) -> None:
    cols = sorted(c for c in frame.columns if not str(c).startswith("_"))
    h.update(f"\x00{name}\x00{','.join(map(str, cols))}\x00".encode())
    h.update(frame[cols].to_csv(index=False, float_format="%.12g", lineterminator="\n").encode())


def identity(scenario: Scenario) -> str:
    """Content identity of a scenario (hex SHA-256, 16 characters): equal for any two scenarios that
    must give the same plan, different when any table cell, envelope figure, policy parameter,
    fixing, solver setting or the Envelope version differs."""
    from solver import __version__

    inst = scenario.instance
    h = hashlib.sha256(f"envelope {__version__}\x00".encode())
    for name in ("systems", "organisations", "projects", "costs", "dependencies"):
        _frame_digest(h, name, getattr(inst, name))
    if len(inst.ballots):   # ballots decide equal-shares plans; instances without them keep their digest
        _frame_digest(h, "ballots", inst.ballots)
    h.update(json.dumps(list(inst.years)).encode())
    _frame_digest(h, "envelope", scenario.envelope)
    h.update(scenario.policy.model_dump_json().encode())
    h.update(scenario.solver.model_dump_json().encode())
    h.update(json.dumps(sorted(scenario.excluded)).encode())
    return h.hexdigest()[:16]
