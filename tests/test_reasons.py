"""Why unfunded: every reason code on the tiny instance, checked by hand, and the claims each code makes
checked against the audit and the solver on small random instances and on England's cut plan.

Tiny (instances/tiny): system A (local_capital 1.2, revenue_headroom 0.8, weighted population 120k) runs Epic
(A2); B (0.6, 0.15, 80k) runs Cerner. Envelope capital 7 / 4 / 3, revenue 0.5 / 0.6 / 0.5 (2025-2027), 15.6
in all. EPR-A1-EPIC: capital 4 then 3, revenue 0.5, match 0.2, run 0.3 from two years after its start,
window 2025-2026, so its national draw is 0.8 x 4 = 3.2 and 0.8 x 3 = 2.4 of capital, 0.4 of revenue, 6.0 in
all. The need-first model: access fee 3.5% paid by the system, run costs paid by the system.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from solver.api import solve
from solver.backends.result import SolutionStatus
from solver.data.scenario import Scenario, load_scenario
from solver.data.variants import (
    CutEnvelope,
    ForceIn,
    ForceOut,
    Operation,
    Override,
    ScaleEnvelope,
    SetSystems,
    ShiftEnvelope,
    apply,
)
from solver.pipeline.accounts import view
from solver.pipeline.audit import audit
from solver.pipeline.core import solve_scenario
from solver.pipeline.decisions import Decisions
from solver.pipeline.outcome import Outcome
from solver.pipeline.reasons import CODES, REASON_COLUMNS, settle, unfunded_reasons
from tests.strategies import Case, cases

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "instances" / "tiny" / "baseline.toml"
ENGLAND_CUT = ROOT / "instances" / "england" / "cut-350m.toml"
#: Discounted years live over the 10-year horizon at 3.5% for a project live from 2025 (the first year).
LIVE_FROM_2025 = sum(1.035 ** -k for k in range(10))


@pytest.fixture(scope="module")
def tiny() -> Scenario:
    return load_scenario(TINY)


def reasons_of(sc: Scenario, ops: list[Operation] | None = None, thresholds: pd.DataFrame | None = None
               ) -> tuple[Outcome, dict[str, dict]]:
    """The optimal plan of the scenario with ``ops`` applied, and its reasons by project."""
    out = solve(apply(sc, ops or []))
    frame = unfunded_reasons(out, thresholds)
    assert list(frame.columns) == REASON_COLUMNS
    assert set(frame["project_id"]) == set(sc.instance.projects["project_id"]) - set(out.decisions.starts)
    assert frame["project_id"].is_unique
    return out, {r["project_id"]: r for r in frame.to_dict("records")}


# --------------------------------------------------------------------------- each code, by hand


def test_baseline_platform_and_alternative(tiny: Scenario) -> None:
    out, r = reasons_of(tiny)
    assert set(r) == {"EPR-A1-META", "EPR-B1-EPIC", "CYB-B2"}
    # A runs Epic (A2): a Meditech EPR would be a second platform; B runs Cerner: an Epic EPR likewise.
    assert r["EPR-A1-META"]["code"] == "platform"
    assert r["EPR-A1-META"]["limit"] == "absolute"
    assert r["EPR-A1-META"]["blocker"] == "Epic"
    assert "no plan can fund it" in r["EPR-A1-META"]["reason"]
    assert r["EPR-B1-EPIC"]["code"] == "platform"
    assert r["EPR-B1-EPIC"]["blocker"] == "Cerner"
    # CYB-B2 and CYB-B2-LITE are alternatives; the plan funds the lite option.
    assert out.decisions.starts["CYB-B2-LITE"] == 2026
    assert r["CYB-B2"]["code"] == "alternative"
    assert r["CYB-B2"]["blocker"] == "CYB-B2-LITE"
    assert "CYB-B2-LITE (starting 2026/27)" in r["CYB-B2"]["reason"]
    assert pd.isna(r["CYB-B2"]["start"])            # start-independent


def test_excluded(tiny: Scenario) -> None:
    _, r = reasons_of(tiny, [ForceOut(frozenset({"OPT-B1"}))])
    assert r["OPT-B1"]["code"] == "excluded"
    assert "excludes it" in r["OPT-B1"]["reason"]


def test_no_start_for_an_instance_built_without_validation(tiny: Scenario) -> None:
    # Validation refuses a project no start of which fits, so the tables are edited directly: EPR-A1-EPIC may
    # only start 2027, and its 2-year profile would run to 2028, past the last envelope year.
    pr = tiny.instance.projects.copy()
    pr.loc[pr["project_id"] == "EPR-A1-EPIC", ["earliest_start", "latest_start"]] = 2027
    sc = dataclasses.replace(tiny, instance=dataclasses.replace(tiny.instance, projects=pr))
    _, r = reasons_of(sc)
    assert r["EPR-A1-EPIC"]["code"] == "no_start"
    assert "2-year cost profile end by 2027/28" in r["EPR-A1-EPIC"]["reason"]


def test_local_capital(tiny: Scenario) -> None:
    # local_capital 0.5 everywhere: EPR-A1-EPIC's own match is 0.2 x 4 = 0.8 in its first year, at either start.
    _, r = reasons_of(tiny, [SetSystems("local_capital", 0.5)])
    row = r["EPR-A1-EPIC"]
    assert row["code"] == "local_capital"
    assert row["needed"] == pytest.approx(0.8)
    assert row["available"] == pytest.approx(0.5)
    assert row["short"] == pytest.approx(0.3)
    assert "£0.800m" in row["reason"]
    assert "£0.500m" in row["reason"]
    assert "short by £0.300m" in row["reason"]
    assert "each fails the same way" in row["reason"]


def test_local_revenue(tiny: Scenario) -> None:
    # revenue_headroom 0.2 everywhere. Started 2026, EPR-A1-EPIC costs system A in 2026 its revenue match
    # 0.2 x 0.5 = 0.1 plus the fee 3.5% x (3.2 + 0.4) = 0.126: 0.226, short by 0.026 (goes live 2028, so no run
    # cost in the envelope). Started 2025 it is worse: its run cost 0.3 from 2027 alone is short by 0.1.
    _, r = reasons_of(tiny, [SetSystems("revenue_headroom", 0.2)])
    row = r["EPR-A1-EPIC"]
    assert row["code"] == "local_revenue"
    assert (row["start"], row["year"], row["limit"]) == (2026, 2026, "revenue_headroom")
    assert row["needed"] == pytest.approx(0.226)
    assert row["short"] == pytest.approx(0.026)
    assert "local revenue match £0.100m" in row["reason"]
    assert "access fee £0.126m" in row["reason"]


def test_envelope(tiny: Scenario) -> None:
    # capital halved: 3.5 / 2.0 / 1.5. Started 2025, EPR-A1-EPIC needs 3.2 of 3.5 in 2025 but 2.4 of 2.0 in
    # 2026 (short by 0.4); started 2026 it needs 3.2 of 2.0 (short by 1.2). No plan can fund it.
    sc = apply(tiny, [ScaleEnvelope(0.5, pot="capital")])
    _, r = reasons_of(sc)
    row = r["EPR-A1-EPIC"]
    assert row["code"] == "envelope"
    assert (row["start"], row["year"], row["limit"]) == (2025, 2026, "capital")
    assert row["needed"] == pytest.approx(2.4)
    assert row["available"] == pytest.approx(2.0)
    assert "(£4.000m before the scenario's changes)" in row["reason"]
    assert solve_scenario(apply(sc, [ForceIn("EPR-A1-EPIC")])).status == SolutionStatus.INFEASIBLE


def test_fair_share(tiny: Scenario) -> None:
    # Hard fair-share cap of 1 x share, envelope capital 3.5 / 2.5 / 0: the envelope is 7.6 in all and A's
    # share 0.6 x 7.6 = 4.56, below EPR-A1-EPIC's own 6.0 (which fits the pots when started 2025).
    ops: list[Operation] = [
        Override.of({"fair_share": {"mode": "cap", "cap": 1.0, "enforcement": "hard", "basis": "envelope"}}),
        ShiftEnvelope(2025, "capital", -3.5), ShiftEnvelope(2026, "capital", -1.5), ShiftEnvelope(2027, "capital", -3),
    ]
    _, r = reasons_of(tiny, ops)
    row = r["EPR-A1-EPIC"]
    assert row["code"] == "fair_share"
    assert row["needed"] == pytest.approx(6.0)
    assert row["available"] == pytest.approx(4.56)
    assert "2026/27, its own draw exceeds the 2026/27 capital envelope" in row["reason"]   # 3.2 > 2.5


def test_fair_share_room(tiny: Scenario) -> None:
    # Hard cap of 1 x share on the full envelope: A's share is 0.6 x 15.6 = 9.36. The plan funds EPR-A1-EPIC
    # (6.0), COM-A2 (1.2 + 0.1 + 0.8 = 2.1) and OPT-A2 (1.0) in A: 9.1; SCR-A (1.0 + 0.3) would take it to 10.4.
    out, r = reasons_of(tiny, [Override.of({"fair_share": {"mode": "cap", "cap": 1.0, "enforcement": "hard"}})])
    assert {"EPR-A1-EPIC", "COM-A2", "OPT-A2"} <= set(out.decisions.starts)
    row = r["SCR-A"]
    assert row["code"] == "fair_share_room"
    assert row["needed"] == pytest.approx(1.3)
    assert row["available"] == pytest.approx(9.36 - 9.1)
    assert "would reach £10.400m (start 2027/28), above its hard fair-share cap of £9.360m" in row["reason"]


def test_platform_beside_the_plan(tiny: Scenario) -> None:
    # Standardisation 'single' (one platform per system, whichever): the plan funds OPT-B1 (Cerner) in B, so
    # EPR-B1-EPIC (Epic) cannot be added. Headroom 0.35 lets EPR-B1-EPIC's run cost 0.2 fit on its own.
    ops: list[Operation] = [Override.of({"standardisation": {"mode": "single"}}), SetSystems("revenue_headroom", 0.35)]
    out, r = reasons_of(tiny, ops)
    assert "OPT-B1" in out.decisions.starts
    row = r["EPR-B1-EPIC"]
    assert row["code"] == "platform"
    assert (row["limit"], row["blocker"]) == ("relative", "Cerner")
    assert "OPT-B1" in row["reason"]


def test_dependency(tiny: Scenario) -> None:
    # SCR-A requires a project of group EPR-A1 a year earlier; EPIC is forced out and META is a new platform.
    _, r = reasons_of(tiny, [ForceOut(frozenset({"EPR-A1-EPIC"}))])
    row = r["SCR-A"]
    assert row["code"] == "dependency"
    assert row["blocker"] == "EPR-A1"
    assert row["start"] == 2027                    # the latest start asks least of the requirement
    assert "by 2026/27 (lag 1 year)" in row["reason"]
    assert "no member of group EPR-A1 is funded" in row["reason"]


def test_local_room(tiny: Scenario) -> None:
    # revenue_headroom 0.35: in 2027 system A pays EPR-A1-EPIC's run cost 0.3 (live from 2027) and SCR-A's fee
    # 3.5% x 1.3 = 0.0455, 0.3455 of 0.35. OPT-A2's fee in its start year, 3.5% x 1.0 = 0.035, does not fit
    # beside them (0.3805, short by 0.0305), and it fits on its own; started earlier, its run cost 0.05 in 2027
    # does not fit either.
    out, r = reasons_of(tiny, [SetSystems("revenue_headroom", 0.35)])
    assert out.decisions.starts["EPR-A1-EPIC"] == 2025
    assert out.decisions.starts["SCR-A"] == 2027
    row = r["OPT-A2"]
    assert row["code"] == "local_room"
    assert (row["start"], row["year"], row["limit"]) == (2027, 2027, "revenue_headroom")
    assert row["needed"] == pytest.approx(0.035)
    assert row["available"] == pytest.approx(0.35 - 0.3455)
    assert row["short"] == pytest.approx(0.0305)
    assert "use £0.345m of its 2027/28 revenue_headroom of £0.350m" in row["reason"]
    assert "the national pots would have room for it" in row["reason"]


THRESHOLDS = pd.DataFrame([
    {"group": "unfunded", "project_id": "EPR-A1-EPIC", "measure": "benefit", "direction": "increase",
     "result": "none within bracket", "factor": math.nan, "at_threshold": math.nan, "change": math.nan,
     "bracket_low": 1.0, "bracket_high": 16.0},
    {"group": "unfunded", "project_id": "EPR-A1-EPIC", "measure": "cost", "direction": "decrease",
     "result": "threshold", "factor": 0.666216, "at_threshold": 4.997, "change": -2.503,
     "bracket_low": 0.0, "bracket_high": 1.0},
])
"""The thresholds analysis's rows for EPR-A1-EPIC on tiny with 60% of the capital (as it computes them)."""


