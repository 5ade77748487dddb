"""Natural instances: columns with documented defaults may be left out (docs/scenario-format.md), an
organisations file may be left out when every project names its system, and ballots are an optional table.
Defaults never weaken a file that gives the column: an empty cell there is still an error."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pandas as pd
import pytest

from solver.api import solve
from solver.data.instance import load_instance, validate_tables
from solver.data.readers import UNLIMITED_LOCAL_GBPM
from solver.data.scenario import load_scenario
from solver.errors import InputError
from solver.rules.local_funding import UNLIMITED_GBPM

COSTS = {"a": 4.0, "b": 3.0, "c": 3.0, "d": 2.5}
BENEFIT = {"a": 7.0, "b": 5.0, "c": 4.5, "d": 2.0}
BUDGET = 7.0


def knapsack(folder: Path, projects: str | None = None, systems: str | None = None, extra: dict | None = None) -> Path:
    """A plain one-year knapsack written the natural way: three columns of systems, three of projects, no
    organisations file."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "instance.toml": 'name = "knapsack"\nyears = [2030]\n',
        "systems.csv": systems or "system_id,name,weighted_population\nS,Somewhere,1\n",
        "projects.csv": projects or "project_id,system_id,benefit\n" + "".join(f"{p},S,{b}\n"
                                                                           for p, b in BENEFIT.items()),
        "costs.csv": "project_id,year_offset,capital,revenue\n" + "".join(f"{p},0,{c},0\n" for p, c in COSTS.items()),
        "dependencies.csv": "project_id,requires,lag_years\n",
        "envelope.csv": f"year,capital,revenue\n2030,{BUDGET},0\n",
        **(extra or {}),
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def error_of(folder: Path) -> InputError:
    with pytest.raises(InputError) as info:
        load_instance(folder)
    return info.value


def test_left_out_columns_take_their_documented_defaults(tmp_path: Path) -> None:
    inst = load_instance(knapsack(tmp_path / "k"))
    pr = inst.projects.set_index("project_id")
    assert list(pr["name"]) == list(pr.index)                       # name = project_id
    assert set(pr["kind"]) == set(pr["platform"]) == {""}
    assert set(pr["earliest_start"]) == set(pr["latest_start"]) == {2030}
    assert pr["earliest_start"].dtype == pr["latest_start"].dtype == pr["duration_years"].dtype == "int64"
    assert set(pr["duration_years"]) == {0}
    for column in ("run_cost", "match_share", "withdrawal_cost", "savings"):
        assert set(pr[column]) == {0.0}, column
    assert set(pr["mandatory"]) == {False}
    assert pr["committed_start"].isna().all()
    assert pr["group"].isna().all()
    sy = inst.systems.iloc[0]
    assert (sy["population"], sy["need_index"]) == (1.0, 1.0)       # population = weighted_population
    assert sy["local_capital"] == sy["revenue_headroom"] == UNLIMITED_LOCAL_GBPM == UNLIMITED_GBPM
    assert inst.organisations.empty
    assert list(inst.organisations.columns[:3]) == ["org_id", "name", "system_id"]
    assert inst.ballots.empty
    assert list(inst.ballots.columns[:3]) == ["voter_id", "project_id", "utility"]


def test_a_natural_knapsack_solves_to_its_optimum_with_the_default_model(tmp_path: Path) -> None:
    """No fake trust, no fake limits: with unlimited local limits the default model's access fee (paid by the
    system) binds nothing, so need-first funds the best set within the capital envelope (brute force)."""
    folder = knapsack(tmp_path / "k")
    (folder / "s.toml").write_text('instance = "."\n[solver]\nmip_gap = 0\n')
    best = max((s for r in range(5) for s in itertools.combinations(COSTS, r)
                if sum(COSTS[p] for p in s) <= BUDGET), key=lambda s: sum(BENEFIT[p] for p in s))
    assert set(best) == {"a", "b"}
    outcome = solve(load_scenario(folder / "s.toml"))
    assert outcome.status == "optimal"
    assert outcome.funded == set(best)


