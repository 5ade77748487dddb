"""Allocation policies: each objective kind against enumeration of every plan (feasibility and criteria
from the independent audit), each rule-based baseline against a hand-worked instance, and the
properties every policy keeps on random instances: its plan passes the audit, lexicographic tiers
hold within their tolerance, and the need-first optimum is at least every baseline's need-first value."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, assume, given, note, settings
from hypothesis import strategies as st

from solver.backends.result import SolutionStatus, Termination
from solver.data.scenario import Scenario, builtin_models_dir, list_models, load_policy, load_scenario
from solver.errors import InfeasibleError
from solver.pipeline.accounts import account, view
from solver.pipeline.audit import audit
from solver.pipeline.core import solve_scenario
from solver.pipeline.decisions import Decisions
from tests.bruteforce import _money_moves, project_choices
from tests.strategies import Case, cases

TINY = Path(__file__).resolve().parent.parent / "instances" / "tiny" / "baseline.toml"
SETTINGS: dict[str, Any] = dict(deadline=None, derandomize=True, database=None, print_blob=False,
                                phases=(Phase.explicit, Phase.reuse, Phase.generate),
                                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                       HealthCheck.data_too_large])
MAX_PLANS = 3000
LEVELLING = {"objective": {"kind": "lexicographic", "tolerance": 0.0,
                           "tiers": ["category-0", "category-1", "category-2", "category-3", "benefit"]}}


def plans(scenario: Scenario) -> list[tuple[Decisions, dict[str, float], float]]:
    """Every valid plan with its audit terms (each criterion of the kind) and objective (money moved between
    years and pots as the brute-force oracle does, where the policy allows it)."""
    v_choices = project_choices(scenario)
    ids = sorted(v_choices)
    v = view(scenario)
    moves = scenario.policy.budget.capital_to_revenue > 0 or scenario.policy.budget.carry_over > 0
    out = []
    for combo in itertools.product(*(v_choices[p] for p in ids)):
        dec = Decisions(starts={p: c for p, c in zip(ids, combo) if isinstance(c, int)},
                        withdrawn=[p for p, c in zip(ids, combo) if c == "withdrawn"])
        rep = audit(scenario, dec, v=v)
        if not rep.ok and moves and all("spends" in m or "carr" in m for m in rep.violations):
            moved = _money_moves(scenario, dec, v)
            if moved is not None:
                dec, rep = moved, audit(scenario, moved, v=v)
        if rep.ok:
            out.append((dec, rep.penalties, rep.objective))
    return out


def write(folder: Path, tables: dict[str, str], model: str = "need-first", overrides: str = "") -> Path:
    """A small instance folder and its scenario file."""
    folder.mkdir(parents=True, exist_ok=True)
    years = sorted({int(line.split(",")[0]) for line in tables["envelope.csv"].strip().splitlines()[1:]})
    (folder / "instance.toml").write_text(f'name = "hand"\nyears = {years}\n')
    for name, text in tables.items():
        (folder / name).write_text(text.strip() + "\n")
    (folder / "dependencies.csv").write_text("project_id,requires,lag_years\n")
    (folder / "s.toml").write_text(f'instance = "."\nmodel = "{model}"\n[solver]\nmip_gap = 0\n{overrides}')
    return folder / "s.toml"


PROJECT_HEAD = ("project_id,org_id,system_id,name,kind,platform,benefit,earliest_start,latest_start,duration_years,"
                "run_cost,savings,match_share,mandatory,committed_start,withdrawal_cost,group")
FLAT = ('[overrides]\nneed = { category_weights = { "0" = 1.0, "1" = 1.0, "2" = 1.0, "3" = 1.0 }, '
        'need_index_power = 0.0 }\nfee = { rate = 0.0 }\nmatch_funding = { enabled = false }\n'
        'revenue_consequences = { payer = "ignore" }\nstandardisation = { mode = "off" }\n')


def hand_instance(folder: Path, overrides: str, projects: str, costs: str, envelope: str = "2026,10,0") -> Scenario:
    """Two systems (A: weighted population 1, B: 3), three trusts (A1 cat 0, B1 cat 1, B2 cat 3), one year."""
    return load_scenario(write(folder, {
        "systems.csv": "system_id,name,population,weighted_population,need_index,local_capital,revenue_headroom\n"
                       "A,A,1,1,1,100,100\nB,B,3,3,1,100,100",
        "organisations.csv": "org_id,name,system_id,category,platform\nA1,a1,A,0,\nB1,b1,B,1,\nB2,b2,B,3,",
        "projects.csv": PROJECT_HEAD + "\n" + projects.strip(),
        "costs.csv": "project_id,year_offset,capital,revenue\n" + costs.strip(),
        "envelope.csv": "year,capital,revenue\n" + envelope,
    }, overrides=FLAT + overrides))


# projects: P1 at A1 (cat 0) cost 6 benefit 5; P2 at B1 (cat 1) cost 5 benefit 9 savings 2;
# P3 at B2 (cat 3) cost 4 benefit 4 savings 3; all live at once (duration 0), one year, horizon 1
HAND_PROJECTS = """
P1,A1,,p1,k,,5,2026,2026,0,0,0,0,false,,0,
P2,B1,,p2,k,,9,2026,2026,0,0,2,0,false,,0,
P3,B2,,p3,k,,4,2026,2026,0,0,3,0,false,,0,
"""
HAND_COSTS = "P1,0,6,0\nP2,0,5,0\nP3,0,4,0"
HORIZON1 = "[overrides.objective]\nhorizon_years = 1\ndiscount_rate = 0.0\n"


def test_need_first_on_the_hand_instance(tmp_path: Path) -> None:
    # budget 10: {P1, P3} = 9, {P2, P3} = 13, {P1, P2} does not fit (11): need-first (flat) takes P2 + P3
    o = solve_scenario(hand_instance(tmp_path, HORIZON1, HAND_PROJECTS, HAND_COSTS))
    assert o.funded == {"P2", "P3"}
    assert o.objective == pytest.approx(13.0)


def test_roi_objective_by_hand(tmp_path: Path) -> None:
    # one year, horizon 1: return = savings - cost: P1 -6, P2 2-5 = -3, P3 3-4 = -1 -> fund nothing (0)
    o = solve_scenario(hand_instance(tmp_path, '[overrides.objective]\nkind = "roi"\nhorizon_years = 1\n'
                                     'discount_rate = 0.0\n', HAND_PROJECTS, HAND_COSTS))
    assert o.status == SolutionStatus.OPTIMAL
    assert o.funded == set()
    assert o.objective == pytest.approx(0.0)
    # horizon 3, no discount: P3 lives 3 years: 9 - 4 = +5; P2 6 - 5 = +1; P1 -6 -> {P2, P3} = 6
    o = solve_scenario(hand_instance(tmp_path / "h3", '[overrides.objective]\nkind = "roi"\nhorizon_years = 3\n'
                                     'discount_rate = 0.0\n', HAND_PROJECTS, HAND_COSTS))
    assert o.funded == {"P2", "P3"}
    assert o.objective == pytest.approx(6.0)
    assert o.audit.penalties["roi"] == pytest.approx(6.0)


def test_max_min_by_hand(tmp_path: Path) -> None:
    # need: A = 5 (P1), B = 13 (P2 + P3). Budget 10: {P1, P3}: shares A 1, B 4/13 -> min 0.308;
    # {P2, P3}: A 0 -> min 0. Max-min takes {P1, P3} although need-first takes {P2, P3}.
    o = solve_scenario(hand_instance(tmp_path, '[overrides.objective]\nkind = "max-min"\nhorizon_years = 1\n'
                                     'discount_rate = 0.0\n', HAND_PROJECTS, HAND_COSTS))
    assert o.funded == {"P1", "P3"}
    assert o.tiers[0]["criterion"] == "min-share"
    assert o.tiers[0]["optimum"] == pytest.approx(4 / 13)
    assert o.tiers[0]["achieved"] == pytest.approx(4 / 13)
    assert o.objective == pytest.approx(9.0)


def test_levelling_up_by_hand(tmp_path: Path) -> None:
    # category 0 first: P1 (5) must be funded; then category 1: P2 does not fit beside P1 -> 0;
    # then category 3: P3 fits beside P1 -> {P1, P3}
    o = solve_scenario(hand_instance(tmp_path, '[overrides.objective]\nkind = "lexicographic"\n'
                                     'tiers = ["category-0", "category-1", "category-3", "benefit"]\n'
                                     'horizon_years = 1\ndiscount_rate = 0.0\n', HAND_PROJECTS, HAND_COSTS))
    assert o.funded == {"P1", "P3"}
    assert o.status == SolutionStatus.OPTIMAL
    assert [t["criterion"] for t in o.tiers] == ["category-0", "category-1", "category-3"]
    assert [t["optimum"] for t in o.tiers] == pytest.approx([5.0, 0.0, 4.0])


def test_weighted_by_hand(tmp_path: Path) -> None:
    # scales: benefit 18 (all three), min-share 1. {P1, P3}: 9/18 + 1 × 4/13 = 0.808; {P2, P3}: 13/18 + 0 = 0.722
    o = solve_scenario(hand_instance(tmp_path, '[overrides.objective]\nkind = "weighted"\n'
                                     'weights = { "benefit" = 1.0, "min-share" = 1.0 }\n'
                                     'horizon_years = 1\ndiscount_rate = 0.0\n', HAND_PROJECTS, HAND_COSTS))
    assert o.funded == {"P1", "P3"}
    assert o.objective == pytest.approx(9 / 18 + 4 / 13)
    # without normalising the benefit points dominate: {P2, P3} = 13 + 0 against 9 + 0.31
    o = solve_scenario(hand_instance(tmp_path / "raw", '[overrides.objective]\nkind = "weighted"\nnormalise = false\n'
                                     'weights = { "benefit" = 1.0, "min-share" = 1.0 }\n'
                                     'horizon_years = 1\ndiscount_rate = 0.0\n', HAND_PROJECTS, HAND_COSTS))
    assert o.funded == {"P2", "P3"}
    assert o.objective == pytest.approx(13.0)


def test_greedy_rules_by_hand(tmp_path: Path) -> None:
    # value per £: P2 9/5 = 1.8, P3 1.0, P1 0.83 -> P2 (5), P3 (4, total 9), P1 does not fit
    o = solve_scenario(hand_instance(tmp_path, HORIZON1 + '[overrides.allocation]\nmethod = "greedy"\n',
                                     HAND_PROJECTS, HAND_COSTS))
    assert o.status == SolutionStatus.HEURISTIC
    assert o.termination == Termination.COMPLETED
    assert o.funded == {"P2", "P3"}
    assert o.bound is None
    assert o.audit.ok
    # by value (votes): P2 9, P1 5 -> 11 > 10, skipped; P3 4 -> {P2, P3}; with a threshold of 5: only P2 and P1 may
    # be funded -> P2, then P1 does not fit -> {P2}
    o = solve_scenario(hand_instance(tmp_path / "v", HORIZON1 + '[overrides.allocation]\nmethod = "greedy"\n'
                                     'order = "value"\nmin_benefit = 5\n', HAND_PROJECTS, HAND_COSTS))
    assert o.funded == {"P2"}
    # by ROI over 3 years: P3 +5/4 = 1.25, P2 +1/5 = 0.2, P1 -1 -> P3, P2 (9), P1 does not fit
    o = solve_scenario(hand_instance(tmp_path / "r", '[overrides.objective]\nhorizon_years = 3\ndiscount_rate = 0.0\n'
                                     '[overrides.allocation]\nmethod = "greedy"\norder = "roi"\n',
                                     HAND_PROJECTS, HAND_COSTS))
    assert o.funded == {"P2", "P3"}
    # a larger budget (12): value per £ takes P2, P3, then P1 (6) does not fit in the 3 left
    o = solve_scenario(hand_instance(tmp_path / "b", HORIZON1 + '[overrides.allocation]\nmethod = "greedy"\n',
                                     HAND_PROJECTS, HAND_COSTS, envelope="2026,12,0"))
    assert o.funded == {"P2", "P3"}


def test_capitation_by_hand(tmp_path: Path) -> None:
    # fair shares of 12: A 1/4 = 3, B 3/4 = 9. A cannot fund P1 (6 > 3); B funds by need (flat weights, then
    # value per £): P2 (5) then P3 (4) = 9 -> {P2, P3}, £3m unspent. With budget 24: A 6 -> P1; B 18 -> P2, P3.
    o = solve_scenario(hand_instance(tmp_path, HORIZON1 + '[overrides.allocation]\nmethod = "capitation"\n'
                                     'order = "need"\n', HAND_PROJECTS, HAND_COSTS, envelope="2026,12,0"))
    assert o.status == SolutionStatus.HEURISTIC
    assert o.funded == {"P2", "P3"}
    o = solve_scenario(hand_instance(tmp_path / "24", HORIZON1 + '[overrides.allocation]\nmethod = "capitation"\n',
                                     HAND_PROJECTS, HAND_COSTS, envelope="2026,24,0"))
    assert o.funded == {"P1", "P2", "P3"}
    # budget 20: A 5 (< 6: P1 never fits, though £11m stays unspent in the envelope)
    o = solve_scenario(hand_instance(tmp_path / "20", HORIZON1 + '[overrides.allocation]\nmethod = "capitation"\n',
                                     HAND_PROJECTS, HAND_COSTS, envelope="2026,20,0"))
    assert o.funded == {"P2", "P3"}


def test_capitation_keeps_commitments_beyond_the_share(tmp_path: Path) -> None:
    # P1 committed at A (cost 6 > A's share 3): kept; A gets nothing more, B still funds within its 9
    committed = HAND_PROJECTS.replace("P1,A1,,p1,k,,5,2026,2026,0,0,0,0,false,,0,",
                                      "P1,A1,,p1,k,,5,2026,2026,0,0,0,0,false,2026,0,")
    o = solve_scenario(hand_instance(tmp_path, HORIZON1 + '[overrides.allocation]\nmethod = "capitation"\n',
                                     committed, HAND_COSTS, envelope="2026,12,0"))
    assert o.status == SolutionStatus.HEURISTIC
    assert "P1" in o.funded
    assert o.audit.ok
    assert o.funded == {"P1", "P2"}       # B: P2 (5); P3 (4) would breach the national 12 (6 + 5 + 4)


def test_every_shipped_model_loads_and_solves_tiny() -> None:
    base = load_scenario(TINY)
    assert len(list_models()) >= 8
    for name in list_models():
        policy, path = load_policy(name, builtin_models_dir())
        assert policy.description, name
        o = solve_scenario(dataclasses.replace(base, policy=policy, model_path=str(path)))
        assert o.has_plan, (name, o.status, o.message)
        assert o.audit.ok, (name, o.audit.violations)
        assert o.status == (SolutionStatus.HEURISTIC if policy.allocation.method != "optimise"
                            else SolutionStatus.OPTIMAL), name


# ------------------------------------------------------------------------------------------ properties


def _with(case: Case, overrides: dict[str, Any]) -> Scenario:
    return case.scenario.with_overrides(overrides).with_solver(mip_gap=0.0)


@pytest.mark.slow
@settings(**SETTINGS, max_examples=25)
@given(case=cases(max_projects=5, brute_forceable=True))
def test_objective_kinds_match_enumeration(case: Case) -> None:
    note(case.describe())
    assume(math.prod(len(c) for c in project_choices(case.scenario).values()) <= MAX_PLANS)
    for overrides in ({"objective": {"kind": "roi"}},
                      {"objective": {"kind": "weighted", "weights": {"benefit": 1.0, "roi": 0.5, "min-share": 0.3}}}):
        sc = _with(case, overrides)
        valid = plans(sc)
        try:
            o = solve_scenario(sc)
        except InfeasibleError:
            assert not valid
            continue
        if not valid:
            assert not o.has_plan
            continue
        assert o.has_plan, o.message
        best = max(obj for _, _, obj in valid)
        assert o.objective == pytest.approx(best, rel=1e-6, abs=1e-6), overrides


@pytest.mark.slow
@settings(**SETTINGS, max_examples=25)
@given(case=cases(max_projects=5, brute_forceable=True))
def test_lexicographic_tiers_hold_against_enumeration(case: Case) -> None:
    """Each tier of max-min and levelling-up at its enumerated optimum (tolerance 0), and the last tier the
    best among the plans that keep them."""
    note(case.describe())
    assume(math.prod(len(c) for c in project_choices(case.scenario).values()) <= MAX_PLANS)
    for overrides in ({"objective": {"kind": "max-min", "tolerance": 0.0}}, LEVELLING,
                      {"objective": {"kind": "max-min", "tolerance": 0.2}}):
        sc = _with(case, overrides)
        valid = plans(sc)
        o = solve_scenario(sc)
        if not valid:
            assert not o.has_plan
            continue
        assert o.has_plan, o.message
        assert o.audit.ok
        kept = valid
        for tier in o.tiers:
            name = str(tier["criterion"])
            optimum = max(terms[name] for _, terms, _ in kept)
            tol = float(tier["tolerance"])
            assert o.audit.penalties[name] >= optimum - tol * abs(optimum) - 1e-6 * max(1.0, abs(optimum)), name
            kept = [k for k in kept if k[1][name] >= optimum - 1e-6 * max(1.0, abs(optimum))]
        # the plans at every tier's optimum keep every floor, so the last tier is at least their best
        best = max(obj for _, _, obj in kept)
        if all(float(t["tolerance"]) == 0 for t in o.tiers):
            assert o.objective == pytest.approx(best, rel=1e-6, abs=1e-6)
        else:
            assert o.objective >= best - 1e-6 * max(1.0, abs(best))


@pytest.mark.slow
@settings(**SETTINGS, max_examples=30)
@given(case=cases(max_projects=6))
def test_baselines_are_audited_and_never_beat_need_first(case: Case) -> None:
    """Every rule-based plan passes the audit, and its value under need-first's objective is at most the
    need-first optimum (the optimum is an upper bound on every plan that keeps the rules)."""
    note(case.describe())
    sc = case.scenario.with_solver(mip_gap=0.0)
    try:
        ref = solve_scenario(sc)
    except InfeasibleError:
        return
    for method, order in (("greedy", "value-per-cost"), ("greedy", "roi"), ("greedy", "value"),
                          ("capitation", "need")):
        o = solve_scenario(sc.with_overrides({"allocation": {"method": method, "order": order}}))
        if not o.has_plan:
            assert o.status == SolutionStatus.NO_SOLUTION
            assert o.message
            continue
        assert o.status == SolutionStatus.HEURISTIC
        assert o.audit.ok
        if ref.has_plan:
            assert ref.status == SolutionStatus.OPTIMAL
            value = audit(sc, o.decisions)
            assert value.ok
            assert value.objective <= ref.objective + 1e-6 * max(1.0, abs(ref.objective)), (method, order)
            assert sum(account(sc, o.decisions).value.values()) >= 0


def test_metrics_by_hand(tmp_path: Path) -> None:
    from solver.analyses.metrics import metrics

    o = solve_scenario(hand_instance(tmp_path, HORIZON1, HAND_PROJECTS, HAND_COSTS))
    assert o.funded == {"P2", "P3"}
    m = metrics(o, o)
    # per weighted head: A 0/1, B 9/3 = 3; mean 9/4; Gini = 2 (1/4)(3/4) 3 / (2 · 9/4) = 0.25;
    # Theil = 3/4 · (4/3) ln(4/3)
    assert m["gini"] == pytest.approx(0.25)
    assert m["theil"] == pytest.approx(math.log(4 / 3))
    assert m["pct_of_need_first"] == pytest.approx(100.0)
    assert m["benefit_given_up"] == pytest.approx(0.0)
    assert m["cat01_share"] == pytest.approx(5 / 9)          # P2 at B1 (category 1)
    # fair shares of £10m: A 2.5 (gets 0), B 7.5 (gets 9)
    assert (m["systems_below_50pct"], m["systems_below_90pct"], m["systems_with_nothing"]) == (1, 1, 1)
    assert m["cat01_trusts_with_nothing"] == 1                # A1 (category 0)
    assert m["unspent_capital_2026"] == pytest.approx(1.0)
    assert m["unspent_total"] == pytest.approx(1.0)
    # the greedy-by-value plan with a 5-vote threshold ({P2}) priced against need-first ({P2, P3})
    g = solve_scenario(hand_instance(tmp_path / "g", HORIZON1 + '[overrides.allocation]\nmethod = "greedy"\n'
                                     'order = "value"\nmin_benefit = 5\n', HAND_PROJECTS, HAND_COSTS))
    m = metrics(g, o)
    assert m["benefit_given_up"] == pytest.approx(4.0)
    assert m["pct_of_need_first"] == pytest.approx(100 * 9 / 13)
    assert m["cat01_money_change"] == pytest.approx(0.0)


def test_rule_on_an_infeasible_scenario_is_infeasible_with_its_cause(tmp_path: Path) -> None:
    from solver.api import solve

    # P1 mandatory (6) against a national envelope of 5: no policy has a plan; the rule says why (exit 3)
    mandatory = HAND_PROJECTS.replace("P1,A1,,p1,k,,5,2026,2026,0,0,0,0,false,,0,",
                                      "P1,A1,,p1,k,,5,2026,2026,0,0,0,0,true,,0,")
    sc = hand_instance(tmp_path, HORIZON1 + '[overrides.allocation]\nmethod = "capitation"\n', mandatory,
                       HAND_COSTS, envelope="2026,5,0")
    o = solve_scenario(sc)
    assert o.status == SolutionStatus.INFEASIBLE
    assert o.termination == Termination.COMPLETED
    with pytest.raises(InfeasibleError, match="no plan satisfies every rule"):
        solve(sc)


def test_rules_keep_a_hard_fair_share_floor(tmp_path: Path) -> None:
    # A's floor: 0.3 × its fair share 2.5 of £10m: only P1 (6) serves A, so every rule funds P1 first, then
    # what fits beside it: P3 (4); need-first (no floor) would take P2 + P3
    floor = '[overrides.fair_share]\nmode = "floor"\nfloor = 0.3\nenforcement = "hard"\n'
    for rule in ('method = "greedy"\n', 'method = "greedy"\norder = "roi"\n', 'method = "capitation"\n'):
        o = solve_scenario(hand_instance(tmp_path / str(len(rule)), HORIZON1 + floor + '[overrides.allocation]\n'
                                         + rule, HAND_PROJECTS, HAND_COSTS))
        assert o.status == SolutionStatus.HEURISTIC, (rule, o.message)
        assert o.funded == {"P1", "P3"}, rule


def test_equal_shares_needs_ballots() -> None:
    from solver.errors import InputError

    sc = load_scenario(TINY).with_overrides({"allocation": {"method": "equal-shares"}})
    with pytest.raises(InputError, match="needs ballots"):
        solve_scenario(sc)


def test_compare_cli_on_tiny(tmp_path: Path) -> None:
    import pandas as pd
    from click.testing import CliRunner

    from solver.cli import main

    bad = tmp_path / "pb.toml"
    bad.write_text('name = "pb-rule"\ndescription = "equal shares"\n[allocation]\nmethod = "equal-shares"\n')
    models = builtin_models_dir()
    r = CliRunner().invoke(main, ["compare", str(TINY), "--models", str(models / "max-min.toml"),
                                  str(models / "greedy-need.toml"), str(bad), "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert "Scenario baseline: 4 policies" in r.output
    assert "pb-rule: no plan — InputError" in r.output
    t = pd.read_csv(tmp_path / "out" / "metrics.csv")
    assert list(t["policy"]) == ["need-first", "max-min", "greedy-need", "pb-rule"]
    assert t.loc[0, "pct_of_need_first"] == pytest.approx(100.0)
    assert list(t["status"]) == ["optimal", "optimal", "heuristic", "error"]
    assert (t["pct_of_need_first"][:3] <= 100.0 + 1e-9).all()
    plans = pd.read_csv(tmp_path / "out" / "plans.csv")
    assert set(plans["policy"]) == {"need-first", "max-min", "greedy-need"}


@pytest.mark.slow
@settings(**SETTINGS, max_examples=8)
@given(systems=st.integers(1, 3), orgs=st.integers(1, 3), projects=st.integers(1, 3),
       years=st.integers(1, 3), tightness=st.sampled_from([0.1, 0.3, 0.6]), seed=st.integers(0, 2**31))
def test_every_shipped_policy_on_generated_instances(tmp_path_factory: pytest.TempPathFactory, systems: int,
                                                      orgs: int, projects: int, years: int, tightness: float,
                                                      seed: int) -> None:
    """On ``envelope generate`` instances: every shipped policy's plan passes the audit, and none has a larger
    need-first value than the need-first optimum (solved to gap 0)."""
    from solver.data.generate import GeneratorSettings, generate

    folder = tmp_path_factory.mktemp("gen")
    for name, text in generate(GeneratorSettings(systems, orgs, projects, years, tightness, seed)).files().items():
        (folder / name).write_text(text, encoding="utf-8")
    base = load_scenario(folder / "scenario.toml").with_solver(mip_gap=0.0)
    ref = solve_scenario(base)
    assert ref.status == SolutionStatus.OPTIMAL
    for name in list_models():
        policy, path = load_policy(name, builtin_models_dir())
        o = solve_scenario(dataclasses.replace(base, policy=policy, model_path=str(path)))
        assert o.has_plan, (name, o.message)
        assert o.audit.ok, (name, o.audit.violations)
        value = sum(account(base, o.decisions).value.values())
        assert value <= ref.objective + 1e-6 * max(1.0, abs(ref.objective)), name


def test_an_objective_override_keeps_the_models_kind() -> None:
    base = load_scenario(TINY)
    policy, path = load_policy("max-min", builtin_models_dir())
    sc = dataclasses.replace(base, policy=policy).with_overrides({"objective": {"horizon_years": 5}})
    assert sc.policy.objective.kind == "max-min"
    assert sc.policy.objective.horizon_years == 5
    lex, _ = load_policy("levelling-up", builtin_models_dir())
    assert dataclasses.replace(base, policy=lex).with_overrides(
        {"objective": {"tolerance": 0.05}}).policy.objective.tolerance == 0.05
    # naming another kind replaces the table
    assert base.with_overrides({"objective": {"kind": "roi"}}).policy.objective.kind == "roi"


@pytest.mark.parametrize("analysis", ["robust", "alternatives", "thresholds"])
def test_analyses_that_need_the_mip_refuse_rule_based_policies(tmp_path: Path, analysis: str) -> None:
    from click.testing import CliRunner

    from solver.cli import main

    sc = tmp_path / "cap.toml"
    sc.write_text(f'instance = "{TINY.parent}"\nmodel = "capitation"\n')
    r = CliRunner().invoke(main, [analysis, str(sc), "-o", str(tmp_path / "out")])
    assert r.exit_code == 2, r.output
    assert "needs an optimising policy" in r.output
    assert not (tmp_path / "out").exists()


def test_compare_takes_a_copy_of_a_built_in_model_as_that_model(tmp_path: Path) -> None:
    """As after `pip install .`: the built-ins live in the package, models/*.toml in the checkout are copies."""
    import shutil

    from click.testing import CliRunner

    from solver.cli import main

    copies = tmp_path / "models"
    copies.mkdir()
    for name in ("need-first", "max-min"):
        shutil.copy(builtin_models_dir() / f"{name}.toml", copies / f"{name}.toml")
    r = CliRunner().invoke(main, ["compare", str(TINY), "--models", str(copies / "need-first.toml"),
                                  str(copies / "max-min.toml"), "--models", "max-min", "-o", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "Scenario baseline: 2 policies" in r.output
    edited = copies / "need-first.toml"
    edited.write_text(edited.read_text().replace('payer = "system"            # run costs', 'payer = "centre"  # run'))
    r = CliRunner().invoke(main, ["compare", str(TINY), "--models", str(edited), "-o", str(tmp_path / "o2")])
    assert r.exit_code == 2
    assert "a different model" in r.output
