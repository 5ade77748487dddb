"""What a batch worker runs: a *chunk* of points, each solved by the one pipeline and turned into results
rows (one ``runs`` row, and one ``plans`` row per funded project).

Base scenarios reach a worker once, not once per task: a chunk carries, for each base it uses, either
the scenario itself (on Dask, a future's result that the cluster moves to each worker once and keeps),
a ``BaseRef`` naming a pickle file written once by the batch (local pool), or a generator recipe (the
worker generates the instance). A worker keeps the bases it has met in a small cache.

A point that raises (bad input in a variant, a backend failure, an audit error) is a failed row with
its message; a point whose solve was interrupted (Ctrl-C, SIGTERM) is not a result: it is reported as
interrupted and the chunk stops there, so only completed results are ever recorded.
"""

from __future__ import annotations

import math
import os
import pickle
import socket
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from solver.analyses.metrics import metrics
from solver.backends.result import SolutionStatus
from solver.batch.sweep import Base, Point, base_scenario
from solver.data.scenario import Scenario, builtin_models_dir, load_policy
from solver.data.variants import SetPolicy, apply
from solver.pipeline.accounts import account, project_system
from solver.pipeline.checks import obvious_causes
from solver.pipeline.core import solve_scenario
from solver.pipeline.outcome import Outcome

#: Base scenarios a worker keeps (least recently used dropped first).
CACHE_SIZE = 32
#: The yardstick policy of ``need_first_value`` (as ``envelope compare``'s reference).
YARDSTICK = "need-first"

_CACHE: OrderedDict[str, Scenario] = OrderedDict()
_YARD: SetPolicy | None = None


@dataclass(frozen=True)
class BaseRef:
    """How a worker finds a base: by key in its cache, else from a pickle file or the generator recipe."""

    key: str
    pickle: str = ""
    base: Base | None = None


@dataclass
class ChunkResult:
    """The rows of a chunk's completed points, the ids of points interrupted, and where it ran."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    plans: list[dict[str, Any]] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)


def remember(key: str, scenario: Scenario) -> None:
    """Put a base in this process's cache (the serial engine hands its bases over so)."""
    _CACHE[key] = scenario
    _CACHE.move_to_end(key)
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)


def forget() -> None:
    """Empty this process's cache of bases."""
    _CACHE.clear()


def resolve(ref: object) -> Scenario:
    """The base scenario a chunk names: shipped whole, cached here, or read / generated once."""
    if isinstance(ref, Scenario):
        return ref
    assert isinstance(ref, BaseRef)
    hit = _CACHE.get(ref.key)
    if hit is not None:
        _CACHE.move_to_end(ref.key)
        return hit
    if ref.pickle:
        with open(ref.pickle, "rb") as fh:
            sc = pickle.load(fh)   # noqa: S301 - written by this batch, in its own results folder
    else:
        assert ref.base is not None
        sc = base_scenario(ref.base)
    remember(ref.key, sc)
    return sc


def run_chunk(task: tuple[Sequence[object], Sequence[tuple[int, Point]]]) -> ChunkResult:
    """Solve a chunk: ``task`` is (the bases it uses, its points each with the index of its base)."""
    bases, points = task
    out = ChunkResult()
    for k, (index, point) in enumerate(points):
        result = run_point(point, bases[index])
        if result is None:
            out.interrupted += [p.id for _, p in points[k:]]
            break
        row, plan = result
        out.runs.append(row)
        out.plans += plan
    return out


def _now() -> datetime:
    return datetime.now(UTC)


def _one_line(text: str) -> str:
    return "".join(c if c.isprintable() else " " for c in text).strip()


def scenario_name(base: str, label: str) -> str:
    """A point's name, as ``variants.apply`` gives it: ``<base>#<label>`` (the base's name without a label)."""
    return f"{base}#{label}" if label else base