def test_outcompeted_with_thresholds(tiny: Scenario) -> None:
    # Capital 60%: 4.2 / 2.4 / 1.8. The plan spends all 4.2 of 2025 capital (COM-A2 1.2, OPT-A2 1.0, OPT-B1 1.5,
    # CYB-B2 0.5); EPR-A1-EPIC started 2025 needs 3.2 of it. Started 2026 it needs 3.2 of 2.4 on its own.
    out, r = reasons_of(tiny, [ScaleEnvelope(0.6, pot="capital")], THRESHOLDS)
    assert out.accounts.pot_spend[("capital", 2025)] == pytest.approx(4.2)
    row = r["EPR-A1-EPIC"]
    assert row["code"] == "outcompeted"
    assert (row["start"], row["year"], row["limit"]) == (2025, 2025, "capital")
    assert row["needed"] == pytest.approx(3.2)
    assert row["available"] == pytest.approx(0.0, abs=1e-9)
    assert "2026/27, its own draw exceeds the 2026/27 capital envelope" in row["reason"]
    assert "a total cost of £4.997m (−£2.503m, ×0.666) would bring it in" in row["reason"]
    assert "no benefit increase up to ×16" in row["reason"]


@pytest.mark.slow
def test_thresholds_table_from_the_analysis(tiny: Scenario) -> None:
    from solver.analyses.borderline import thresholds

    sc = apply(tiny, [ScaleEnvelope(0.6, pot="capital")])
    table = thresholds(sc, k=1).tables["thresholds"]
    _, r = reasons_of(sc, thresholds=table)
    assert "would bring it in" in r["EPR-A1-EPIC"]["reason"]


