"""Seeded synthetic scale-up of a loaded instance, for build-time benchmarks at 5k-20k projects.

The generator makes ``copies`` copies of a whole instance *in memory* (nothing is written to
disk): copy 0 is the instance unchanged, and copy k >= 1 gets new ids on every table. Systems,
organisations, projects, alternative groups and dependencies are suffixed ``~k`` (``QE1~3``,
``R0A~3``, ``EPR-R0A~3``). Every rule family of the original therefore appears ``copies`` times
over, with the same structure per copy. Copies are perturbed by seeded lognormal factors
(median 1, sigma ``jitter``):

- ``benefit`` gets one factor per project (every project);
- ``capital``/``revenue`` per year, ``run_cost`` and ``withdrawal_cost`` get one factor per
  project, for optional projects only. Mandatory and committed projects keep the original
  costs, so each copy's hard rules are exactly as feasible as in the original.

Money is rounded to £1k, as in the England instance. The national envelope (the instance's
and the scenario's resolved one, cuts included) is multiplied by ``copies``. Each copy keeps
its systems' ``local_capital`` and ``revenue_headroom``, so the model stays as tight as the
original. ``_row``/``_line`` are renumbered so that validation messages still point at a row.

    >>> from solver.data.scenario import load_scenario
    >>> big = scale_scenario(load_scenario("instances/england/baseline.toml"), copies=21)
    >>> len(big.instance.projects)   # 21 x 938
    19698
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from solver.data.instance import Instance, check_instance
from solver.data.scenario import Scenario

#: Default seed of the perturbations (copy k uses the stream ``(seed, k)``).
DEFAULT_SEED = 20260101
#: Default sigma of the lognormal perturbation factors.
DEFAULT_JITTER = 0.1


def copies_for(target_projects: int, base_projects: int) -> int:
    """Number of whole copies whose project count is nearest ``target_projects`` (at least 1)."""
    return max(1, round(target_projects / base_projects))


def _suffix(values: pd.Series, k: int) -> pd.Series:
    """Ids of copy ``k``: unchanged for k = 0, else ``id~k``; missing values stay missing."""
    if k == 0:
        return values.copy()
    # A list, not Series.map: map turns None into NaN, and the loader's checks expect None.
    return pd.Series([None if pd.isna(v) else f"{v}~{k}" for v in values], index=values.index, dtype=object)


def _renumber(frame: pd.DataFrame) -> pd.DataFrame:
    """Concatenated copies with fresh ``_row`` (1-based data row) and ``_line`` (file line) columns."""
    frame = frame.reset_index(drop=True)
    if "_row" in frame.columns:
        frame["_row"] = np.arange(1, len(frame) + 1)
    if "_line" in frame.columns:
        frame["_line"] = np.arange(2, len(frame) + 2)
    return frame


def _lognormal(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """``n`` lognormal factors with median 1 (all ones when sigma is 0)."""
    if sigma <= 0:
        return np.ones(n)
    return rng.lognormal(mean=0.0, sigma=sigma, size=n)


def scale_instance(inst: Instance, copies: int, *, seed: int = DEFAULT_SEED,
                   jitter: float = DEFAULT_JITTER) -> Instance:
    """``copies`` perturbed copies of ``inst`` as one ``Instance`` (see the module docstring)."""
    if copies < 1:
        raise ValueError(f"copies must be >= 1 (got {copies})")
    systems, orgs, projects, costs, deps = [], [], [], [], []
    for k in range(copies):
        rng = np.random.default_rng([seed, k])
        s = inst.systems.copy()
        s["system_id"] = _suffix(s["system_id"], k)
        o = inst.organisations.copy()
        o["org_id"] = _suffix(o["org_id"], k)
        o["system_id"] = _suffix(o["system_id"], k)
        p = inst.projects.copy()
        c = inst.costs.copy()
        d = inst.dependencies.copy()
        if k > 0:
            optional = ~(p["mandatory"].to_numpy(dtype=bool) | p["committed_start"].notna().to_numpy())
            benefit_f = _lognormal(rng, len(p), jitter)
            cost_f = np.where(optional, _lognormal(rng, len(p), jitter), 1.0)
            p["benefit"] = np.round(p["benefit"].to_numpy(dtype=float) * benefit_f, 3)
            for col in ("run_cost", "withdrawal_cost"):
                p[col] = np.round(p[col].to_numpy(dtype=float) * cost_f, 3)
            factor = pd.Series(cost_f, index=p["project_id"].to_numpy())
            f = c["project_id"].map(factor).to_numpy(dtype=float)
            for col in ("capital", "revenue"):
                c[col] = np.round(c[col].to_numpy(dtype=float) * f, 3)
        for col in ("project_id", "org_id", "system_id", "group"):
            p[col] = _suffix(p[col], k)
        c["project_id"] = _suffix(c["project_id"], k)
        d["project_id"] = _suffix(d["project_id"], k)
        d["requires"] = _suffix(d["requires"], k)
        systems.append(s)
        orgs.append(o)
        projects.append(p)
        costs.append(c)
        deps.append(d)
    env = inst.envelope.copy()
    env[["capital", "revenue"]] = env[["capital", "revenue"]] * copies
    return dataclasses.replace(
        inst,
        name=f"{inst.name}-x{copies}",
        description=f"{copies} seeded copies of {inst.name} (seed {seed}, jitter {jitter})",
        systems=_renumber(pd.concat(systems)),
        organisations=_renumber(pd.concat(orgs)),
        projects=_renumber(pd.concat(projects)),
        costs=_renumber(pd.concat(costs)),
        dependencies=_renumber(pd.concat(deps)),
        envelope=env,
    )


def scale_scenario(scenario: Scenario, copies: int, *, seed: int = DEFAULT_SEED,
                   jitter: float = DEFAULT_JITTER) -> Scenario:
    """The scenario on ``scale_instance(scenario.instance, copies)``, its envelope times ``copies``."""
    envelope = scenario.envelope.copy()
    envelope[["capital", "revenue"]] = envelope[["capital", "revenue"]] * copies
    return dataclasses.replace(
        scenario,
        name=f"{scenario.name}-x{copies}",
        instance=scale_instance(scenario.instance, copies, seed=seed, jitter=jitter),
        envelope=envelope,
    )


def validate(inst: Instance) -> None:
    """Run the loader's cross-table checks on a generated instance (raises ``InputError``)."""
    check_instance(inst, Path(inst.root) / "instance.toml")
