"""The sensitivity engine: what every analysis shares, in one place.

An analysis reads as its method: **variants** (declarative operations on the scenario,
``solver.data.variants``) → **solve many** (``Task`` → ``run_task`` → ``Outcome``, on an execution
``Context``) → **compare / refine** (a difference and its band, re-solving tighter only what is
undetermined) → **tables**. Every analysis starts from ``base_outcome``: the scenario's own
solve, the same plan and figures as ``envelope solve``.

Honesty rule. A MIP solved to a relative gap g only proves its optimum lies in
[objective, bound]. The difference between two such optima therefore lies in
``[obj_a − bound_b, bound_a − obj_b]``; a difference whose band contains 0 is not a ranking, so
``refine`` re-solves both tighter (gap 1e-4, then 0, within a time limit) before it is ranked.

One interrupt policy (``solve_many``): an interrupted solve (Ctrl-C) stops the whole analysis
with ``KeyboardInterrupt``; a task that raised is a failed ``Outcome`` (status ``error``), never a
silent loss — ``raise_failures`` re-raises the first one's error when a missing result would make
a table meaningless.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from solver.backends import get_backend
from solver.backends.result import SolutionStatus, Termination, relative_gap
from solver.data.scenario import Scenario
from solver.data.variants import Operation, apply
from solver.errors import BackendError, InputError
from solver.mip.arrays import MILP
from solver.mip.formulation import Formulation
from solver.pipeline.core import solve_scenario
from solver.pipeline.decisions import Decisions
from solver.pipeline.outcome import Outcome
from solver.pipeline.verdict import require_plan
from solver.run.context import Context, Failed

PROOF_RTOL = 1e-6
"""A solve is *proven* when bound − objective ≤ PROOF_RTOL · max(1, |objective|) (the audit's
objective tolerance); two proven optima closer than twice that are *equal*."""

DEFAULT_REFINE_GAPS: tuple[float, ...] = (1e-4, 0.0)
"""Gaps tried in turn when a comparison is undetermined: 0.01% first (usually enough to separate
and finishes well inside the time limit, so it is reproducible), then proven optimality."""

Verdict = str  # "positive" | "negative" | "zero" | "undetermined"


# --------------------------------------------------------------------------------------------
# one task, many tasks


@dataclass(frozen=True)
class Task:
    """One re-solve, as picklable data: the scenario, operations applied to it (``variants``), a
    label, an optional warm start, solver overrides, and an optional ``extend`` (a picklable
    callable formulation → MILP, e.g. an extra constraint; see ``solve_scenario``)."""

    scenario: Scenario
    ops: tuple[Operation, ...] = ()
    label: str = ""
    start: Decisions | None = None
    mip_gap: float | None = None
    time_limit: float | None = None
    extend: Callable[[Formulation], MILP] | None = None

    def resolved(self) -> Scenario:
        """The scenario this task solves: operations applied, solver overrides set."""
        sc = apply(self.scenario, self.ops)
        return sc.with_solver(mip_gap=self.mip_gap, time_limit=self.time_limit)


def run_task(task: Task) -> Outcome:
    """Solve one task with ``solve_scenario`` (never explains; infeasible is a status)."""
    return solve_scenario(task.resolved(), extend=task.extend, start=task.start, label=task.label)


@dataclass
class FailedOutcome(Outcome):
    """A task that raised: status ``error``, the message, and the error itself (to re-raise)."""

    error: BaseException | None = None


def failed(task: Task, error: BaseException) -> FailedOutcome:
    """The failed result of ``task``."""
    return FailedOutcome(scenario=task.scenario, status=SolutionStatus.ERROR, termination=Termination.ERROR,
                         backend=task.scenario.backend, message=f"{type(error).__name__}: {error}",
                         label=task.label, error=error)


def _stop(res: object) -> bool:
    return isinstance(res, Outcome) and res.interrupted


def solve_many(tasks: Sequence[Task], context: Context | None = None, label: str = "solving") -> list[Outcome]:
    """Run ``tasks`` on ``context`` (serial in this process when None) and return their outcomes
    in order. An interrupted outcome (Ctrl-C) stops the whole run with ``KeyboardInterrupt``; a
    task that raised is a ``FailedOutcome`` and the others still complete."""
    with analysis_context(context) as ctx:
        results = ctx.map(run_task, tasks, label=label, stop=_stop)
    return [failed(t, r.error) if isinstance(r, Failed) else r for t, r in zip(tasks, results)]


def solve_one(task: Task, context: Context | None = None, label: str = "solving") -> Outcome:
    """One task's outcome; a task that raised re-raises here (its type keeps the exit code)."""
    out = solve_many([task], context, label)
    raise_failures(out)
    return out[0]