def test_no_gain(tiny: Scenario) -> None:
    # Spend weight 100 points per £m: only what must be funded is. CYB-B2-LITE (category 3 x need index 0.8,
    # benefit 0.8, live at once) is worth 0.64 x 8.608 = 5.509 started 2025 and costs 100 x 0.2 = 20 points.
    out, r = reasons_of(tiny, [Override.of({"objective": {"spend_weight": 100.0}})])
    assert set(out.decisions.starts) == {"COM-A2", "FAX-B2"}
    row = r["CYB-B2-LITE"]
    assert row["code"] == "no_gain"
    assert row["start"] == 2025
    assert row["objective_change"] == pytest.approx(0.64 * LIVE_FROM_2025 - 20.0)
    assert "spend +20 (subtracted)" in row["reason"]


def test_start_window_of_a_withdrawn_commitment(tiny: Scenario) -> None:
    # Withdrawable commitments (cost charged to capital) and 2025 revenue cut to 0.05: COM-A2, committed to
    # 2025, needs 0.1 of 2025 revenue on its own, so it is withdrawn (cost 0.4). Started 2026 instead it would
    # fit on its own.
    ops: list[Operation] = [Override.of({"commitments": {"mode": "withdrawable", "withdrawal_pot": "capital"}}),
                            CutEnvelope(0.45, year=2025, pot="revenue")]
    out, r = reasons_of(tiny, ops)
    assert out.decisions.withdrawn == ["COM-A2"]
    row = r["COM-A2"]
    assert row["code"] == "start_window"
    assert bool(row["withdrawn"])
    assert row["reason"].startswith("Its signed commitment (start 2025/26) was withdrawn at a cost of £0.400m.")
    assert row["needed"] == pytest.approx(0.1)
    assert row["available"] == pytest.approx(0.05)
    assert row["blocker"] == "start 2026"
    # the claim: with its start free to be 2026, some plan funds it
    pr = tiny.instance.projects.copy()
    sel = pr["project_id"] == "COM-A2"
    pr.loc[sel, "latest_start"] = 2026
    pr.loc[sel, "committed_start"] = np.nan
    freed = dataclasses.replace(tiny, instance=dataclasses.replace(tiny.instance, projects=pr))
    forced = solve(apply(freed, [*ops, ForceIn("COM-A2")]))
    assert forced.decisions.starts["COM-A2"] == 2026


