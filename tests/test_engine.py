"""The sensitivity engine and its execution context: a failing task is recorded and the others
complete; one pool serves every stage of an analysis; every analysis starts from the scenario's
own plan (the ladder's 100% level *is* ``solve``'s plan, solved once and reused)."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

import solver.analyses.engine as engine
from solver.analyses import Analysis, Context, ladder, rule_prices, value_of_money
from solver.analyses.engine import Task, base_outcome, clear_base_cache, raise_failures, solve_many
from solver.backends.result import SolutionStatus
from solver.data.variants import ScaleEnvelope
from solver.errors import InputError
from solver.pipeline.core import solve_scenario
from solver.run.executor import SerialExecutor
from tests.test_ladder import tiny


class CountingPool(SerialExecutor):
    """A stand-in for a process pool that counts how often it is created and shut down."""

    created = 0
    shutdowns = 0
    submitted = 0

    def __init__(self, workers: int) -> None:
        type(self).created += 1
        self.workers = workers

    def submit(self, fn, /, *args, **kwargs) -> Future:  # type: ignore[no-untyped-def, override]
        type(self).submitted += 1
        return super().submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        type(self).shutdowns += 1


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> type[CountingPool]:
    for name in ("created", "shutdowns", "submitted"):
        monkeypatch.setattr(CountingPool, name, 0)
    monkeypatch.setattr("solver.run.context.make_executor", CountingPool)
    return CountingPool


@pytest.fixture
def solves(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Labels of every task solved (the base cache emptied first)."""
    clear_base_cache()
    calls: list[str] = []
    real = engine.run_task

    def counting(task: Task):  # type: ignore[no-untyped-def]
        calls.append(task.label)
        return real(task)

    monkeypatch.setattr(engine, "run_task", counting)
    return calls


def test_a_failing_task_is_recorded_and_the_others_complete() -> None:
    sc = tiny()
    tasks = [Task(sc, (ScaleEnvelope(0.5),), "half"), Task(sc, (ScaleEnvelope(200.0),), "bad"),
             Task(sc, (ScaleEnvelope(0.9),), "most")]
    out = solve_many(tasks, Context(progress=False))
    assert [o.label for o in out] == ["half", "bad", "most"]
    assert out[0].has_plan
    assert out[2].has_plan
    assert out[1].status == SolutionStatus.ERROR
    assert "envelope scale must be in [0, 100]" in out[1].message
    with pytest.raises(InputError, match="envelope scale"):   # the analysis decides: here, raise it
        raise_failures(out)


def test_one_pool_serves_every_stage_of_an_analysis(pool: type[CountingPool]) -> None:
    result = ladder(tiny(), [1.0, 0.9, 0.5, 0.4], nested=True, workers=2, refine_gaps=[0.0])
    assert isinstance(result, Analysis)
    assert pool.created == 1                  # base, ladder rounds and nested solves on one pool
    assert pool.shutdowns == 1                # closed when the analysis ends
    assert pool.submitted > 4


def test_a_context_handed_in_is_reused_across_analyses_and_closed_by_its_owner(pool: type[CountingPool]) -> None:
    with Context(workers=2, progress=False) as ctx:
        ladder(tiny(), [1.0, 0.5], context=ctx)
        value_of_money(tiny(), context=ctx, lp=False)
        assert pool.shutdowns == 0
    assert pool.created == 1
    assert pool.shutdowns == 1


def test_the_ladder_top_level_is_the_base_solve(solves: list[str]) -> None:
    sc = tiny()
    result = ladder(sc, [1.0, 0.5])
    assert sorted(solves) == ["50%", "base"]          # 100% is not solved again
    direct = solve_scenario(sc)
    top = result.tables["levels"].iloc[0]
    assert top["objective"] == direct.objective
    assert top["funded"] == len(direct.funded)
    funded = result.tables["funded"]
    plan = funded[(funded["label"] == "100%") & (funded["plan"] == "optimal")]
    assert dict(zip(plan["project_id"], plan["start"])) == direct.decisions.starts
    # value and rules start from the same cached plan: no second base solve
    value_of_money(sc, lp=False)
    rule_prices(sc)
    assert solves.count("base") == 1
    assert base_outcome(sc).objective == direct.objective


def test_an_interrupted_solve_stops_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from solver.backends.result import Termination

    real = engine.run_task
    seen: list[str] = []

    def interrupted(task: Task):  # type: ignore[no-untyped-def]
        seen.append(task.label)
        return dataclasses.replace(real(task), termination=Termination.INTERRUPTED)

    monkeypatch.setattr(engine, "run_task", interrupted)
    tasks = [Task(tiny(), (ScaleEnvelope(f),), str(f)) for f in (0.5, 0.6, 0.7)]
    with pytest.raises(KeyboardInterrupt):
        solve_many(tasks, Context(progress=False))
    assert seen == ["0.5"]                            # nothing solved after the interrupted one


def test_refinement_goes_on_to_proof_when_a_stage_is_already_met() -> None:
    """Two solves tight at 1e-4 but not proven, whose band still contains 0: the 1e-4 stage has
    nothing to re-solve, and the proof stage (gap 0) must still run and settle the comparison."""
    import dataclasses

    sc = tiny()
    exact = solve_scenario(sc)
    loose = dataclasses.replace(exact, bound=exact.objective * (1 + 5e-5), gap=5e-5)
    outs = {"a": loose, "b": dataclasses.replace(loose, label="b")}
    tasks = {"a": Task(sc, (), "a"), "b": Task(sc, (), "b")}
    assert engine.compare(outs["a"], outs["b"]).verdict == "undetermined"
    log: list[dict[str, object]] = []
    engine.refine(outs, tasks, [("a", "b", False)], gaps=[1e-4, 0.0], time_limit=30, log=log)
    assert engine.compare(outs["a"], outs["b"]).verdict == "zero"
    assert {r["mip_gap"] for r in log} == {0.0}