def raise_failures(outcomes: Iterable[Outcome]) -> None:
    """Re-raise the first failed outcome's error (its type keeps the exit code), noting how many
    other tasks failed, so that none is lost silently."""
    bad = [o for o in outcomes if isinstance(o, FailedOutcome)]
    if not bad:
        return
    err = bad[0].error if bad[0].error is not None else BackendError(bad[0].message)
    if len(bad) > 1 and isinstance(err, Exception):
        err.add_note(f"{len(bad) - 1} other task(s) failed too: "
                     + "; ".join(f"{o.label}: {o.message}" for o in bad[1:6]) + (" …" if len(bad) > 6 else ""))
    raise err


@contextlib.contextmanager
def analysis_context(context: Context | None, workers: int = 1) -> Iterator[Context]:
    """The context an analysis runs on: the one given (left open for its owner), or a new one for
    ``workers`` (the shorthand every analysis keeps), closed when the analysis ends."""
    if context is not None:
        yield context
        return
    with Context(workers) as ctx:
        yield ctx


# --------------------------------------------------------------------------------------------
# the scenario's own plan


_BASE_CACHE: OrderedDict[str, Outcome] = OrderedDict()
_BASE_CACHE_SIZE = 4


def require_optimising(scenario: Scenario, analysis: str) -> None:
    """Refuse an analysis that needs the MIP (an extended model, LP duals, fixed plans) for a rule-based
    policy, whose plan is made by its rule, not optimised."""
    method = scenario.policy.allocation.method
    if method != "optimise":
        raise InputError(Path(scenario.model_path), f"envelope {analysis} needs an optimising policy; model "
                                                    f"{scenario.policy.name} is rule-based (allocation.method = "
                                                    f"{method}); the ladder, value and rules analyses work on it")


def base_solve(scenario: Scenario, context: Context | None = None) -> Outcome:
    """The scenario's own solve at its own settings — the same plan and figures as ``envelope
    solve`` — whatever its status, reused (by ``scenario.identity``) by every analysis that starts
    from it. Never explains and never raises for a missing plan (see ``base_outcome``)."""
    key = scenario.identity
    hit = _BASE_CACHE.get(key)
    if hit is not None:
        _BASE_CACHE.move_to_end(key)
        return dataclasses.replace(hit, scenario=scenario)
    out = solve_many([Task(scenario, label="base")], context, label="base solve")[0]
    raise_failures([out])
    _BASE_CACHE[key] = out
    while len(_BASE_CACHE) > _BASE_CACHE_SIZE:
        _BASE_CACHE.popitem(last=False)
    return out


def base_outcome(scenario: Scenario, context: Context | None = None) -> Outcome:
    """``base_solve`` with a plan, or the error ``envelope solve`` gives (``require_plan``: the same
    explanation, the same re-check of a backend's doubtful "infeasible", the same messages)."""
    return require_plan(base_solve(scenario, context))


def clear_base_cache() -> None:
    """Forget the cached base solves (e.g. in tests that count solves)."""
    _BASE_CACHE.clear()


# --------------------------------------------------------------------------------------------
# figures of an outcome


def bound_of(o: Outcome) -> float:
    """The proven bound (the objective when the solver gave none; NaN without a plan)."""
    if not o.has_plan:
        return math.nan
    return o.bound if o.bound is not None else o.objective