# --------------------------------------------------------------------------- the national pots, exactly


def _lp_fits(spend: dict, env: dict, years: list[int], alpha: float, theta: float) -> bool:
    """The budget rows of the model as an LP (transfers f_t, carry c^K_t, c^R_t; none from the last year)."""
    n = len(years)
    nc = n - 1 if theta > 0 else 0
    # columns: f_0..f_{n-1}, cK_0..cK_{nc-1}, cR_0..cR_{nc-1}
    cols = n + 2 * nc
    a_ub, b_ub = [], []

    def row() -> list[float]:
        return [0.0] * cols

    for t, y in enumerate(years):
        bk, br = env[("capital", y)], env[("revenue", y)]
        sk, sr = spend.get(("capital", y), 0.0), spend.get(("revenue", y), 0.0)
        for _pot, sign, b, s, off in (("capital", 1.0, bk, sk, n), ("revenue", -1.0, br, sr, n + nc)):
            r = row()                                   # spend ± f + c_t − c_{t−1} ≤ B
            r[t] = sign
            if t < nc:
                r[off + t] += 1.0
            if 0 < t <= nc:
                r[off + t - 1] -= 1.0
            a_ub.append(r)
            b_ub.append(b - s)
            if t < nc:                                  # c_t ≤ θ (B + c_{t−1} − spend ∓ f)
                r = row()
                r[off + t] = 1.0
                r[t] = theta * sign
                if t > 0:
                    r[off + t - 1] = -theta
                a_ub.append(r)
                b_ub.append(theta * (b - s))
    bounds = [(0.0, alpha * env[("capital", y)]) for y in years] + [(0.0, None)] * (2 * nc)
    res = linprog(np.zeros(cols), A_ub=np.array(a_ub), b_ub=np.array(b_ub), bounds=bounds, method="highs")
    return res.status == 0