@pytest.mark.parametrize(("table", "text", "row", "column"), [
    ("projects.csv", "project_id,system_id,benefit,run_cost\na,S,7,0.1\nb,S,5,\n", 2, "run_cost"),
    ("projects.csv", "project_id,system_id,benefit,earliest_start\na,S,7,\nb,S,5,2030\n", 1, "earliest_start"),
    ("projects.csv", "project_id,system_id,benefit,mandatory\na,S,7,false\nb,S,5, \n", 2, "mandatory"),
    ("projects.csv", "project_id,system_id,benefit,savings\na,S,7,\n", 1, "savings"),
    ("projects.csv", "project_id,system_id,name,benefit\na,S,,7\n", 1, "name"),
    ("systems.csv", "system_id,name,weighted_population,population\nS,Somewhere,1,\n", 1, "population"),
    ("systems.csv", "system_id,name,weighted_population,local_capital\nS,Somewhere,1,\n", 1, "local_capital"),
    ("systems.csv", "system_id,name,weighted_population,need_index\nS,Somewhere,1,\n", 1, "need_index"),
])
def test_a_given_column_still_needs_every_cell(tmp_path: Path, table: str, text: str, row: int,
                                                column: str) -> None:
    """A column the file has is filled in every row: an empty cell is "value is required", not the default."""
    folder = knapsack(tmp_path / "k", **{table.removesuffix(".csv"): text})
    err = error_of(folder)
    assert (Path(str(err.file)).name, err.row, err.column, err.rule) == (table, row, column, "value is required")


def test_columns_that_may_be_empty_stay_so(tmp_path: Path) -> None:
    projects = ("project_id,system_id,kind,platform,benefit,committed_start,group\n"
                "a,S,,,7,,\nb,S,cyber,Epic,5,2030,g\nc,S,,,4.5,,g\nd,S,,,2,,\n")
    inst = load_instance(knapsack(tmp_path / "k", projects=projects))
    assert list(inst.projects["kind"]) == ["", "cyber", "", ""]
    assert list(inst.projects["group"].fillna("-")) == ["-", "g", "g", "-"]


def test_given_values_are_kept_and_checked_as_before(tmp_path: Path) -> None:
    projects = ("project_id,system_id,benefit,earliest_start,savings,match_share\na,S,7,2030,1.5,0.25\n"
                "b,S,5,2030,0,0\nc,S,4.5,2030,0,0\nd,S,2,2030,0,0\n")
    inst = load_instance(knapsack(tmp_path / "k", projects=projects))
    assert tuple(inst.projects.loc[0, ["earliest_start", "latest_start", "savings", "match_share"]]) == \
        (2030, 2030, 1.5, 0.25)
    for bad, rule in (("-1", "greater than or equal to 0"), ("1.0001", "at most 3 decimals")):
        folder = knapsack(tmp_path / f"bad{bad}", projects=f"project_id,system_id,benefit,savings\na,S,7,{bad}\n")
        assert rule in error_of(folder).rule


def test_a_profile_that_cannot_fit_the_default_window_is_still_an_error(tmp_path: Path) -> None:
    folder = knapsack(tmp_path / "k")
    (folder / "costs.csv").write_text("project_id,year_offset,capital,revenue\n" + "".join(
        f"{p},0,{c},0\n" for p, c in COSTS.items()) + "a,1,1,0\n")
    err = error_of(folder)
    assert Path(str(err.file)).name == "projects.csv"
    assert err.row == 1
    assert "runs past the last envelope year 2030; no start year lets the project fit" in err.rule