def gap_of(o: Outcome) -> float:
    """The relative gap (0 when the solver gave none; NaN without a plan)."""
    if not o.has_plan:
        return math.nan
    return o.gap if o.gap is not None else 0.0


def proven(o: Outcome) -> bool:
    """True when the optimum is proven (bound within ``PROOF_RTOL`` of the objective), or when the
    problem is proven infeasible."""
    if not o.has_plan:
        return o.status == SolutionStatus.INFEASIBLE
    return bound_of(o) - o.objective <= PROOF_RTOL * max(1.0, abs(o.objective))


def tight(o: Outcome, gap: float) -> bool:
    """Solved at least as tightly as ``gap`` (or proven either way)."""
    if proven(o):
        return True
    return o.has_plan and gap_of(o) <= gap + 1e-12


def merge(old: Outcome, new: Outcome) -> Outcome:
    """Two solves of the same problem combined: the better plan and the tighter bound (both bounds
    are valid, so their minimum is); solve seconds add up."""
    secs = old.solve_seconds + new.solve_seconds
    if not new.has_plan:
        if new.status == SolutionStatus.INFEASIBLE and not old.has_plan:
            return dataclasses.replace(new, solve_seconds=secs)
        return dataclasses.replace(old, solve_seconds=secs)
    if not old.has_plan:
        return dataclasses.replace(new, solve_seconds=secs)
    best = new if new.objective > old.objective else old
    bound = max(min(bound_of(old), bound_of(new)), best.objective)
    gap = relative_gap(best.objective, bound) or 0.0
    return dataclasses.replace(best, bound=bound, gap=gap, status=new.status, termination=new.termination,
                               solve_seconds=secs)


def relabel(o: Outcome, label: str) -> Outcome:
    """The same outcome under another label (e.g. a ladder level equal to the base)."""
    return dataclasses.replace(o, label=label)


# --------------------------------------------------------------------------------------------
# a difference and its band


@dataclass
class Band:
    """``a − b`` between two solves, the interval their bounds allow, and what can be said.

    verdict: ``positive``/``negative`` when the band excludes 0 (beyond the audit tolerance),
    ``zero`` when the band lies within the tolerance of 0 (both proven, or known ≥ 0 and tight),
    ``undetermined`` otherwise — not a ranking.
    """

    value: float
    low: float
    high: float
    verdict: Verdict

    @property
    def sign(self) -> int:
        """+1 or −1 when the verdict is positive or negative, else 0 (not a ranking)."""
        return {"positive": 1, "negative": -1}.get(self.verdict, 0)


ZERO = Band(0.0, 0.0, 0.0, "zero")


def compare(a: Outcome, b: Outcome, nonnegative: bool = False) -> Band:
    """``a.objective − b.objective`` with the band ``[a.obj − b.bound, a.bound − b.obj]``.

    ``nonnegative`` states that the true difference cannot be negative (``a`` is a relaxation of
    ``b``), which clips the band at 0. A problem without a plan counts as −∞ when proven
    infeasible, and as unknown otherwise (stopped without a plan, or failed).
    """
    if not a.has_plan or not b.has_plan:
        a_inf, b_inf = a.status == SolutionStatus.INFEASIBLE, b.status == SolutionStatus.INFEASIBLE
        if a_inf and b_inf:
            return Band(0.0, 0.0, 0.0, "zero")
        if a_inf and b.has_plan:
            return Band(-math.inf, -math.inf, -math.inf, "negative")
        if b_inf and a.has_plan:
            return Band(math.inf, math.inf, math.inf, "positive")
        return Band(math.nan, math.nan, math.nan, "undetermined")
    value = a.objective - b.objective
    low, high = a.objective - bound_of(b), bound_of(a) - b.objective
    if nonnegative:  # b's plan is feasible for a: a's optimum is at least max(a.obj, b.obj)
        value = max(value, 0.0)
        low = max(low, 0.0)
    tol = 2 * PROOF_RTOL * max(1.0, abs(a.objective), abs(b.objective))
    if low > tol:
        verdict = "positive"
    elif high < -tol:
        verdict = "negative"
    elif -tol <= low and high <= tol:
        verdict = "zero"
    else:
        verdict = "undetermined"
    return Band(value, min(low, value), max(high, value), verdict)  # float noise can put bound < objective