def _audit_accepts(spend: dict, env: dict, years: list[int], alpha: float, theta: float, flex: dict, carry: dict
                   ) -> bool:
    """The budgets family's audit check, written out for a witness (to the audit's £1 tolerance)."""
    tol = 2e-6
    for i, y in enumerate(years):
        f = flex.get(y, 0.0)
        if f < -tol or f > alpha * env[("capital", y)] + tol:
            return False
        for pot, sign in (("capital", 1.0), ("revenue", -1.0)):
            c_in = carry.get((pot, years[i - 1]), 0.0) if i else 0.0
            c_out = carry.get((pot, y), 0.0)
            s = spend.get((pot, y), 0.0) + sign * f
            avail = env[(pot, y)] + c_in
            if c_out and (theta == 0 or i == len(years) - 1):
                return False
            if s + c_out > avail + tol or c_out < -tol or c_out > theta * max(avail - s, 0.0) + tol:
                return False
    return True


MONEY = st.integers(0, 6000).map(lambda k: k / 1000)


@settings(deadline=None, derandomize=True, database=None, max_examples=300)
@given(n=st.integers(1, 4), data=st.data(), alpha=st.sampled_from([0.0, 0.2, 0.5, 1.0]),
       theta=st.sampled_from([0.0, 0.3, 0.5, 1.0]))
def test_settle_is_exact(n: int, data: st.DataObject, alpha: float, theta: float) -> None:
    years = list(range(2025, 2025 + n))
    env = {(pot, y): data.draw(MONEY) for pot in ("capital", "revenue") for y in years}
    spend = {(pot, y): data.draw(MONEY) for pot in ("capital", "revenue") for y in years}
    st_ = settle(spend, env, years, alpha, theta)
    lp = _lp_fits(spend, env, years, alpha, theta)
    note(f"settle {st_}, LP {lp}")
    assert st_.ok == lp
    if st_.ok:
        assert _audit_accepts(spend, env, years, alpha, theta, st_.flex, st_.carry)
    else:
        assert st_.needed > st_.available


# --------------------------------------------------------------------------- the claims, on random instances

ALONE = {"local_capital": "local match capital", "local_revenue": "local revenue", "envelope": "spends",
         "fair_share": "above the fair-share cap"}
BESIDE = {"alternative": "alternatives funded", "dependency": "requires", "local_room": "exceeds",
          "fair_share_room": "fair-share", "outcompeted": "spends"}