def test_organisations_may_be_left_out_only_when_no_project_names_one(tmp_path: Path) -> None:
    projects = "project_id,org_id,system_id,benefit\na,,S,7\nb,T1,,5\nc,,S,4.5\nd,,S,2\n"
    err = error_of(knapsack(tmp_path / "k", projects=projects))
    assert Path(str(err.file)).name == "organisations.csv"
    assert err.rule.startswith("required file is missing: projects.csv row 2 (line 3) names organisation 'T1'")
    orgs = "org_id,name,system_id,category\nT1,Trust,S,0\n"
    inst = load_instance(knapsack(tmp_path / "k2", projects=projects, extra={"organisations.csv": orgs}))
    assert list(inst.organisations["org_id"]) == ["T1"]
    assert list(inst.organisations["platform"]) == [""]


BALLOTS = "voter_id,project_id\nv1,a\nv1,b\nv2,c\n"


def test_ballots_table(tmp_path: Path) -> None:
    inst = load_instance(knapsack(tmp_path / "k", extra={"ballots.csv": BALLOTS}))
    assert list(zip(inst.ballots["voter_id"], inst.ballots["project_id"], inst.ballots["utility"])) == \
        [("v1", "a", 1.0), ("v1", "b", 1.0), ("v2", "c", 1.0)]     # approval: utility 1 when the column is out
    cardinal = load_instance(knapsack(tmp_path / "c", extra={"ballots.csv": "voter_id,project_id,utility\nv1,a,3\n"
                                                                            "v2,a,0.5\n"}))
    assert list(cardinal.ballots["utility"]) == [3.0, 0.5]


@pytest.mark.parametrize(("text", "row", "column", "rule"), [
    ("voter_id,project_id\nv1,a\nv2,zz\n", 2, "project_id", "unknown project 'zz'"),
    ("voter_id,project_id\nv1,a\nv2,b\nv1,a\n", 3, "voter_id", "duplicate voter_id + project_id v1/a (first at row 1)"),
    ("voter_id,project_id,utility\nv1,a,2\nv2,b,\n", 2, "utility", "value is required"),
    ("voter_id,project_id,utility\nv1,a,-1\n", 1, "utility", "greater than or equal to 0"),
    ("voter_id,project_id\nv 1,a\n", 1, "voter_id", "should match pattern"),
    ("voter_id,project\nv1,a\n", None, "project", "unknown column 'project'"),
])
def test_bad_ballots(tmp_path: Path, text: str, row: int | None, column: str, rule: str) -> None:
    err = error_of(knapsack(tmp_path / "k", extra={"ballots.csv": text}))
    assert Path(str(err.file)).name == "ballots.csv"
    assert (err.row, err.column) == (row, column)
    assert rule in err.rule


def test_frames_take_the_same_defaults(tmp_path: Path) -> None:
    """``validate_tables`` (any importer) fills the same defaults as the CSV loader, and takes ballots."""
    csv_inst = load_instance(knapsack(tmp_path / "k", extra={"ballots.csv": BALLOTS}))
    frames = {
        "systems": pd.DataFrame({"system_id": ["S"], "name": ["Somewhere"], "weighted_population": [1]}),
        "projects": pd.DataFrame({"project_id": list(BENEFIT), "system_id": ["S"] * 4,
                                  "benefit": list(BENEFIT.values())}),
        "costs": pd.DataFrame({"project_id": list(COSTS), "year_offset": [0] * 4, "capital": list(COSTS.values()),
                               "revenue": [0.0] * 4}),
        "envelope": pd.DataFrame({"year": [2030], "capital": [BUDGET], "revenue": [0.0]}),
        "ballots": pd.DataFrame({"voter_id": ["v1", "v1", "v2"], "project_id": ["a", "b", "c"]}),
    }
    got = validate_tables(frames, "gen", {"name": "knapsack", "years": [2030]})
    for name in ("systems", "organisations", "projects", "costs", "dependencies", "envelope", "ballots"):
        left, right = getattr(got, name), getattr(csv_inst, name)
        pd.testing.assert_frame_equal(left.drop(columns=[c for c in ("_row", "_line") if c in left]),
                                      right.drop(columns=[c for c in ("_row", "_line") if c in right]),
                                      check_dtype=name not in ("organisations", "dependencies"), obj=name)
    assert not math.isnan(got.systems["population"].iloc[0])