Comparison = tuple[str, str, bool]
"""(key of a, key of b, nonnegative): one difference ``a − b`` an analysis reports or ranks on."""


def undetermined(outcomes: dict[str, Outcome], comparisons: Iterable[Comparison]) -> set[str]:
    """Keys of the outcomes in a comparison whose band does not settle its sign."""
    out: set[str] = set()
    for a, b, nonneg in comparisons:
        if compare(outcomes[a], outcomes[b], nonnegative=nonneg).verdict == "undetermined":
            out.update((a, b))
    return out


def tighter(task: Task, outcome: Outcome, gap: float, time_limit: float) -> Task:
    """``task`` again at ``gap`` within ``time_limit``, warm-started from ``outcome``'s plan."""
    start = outcome.decisions if outcome.has_plan else task.start
    return dataclasses.replace(task, mip_gap=gap, time_limit=time_limit, start=start)


def refine(outcomes: dict[str, Outcome], tasks: dict[str, Task], comparisons: Sequence[Comparison], *,
           gaps: Sequence[float], time_limit: float, context: Context | None = None,
           log: list[dict[str, object]] | None = None, alias: dict[str, str] | None = None,
           label: str = "re-solving") -> dict[str, Outcome]:
    """Re-solve, gap by gap (e.g. 1e-4 then 0), only the outcomes of undetermined comparisons.

    Each re-solve is warm-started from the outcome's own plan and merged with it (better plan,
    tighter bound). ``alias`` maps keys that are the same problem as another key (e.g. a cut of a
    pot already at 0) to it: only the target is re-solved and the alias gets its figures.

    Probe rule: a stage starts with one re-solve per worker; if none of them reaches the stage's
    gap within the time limit, the rest of that stage and every tighter stage are skipped (each
    logged with status ``skipped``) — they are harder still, and proving optimality on a large
    instance can take far longer than any limit. What stays undetermined is reported as such.

    Returns ``outcomes`` (also updated in place); ``log`` receives one record per re-solve or skip.
    """
    alias = alias or {}
    with analysis_context(context) as ctx:
        probe = max(1, ctx.workers)
        stalled_at: float | None = None
        for gap in gaps:
            open_ = sorted({alias.get(k, k) for k in undetermined(outcomes, comparisons)})
            if not open_:
                break                      # every comparison is settled
            need = [k for k in open_ if not tight(outcomes[k], gap)]
            if not need:
                continue                   # already this tight: the next, tighter stage may settle them
            if stalled_at is not None:
                _log_skipped(log, need, gap, time_limit, stalled_at)
                continue
            jobs = [tighter(tasks[k], outcomes[k], gap, time_limit) for k in need]
            stage = f"{label} at gap {gap:g}"
            with ctx.stage(stage, len(jobs)):
                first = solve_many(jobs[:probe], ctx, stage)
                raise_failures(first)
                _merge_into(outcomes, need[:probe], first, gap, time_limit, log)
                if not any(tight(new, gap) for new in first):
                    stalled_at = gap
                    _log_skipped(log, need[probe:], gap, time_limit, gap)
                elif len(jobs) > probe:
                    rest = solve_many(jobs[probe:], ctx, stage)
                    raise_failures(rest)
                    _merge_into(outcomes, need[probe:], rest, gap, time_limit, log)
            for a, target in alias.items():
                outcomes[a] = relabel(outcomes[target], a)
    return outcomes


def refine_log(key: str, gap: float, time_limit: float, new: Outcome) -> dict[str, object]:
    """One ``refinements`` record of ``summary.json`` (``seconds`` goes to timing.json)."""
    return {"label": key, "mip_gap": gap, "time_limit": time_limit, "status": new.status.value,
            "objective": _num(new.objective), "bound": _num(bound_of(new)), "gap": _num(gap_of(new)),
            "seconds": new.solve_seconds}