def _starts(sc: Scenario, p: str) -> list[int]:
    proj = view(sc).projects[p]
    if proj.committed is not None and sc.policy.commitments.mode != "ignore":
        cand = [proj.committed]
    else:
        cand = list(range(proj.earliest, proj.latest + 1))
    return [s for s in cand if s + max(proj.profile) <= sc.instance.years[-1]]


def check_claims(case: Case, with_solves: bool) -> None:
    """Every unfunded project has one code, and what the code claims holds: no plan at all funds it (codes
    checked on the project alone: ``ForceIn`` is infeasible, and funding only it breaks the named rule at every
    allowed start); it cannot be added to this plan at any allowed start (rules beside the plan); or it can,
    and the objective change is what the best plan with it allows (``no_gain``)."""
    note(case.describe())
    sc = case.scenario
    base = solve_scenario(sc)
    if not base.has_plan:
        return
    frame = unfunded_reasons(base)
    assert set(frame["project_id"]) == set(sc.instance.projects["project_id"]) - set(base.decisions.starts)
    assert frame["project_id"].is_unique
    assert frame["code"].isin(CODES).all()
    assert (frame["reason"].str.len() > 20).all()
    assert not frame["reason"].str.contains("breaks a rule in the audit").any()    # the checks missed nothing
    v = view(sc)
    dec = base.decisions
    for row in frame.to_dict("records"):
        p, code = row["project_id"], row["code"]
        note(f"{p}: {code}: {row['reason']}")
        starts = _starts(sc, p)
        absolute = code in ALONE or (code == "platform" and row["limit"] == "absolute")
        if absolute:
            for s in starts:
                rep = audit(sc, Decisions(starts={p: s}), v=v)
                assert not rep.ok
                if code in ALONE:
                    assert any(ALONE[code] in m for m in rep.violations), rep.violations
            if with_solves:
                assert solve_scenario(apply(sc, [ForceIn(p)])).status == SolutionStatus.INFEASIBLE
        withdrawn = [w for w in dec.withdrawn if w != p]
        if code == "no_gain":
            assert not math.isnan(row["objective_change"])
            assert row["objective_change"] <= 1e-6 * max(1.0, abs(base.objective))     # the plan is optimal
            # the audit's own recomputation of the plan with it added (transfers aside: they cost nothing)
            added = audit(sc, Decisions(starts={**dec.starts, p: int(row["start"])}, withdrawn=withdrawn), v=v)
            assert added.objective - base.objective == pytest.approx(row["objective_change"], rel=1e-9, abs=1e-9)
            if with_solves:
                forced = solve_scenario(apply(sc, [ForceIn(p)]))
                assert forced.has_plan
                assert forced.objective >= base.objective + row["objective_change"] - 1e-6 * max(1.0, abs(
                    base.objective))
            continue
        # anything but no_gain: it cannot be added to this plan at any allowed start
        for s in starts:
            rep = audit(sc, Decisions(starts={**dec.starts, p: s}, withdrawn=withdrawn, flex=dec.flex,
                                      carry=dec.carry), v=v)
            assert not rep.ok, (p, s)
            if code in BESIDE and (pd.isna(row["start"]) or s == row["start"]):
                assert any(BESIDE[code] in m for m in rep.violations), rep.violations


COMMON = {"deadline": None, "derandomize": True, "database": None, "print_blob": False,
          "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]}


@settings(**COMMON, max_examples=15)
@given(case=cases())
def test_every_unfunded_project_gets_a_proved_code_fast(case: Case) -> None:
    check_claims(case, with_solves=False)


@pytest.mark.slow
@settings(**COMMON, max_examples=150)
@given(case=cases())
def test_every_unfunded_project_gets_a_proved_code(case: Case) -> None:
    check_claims(case, with_solves=True)


# --------------------------------------------------------------------------- England


@pytest.mark.slow
def test_england_cut_plan_every_unfunded_project_has_one_code() -> None:
    out = solve(load_scenario(ENGLAND_CUT))
    t0 = time.perf_counter()
    frame = unfunded_reasons(out)
    seconds = time.perf_counter() - t0
    unfunded = set(out.scenario.instance.projects["project_id"]) - set(out.decisions.starts)
    assert set(frame["project_id"]) == unfunded
    assert frame["project_id"].is_unique
    assert frame["code"].isin(CODES).all()
    assert frame["reason"].str.len().gt(20).all()
    assert seconds < 1.0, f"{seconds:.2f} s for {len(frame)} projects"