def run_point(point: Point, base: object) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The rows of one point, or None when its solve was interrupted (no result)."""
    t0 = time.perf_counter()
    row: dict[str, Any] = {"id": point.id, "label": point.label, **dict(point.params),
                           "scenario": scenario_name(str(dict(point.params).get("base", "")), point.label)}
    try:
        sc = apply(resolve(base), point.ops, label=point.label or None)
        row["scenario"], row["identity"] = sc.name, sc.identity
        outcome = solve_scenario(sc, label=point.label)
        if outcome.interrupted:
            return None
        row.update(_metrics(outcome))
        plan = plan_rows(point.id, outcome)
    except Exception as exc:  # noqa: BLE001 - a failed scenario is a result; the batch carries on
        row.update(status=SolutionStatus.ERROR.value, termination="error", error=type(exc).__name__,
                   message=_one_line(f"{type(exc).__name__}: {exc}"))
        plan = []
    row["wall_seconds"] = round(time.perf_counter() - t0, 4)
    row["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    row["finished_at"] = _now()
    return {k: _plain(v) for k, v in row.items()}, plan


def _metrics(outcome: Outcome) -> dict[str, Any]:
    """The issue-7 metrics row, with the yardstick value, build and solve times and a reason without a plan."""
    m = metrics(outcome)
    m["backend"], m["solver_version"] = outcome.backend, outcome.solver_version
    m["build_seconds"], m["solver_seconds"] = round(outcome.build_seconds, 4), round(outcome.solve_seconds, 4)
    m["has_plan"] = outcome.has_plan
    if outcome.has_plan:
        m["need_first_value"] = need_first_value(outcome)
        m["projects_funded"] = len(outcome.funded)
    else:
        message = outcome.message
        if outcome.status == SolutionStatus.INFEASIBLE:
            causes = obvious_causes(outcome.scenario)
            message = "no plan satisfies every rule" + (": " + "; ".join(causes) if causes else
                                                        " (envelope explain on the scenario finds the smallest "
                                                        "relaxation)")
        m["message"] = _one_line(message or outcome.status.value)
    return m


def need_first_value(outcome: Outcome) -> float:
    """The plan's need-weighted discounted benefit under need-first's weights (the scenario's own overrides on
    top, as ``envelope compare``'s yardstick): comparable across policies, so % of need-first is a query."""
    global _YARD
    if _YARD is None:
        policy, path = load_policy(YARDSTICK, builtin_models_dir())
        _YARD = SetPolicy.of(policy, str(path))
    yard = _YARD.apply(outcome.scenario)
    if yard.policy == outcome.scenario.policy:
        return float(sum(outcome.accounts.value.values()))
    assert outcome.decisions is not None
    return float(sum(account(yard, outcome.decisions).value.values()))


def plan_rows(point_id: str, outcome: Outcome) -> list[dict[str, Any]]:
    """One row per funded project: where it is, when it starts and goes live, its money and its value."""
    if not outcome.has_plan or outcome.decisions is None:
        return []
    sc = outcome.scenario
    acc = outcome.accounts
    pr = sc.instance.projects.set_index("project_id")
    systems = project_system(sc)
    cats = dict(zip(sc.instance.organisations["org_id"], sc.instance.organisations["category"]))
    money: dict[str, list[float]] = {}
    for line in acc.lines:
        m = money.setdefault(line[0], [0.0] * 6)
        for i, k in enumerate((2, 3, 4, 5, 6, 7)):
            m[i] += float(line[k])
    rows = []
    for p, start in sorted(outcome.decisions.starts.items()):
        org = pr.at[p, "org_id"]
        org = org if isinstance(org, str) else None
        nc, lc, nr, lr, run, fee = money.get(p, [0.0] * 6)
        kind = pr.at[p, "kind"]
        nc, lc, nr, lr, run, fee = (round(v, 6) for v in (nc, lc, nr, lr, run, fee))
        rows.append({
            "id": point_id, "project_id": p, "system_id": systems.get(p), "org_id": org,
            "category": int(cats[org]) if org in cats else None, "kind": kind if isinstance(kind, str) else None,
            "start": int(start), "go_live": int(start) + int(pr.at[p, "duration_years"]),
            "national_capital": nc, "national_revenue": nr, "national_funding": round(nc + nr, 6),
            "local_capital": lc, "local_revenue": lr, "run_cost": run, "fee": fee,
            "value": float(acc.value.get(p, 0.0)),
        })
    return rows


def _plain(value: object) -> object:
    """A value as Parquet takes it: numpy scalars as Python ones, NaN as missing."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


__all__ = ["BaseRef", "ChunkResult", "forget", "plan_rows", "remember", "resolve", "run_chunk", "run_point"]
