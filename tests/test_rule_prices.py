"""Price of each rule on the tiny instance: the active families are the ones priced, each relaxed
optimum equals an independent solve (and brute force where cheap) of the relaxed scenario, every
gain is ≥ 0 with a band, changes are exactly the plan differences, ranks count only proven
differences, and the same seed gives identical outputs."""

from __future__ import annotations

import pandas as pd
import pytest

from solver import solve
from solver.analyses.engine import Analysis, Task, plan_changes, run_task
from solver.analyses.prices import relaxations, rule_prices
from solver.pipeline.accounts import project_system
from tests.bruteforce import brute_force
from tests.test_ladder import env_key, tiny, tiny_brute


@pytest.fixture(scope="module")
def prices() -> Analysis:
    return rule_prices(tiny(), seed=2)


def test_active_families_are_priced(prices: Analysis) -> None:
    rules = prices.tables["rules"]
    assert set(rules["family"]) == {"standardisation", "carry_over", "capital_to_revenue", "match_funding",
                                    "revenue_headroom", "run_costs", "fee", "commitments", "mandatory",
                                    "dependencies", "alternatives"}
    assert (rules["family"] == "commitments").sum() == 2          # keep → withdrawable, keep → ignore
    assert prices.summary["inactive"] == {"fair_share": "mode off"}
    fair = relaxations(tiny().with_overrides({"fair_share": {"mode": "floor", "enforcement": "hard"}}))
    assert "fair_share" in {r.family for r in fair[0]}


def test_each_price_is_the_relaxed_optimum(prices: Analysis) -> None:
    base = solve(tiny()).objective
    rules = prices.tables["rules"].set_index("relaxed")
    for r in relaxations(tiny())[0]:
        direct = solve(r.scenario).objective
        row = rules.loc[r.relaxed]
        assert row["objective"] == pytest.approx(direct, rel=1e-9)
        assert row["gain"] == pytest.approx(direct - base, abs=1e-7)
        assert 0 <= row["gain_low"] <= row["gain"] + 1e-9 <= row["gain_high"] + 2e-9
        assert row["verdict"] == ("positive" if direct - base > 1e-6 else "zero")


@pytest.mark.slow
@pytest.mark.parametrize("family", ["mandatory", "carry_over"])
def test_prices_match_brute_force(prices: Analysis, family: str) -> None:
    base, _ = tiny_brute(env_key(tiny().envelope))
    relaxed = next(r for r in relaxations(tiny())[0] if r.family == family)
    best, plans = brute_force(relaxed.scenario)
    row = prices.tables["rules"].set_index("family").loc[family]
    assert row["gain"] == pytest.approx(best - base, abs=1e-7)
    assert row["gain"] > 0


def test_changes_are_the_plan_differences(prices: Analysis) -> None:
    sc = tiny()
    base = run_task(Task(sc, (), "base"))
    psys = project_system(sc)
    changes = prices.tables["changes"]
    rules = prices.tables["rules"].set_index("relaxed")
    for r in relaxations(sc)[0]:
        p = run_task(Task(r.scenario, (), r.relaxed, start=base.decisions))
        expected = plan_changes(base, p, psys)
        got = changes[changes["relaxed"] == r.relaxed]
        assert sorted(zip(got["project_id"], got["change"])) == sorted((c["project_id"], c["change"]) for c in expected)
        assert rules.at[r.relaxed, "projects_in"] == sum(c["change"] == "in" for c in expected)


def test_ranks_only_count_proven_differences(prices: Analysis) -> None:
    rules = prices.tables["rules"]
    for r in rules.itertuples():
        assert r.rank == 1 + sum(1 for s in rules.itertuples() if s.gain - r.gain > 1e-6)
    assert list(rules["gain"]) == sorted(rules["gain"], reverse=True)
    assert rules.iloc[0]["family"] == "carry_over"                # the dearest rule on tiny
    assert "What each rule costs" in prices.text


def test_same_seed_gives_identical_outputs(prices: Analysis) -> None:
    again = rule_prices(tiny(), seed=2)
    for name, frame in prices.tables.items():
        pd.testing.assert_frame_equal(frame, again.tables[name])
    strip = lambda s: {k: v for k, v in s.items() if k != "timing"}  # noqa: E731
    assert strip(prices.summary) == strip(again.summary)
    assert prices.text == again.text