def _merge_into(outcomes: dict[str, Outcome], keys: Sequence[str], results: Sequence[Outcome], gap: float,
                time_limit: float, log: list[dict[str, object]] | None) -> None:
    for k, new in zip(keys, results):
        outcomes[k] = merge(outcomes[k], new)
        if log is not None:
            log.append(refine_log(k, gap, time_limit, new))


def _log_skipped(log: list[dict[str, object]] | None, keys: Sequence[str], gap: float, time_limit: float,
                 stalled_at: float) -> None:
    if log is None:
        return
    for k in keys:
        log.append({"label": k, "mip_gap": gap, "time_limit": time_limit, "status": "skipped",
                    "objective": None, "bound": None, "gap": None, "seconds": 0.0,
                    "reason": f"a probe re-solve did not reach gap {stalled_at:g} within {time_limit:g} s"})


def certain_ranks(keys: Sequence[str], outcomes: dict[str, Outcome]) -> dict[str, tuple[int, list[str]]]:
    """Rank by objective (higher first) counting only what is proven: rank = 1 + the number of
    others provably higher; ``tied`` lists those whose order against this one is not proven."""
    out = {}
    for i in keys:
        better, tied = 0, []
        for j in keys:
            if i == j:
                continue
            v = compare(outcomes[j], outcomes[i]).verdict
            if v == "positive":
                better += 1
            elif v in ("zero", "undetermined"):
                tied.append(j)
        out[i] = (better + 1, tied)
    return out


def refine_settings(scenario: Scenario, refine_gaps: Sequence[float] | None,
                    refine_time_limit: float | None) -> tuple[list[float], float]:
    """Gaps to try (only those tighter than the scenario's own) and the re-solve time limit."""
    gaps = DEFAULT_REFINE_GAPS if refine_gaps is None else tuple(refine_gaps)
    out = [float(g) for g in gaps if g < scenario.solver.mip_gap]
    if refine_time_limit is None:
        refine_time_limit = scenario.solver.time_limit
    return out, float(refine_time_limit)


# --------------------------------------------------------------------------------------------
# plans compared


def plan_changes(base: Outcome, other: Outcome, psys: dict[str, str]) -> list[dict[str, object]]:
    """Projects funded in ``other`` but not ``base`` (in), the reverse (out), and moved starts."""
    rows: list[dict[str, object]] = []
    if not (base.has_plan and other.has_plan):
        return rows
    bs, os_ = base.decisions.starts, other.decisions.starts  # type: ignore[union-attr]
    for p in sorted(set(bs) | set(os_)):
        b, o = bs.get(p), os_.get(p)
        if b == o:
            continue
        change = "in" if b is None else "out" if o is None else "moved"
        rows.append({"project_id": p, "system_id": psys.get(p, ""), "change": change,
                     "base_start": b, "new_start": o})
    return rows


def spend(o: Outcome) -> dict[str, float]:
    """Spend per pot and year of the plan (``"capital 2026"`` → £m); empty without a plan."""
    if not o.has_plan:
        return {}
    return {f"{pot} {y}": v for (pot, y), v in o.accounts.pot_spend.items()}


def allocation(o: Outcome) -> dict[str, float]:
    """National money per system of the plan; empty without a plan."""
    return dict(o.accounts.allocation) if o.has_plan else {}


# --------------------------------------------------------------------------------------------
# summaries


def _num(v: float | None) -> float | None:
    """A JSON-safe number (None for NaN/inf)."""
    return None if v is None or not math.isfinite(float(v)) else float(v)


def jsonable(obj: object) -> object:
    """Plain JSON types (numpy scalars converted, NaN/inf → None, tuples → lists, enums → values)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        seq = sorted(obj) if isinstance(obj, set | frozenset) else obj
        return [jsonable(v) for v in seq]
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer | int):
        return int(obj)
    if isinstance(obj, np.floating | float):
        return _num(float(obj))
    if isinstance(obj, str):
        return str(obj)
    return obj


def solve_record(o: Outcome, kind: str = "", label: str | None = None) -> dict[str, object]:
    """An outcome's solver figures for ``summary.json`` (no timing)."""
    rec: dict[str, object] = {"label": o.label if label is None else label}
    if kind:
        rec["kind"] = kind
    rec.update({"status": o.status.value, "objective": _num(o.objective), "bound": _num(bound_of(o)),
                "gap": _num(gap_of(o)), "funded": len(o.funded) if o.has_plan else None})
    if isinstance(o, FailedOutcome):
        rec["error"] = o.message
    return rec


def time_limited(outcomes: dict[str, Outcome], log: list[dict[str, object]]) -> list[str]:
    """Labels of solves that stopped on their time limit (their figures depend on machine speed)."""
    out = {str(r["label"]) for r in log if r["status"] not in ("optimal", "infeasible")}
    out |= {k for k, o in outcomes.items() if o.status in (SolutionStatus.FEASIBLE, SolutionStatus.NO_SOLUTION)}
    return sorted(out)


def solver_summary(scenario: Scenario) -> dict[str, object]:
    """Solver settings and version."""
    s = scenario.solver
    try:
        ver = get_backend(s.backend).version()
    except BackendError:
        ver = "unavailable"
    return {"backend": s.backend, "version": ver, "mip_gap": s.mip_gap, "time_limit": s.time_limit,
            "threads": s.threads, "seed": s.seed}


def scenario_summary(scenario: Scenario) -> dict[str, object]:
    """Which scenario was analysed (the ``scenario`` entry of every analysis summary)."""
    return {"identity": scenario.identity, "name": scenario.name, "path": scenario.path,
            "model": scenario.policy.name, "instance": scenario.instance.name,
            "description": scenario.description,
            "envelope": scenario.envelope[["year", "capital", "revenue"]].to_dict("records")}


def header(scenario: Scenario, analysis: str, parameters: dict[str, object]) -> dict[str, object]:
    """The common head of every analysis's ``summary.json``: ``analysis``, ``scenario`` (identity,
    name, path, model, instance, description, envelope), ``parameters``, ``solver`` (settings and
    version). Analyses add their own keys after it."""
    return {"analysis": analysis, "scenario": scenario_summary(scenario), "parameters": dict(parameters),
            "solver": solver_summary(scenario)}


# --------------------------------------------------------------------------------------------
# the result of an analysis


@dataclass
class Analysis:
    """What every analysis returns: its tables and a JSON summary (``header`` first, then figures,
    ``timing`` apart). Text is rendered by ``solver.present.analyses.render``."""

    name: str
    tables: dict[str, pd.DataFrame]
    summary: dict[str, object]

    def files(self) -> dict[str, object]:
        """Output files for ``solver.present.outputs.write_folder``: one CSV per table, summary.json, and
        the wall-clock figures apart in timing.json, so that equal runs write byte-identical files
        everywhere else (as ``envelope solve`` does)."""
        out: dict[str, object] = {f"{k}.csv": v for k, v in self.tables.items()}
        out["summary.json"] = {k: v for k, v in self.summary.items() if k != "timing"}
        if "timing" in self.summary:
            out["timing.json"] = self.summary["timing"]
        return out

    @property
    def text(self) -> str:
        """The ranked text summary (``solver.present.analyses.render``)."""
        from solver.present.analyses import render

        return render(self)


__all__ = [
    "DEFAULT_REFINE_GAPS", "PROOF_RTOL", "ZERO", "Analysis", "Band", "Comparison", "Context", "FailedOutcome", "Task",
    "allocation", "analysis_context", "base_outcome", "base_solve", "bound_of", "certain_ranks", "clear_base_cache",
    "compare", "solve_one",
    "failed", "gap_of", "header", "jsonable", "merge", "plan_changes", "proven",
    "raise_failures", "refine", "require_optimising", "refine_log", "refine_settings", "relabel", "run_task",
    "scenario_summary",
    "solve_many", "solve_record", "solver_summary", "spend", "tight", "tighter", "time_limited", "undetermined",
]
# ENGINE-API-READY
