"""What a planner reads under a cut: ``envelope diff`` and a scenario with a ``baseline`` — figures checked
against a plan pair joined by hand from the written plan.csv files, the cut stated, result folders
re-audited, trusts.csv with each alternatives group counted once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from solver.cli import main
from solver.errors import InputError
from solver.present.outputs import read_outcome, read_table

TINY = Path(__file__).resolve().parent.parent / "instances" / "tiny"


def cut_scenario(folder: Path, amount: float = 3.0, baseline: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cut.toml"
    base = f'baseline = "{TINY / "baseline.toml"}"\n' if baseline else ""
    path.write_text(f'instance = "{TINY}"\nmodel = "need-first"\n{base}[[envelope.cuts]]\nyear = 2025\n'
                    f'pot = "capital"\namount = {amount}\n[solver]\nmip_gap = 0\n')
    return path


def solve_to(scenario: Path, out: Path) -> str:
    r = CliRunner().invoke(main, ["solve", str(scenario), "-o", str(out)])
    assert r.exit_code == 0, r.output
    return r.output


def money(plan: pd.DataFrame) -> pd.DataFrame:
    """National money per project from a written plan.csv, with its attributes (the hand join)."""
    plan = plan.assign(national=plan["national_capital"].astype(float) + plan["national_revenue"].astype(float))
    return plan.groupby(["project_id", "system_id", "kind", "category"], dropna=False)["national"].sum().reset_index()


def test_diff_matches_a_hand_joined_plan_pair(tmp_path: Path) -> None:
    solve_to(TINY / "baseline.toml", tmp_path / "base")
    solve_to(cut_scenario(tmp_path, baseline=False), tmp_path / "cut")
    r = CliRunner().invoke(main, ["diff", str(tmp_path / "base"), str(tmp_path / "cut"), "-o", str(tmp_path / "d")])
    assert r.exit_code == 0, r.output
    b = money(read_table(tmp_path / "base" / "plan.csv"))
    c = money(read_table(tmp_path / "cut" / "plan.csv"))
    joined = b.merge(c, on=["project_id", "system_id", "kind", "category"], how="outer",
                     suffixes=("_before", "_after")).fillna({"national_before": 0.0, "national_after": 0.0})
    lost = set(joined.loc[joined["national_after"] == 0, "project_id"])
    gained = set(joined.loc[joined["national_before"] == 0, "project_id"])
    changes = read_table(tmp_path / "d" / "changes.csv")
    assert set(changes.loc[changes["change"] == "lost", "project_id"]) == lost
    assert set(changes.loc[changes["change"] == "gained", "project_id"]) == gained
    assert lost, "the cut should cost some project its funding"
    by_cat = read_table(tmp_path / "d" / "by_category.csv").set_index("category")
    category = joined["category"].fillna("").astype(str).replace("", "system-wide")
    hand = joined.assign(category=category).groupby("category")[["national_before", "national_after"]].sum()
    for cat, row in hand.iterrows():
        assert float(by_cat.at[cat, "before"]) == pytest.approx(row["national_before"], abs=1e-5)
        assert float(by_cat.at[cat, "after"]) == pytest.approx(row["national_after"], abs=1e-5)
    by_sys = read_table(tmp_path / "d" / "by_system.csv").set_index("system_id")
    hand = joined.groupby("system_id")[["national_before", "national_after"]].sum()
    for s, row in hand.iterrows():
        assert float(by_sys.at[s, "change"]) == pytest.approx(row["national_after"] - row["national_before"], abs=1e-5)
    assert "2025/26 capital" in r.output
    assert "−£3.0m" in r.output
    assert "Briefing:" in r.output


def test_a_scenario_with_a_baseline_states_the_cut_and_writes_changes(tmp_path: Path) -> None:
    out = solve_to(cut_scenario(tmp_path), tmp_path / "out")
    assert "Against its baseline, scenario baseline" in out
    assert "The envelope changes by −£3.0m" in out
    changes = read_table(tmp_path / "out" / "changes.csv")
    assert {"project_id", "org_id", "system_id", "region", "category", "kind", "funded_before", "funded_after",
            "start_before", "start_after", "money_before", "money_after"} <= set(changes.columns)
    import json

    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["baseline"]["envelope_change"] == [
        {"year": 2025, "pot": "capital", "before": pytest.approx(summary["baseline"]["envelope_change"][0]["before"]),
         "after": pytest.approx(summary["baseline"]["envelope_change"][0]["before"] - 3.0), "change": -3.0}]
    # fair shares on the baseline's envelope: the same amounts as the baseline's own systems.csv
    solve_to(TINY / "baseline.toml", tmp_path / "base")
    a = read_table(tmp_path / "out" / "systems.csv").set_index("system_id")["fair_share"].astype(float)
    b = read_table(tmp_path / "base" / "systems.csv").set_index("system_id")["fair_share"].astype(float)
    assert (a - b).abs().max() < 1e-6


def test_a_missing_or_circular_baseline_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(f'instance = "{TINY}"\nbaseline = "nope.toml"\n')
    r = CliRunner().invoke(main, ["solve", str(path), "-o", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "key 'baseline': scenario file not found" in r.output
    path.write_text(f'instance = "{TINY}"\nbaseline = "s.toml"\n')
    r = CliRunner().invoke(main, ["solve", str(path), "-o", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "cannot be its own baseline" in r.output


def test_a_result_folder_whose_scenario_changed_is_refused(tmp_path: Path) -> None:
    scenario = cut_scenario(tmp_path, baseline=False)
    solve_to(scenario, tmp_path / "out")
    assert read_outcome(tmp_path / "out").audit.ok
    scenario.write_text(scenario.read_text().replace("amount = 3.0", "amount = 3.5"))
    with pytest.raises(InputError, match="has changed since"):
        read_outcome(tmp_path / "out")
    with pytest.raises(InputError, match="not a result folder"):
        read_outcome(tmp_path)


def test_trusts_table_counts_alternatives_once(tmp_path: Path) -> None:
    solve_to(TINY / "baseline.toml", tmp_path / "out")
    trusts = read_table(tmp_path / "out" / "trusts.csv").set_index("org_id")
    projects = pd.read_csv(TINY / "projects.csv")
    costs = pd.read_csv(TINY / "costs.csv").assign(total=lambda f: f["capital"] + f["revenue"])
    total = costs.groupby("project_id")["total"].sum()
    orgs = pd.read_csv(TINY / "organisations.csv")
    assert set(trusts.index) == set(orgs["org_id"])
    for o in orgs["org_id"]:
        mine = projects[projects["org_id"] == o]
        key = mine["group"].fillna(mine["project_id"])
        asked = mine.assign(cost=mine["project_id"].map(total), key=key).groupby("key")["cost"].max().sum()
        assert float(trusts.at[o, "asked"]) == pytest.approx(asked, abs=1e-6), o
    plan = read_table(tmp_path / "out" / "plan.csv")
    assert "category" in plan.columns
    assert "region" in plan.columns


def test_diff_never_writes_over_a_result_folder_it_reads(tmp_path: Path) -> None:
    solve_to(TINY / "baseline.toml", tmp_path / "a")
    r = CliRunner().invoke(main, ["solve", str(TINY / "baseline.toml"), "--threads", "1", "-o", str(tmp_path / "b")])
    assert r.exit_code == 0, r.output
    before = sorted(p.name for p in (tmp_path / "a").iterdir())
    r = CliRunner().invoke(main, ["diff", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "a")])
    assert r.exit_code == 2
    assert "an input of this run" in r.output
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == before
    # a folder solved with solver options on the command line reads back (its identity includes them)
    r = CliRunner().invoke(main, ["diff", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "d")])
    assert r.exit_code == 0, r.output
    assert "lost by 0 projects" in r.output


def test_a_funded_project_costing_nothing_reads_back(tmp_path: Path) -> None:
    import shutil

    inst = tmp_path / "inst"
    shutil.copytree(TINY, inst)
    costs = pd.read_csv(inst / "costs.csv")
    costs.loc[costs["project_id"] == "FAX-B2", ["capital", "revenue"]] = 0.0
    costs.to_csv(inst / "costs.csv", index=False)
    solve_to(inst / "baseline.toml", tmp_path / "out")
    outcome = read_outcome(tmp_path / "out")
    assert "FAX-B2" in outcome.funded


def test_a_baseline_without_a_plan_leaves_the_plan_and_says_why(tmp_path: Path) -> None:
    base = tmp_path / "base.toml"
    base.write_text(f'instance = "{TINY}"\n[[envelope.cuts]]\nyear = 2025\npot = "capital"\namount = 7.0\n'
                    '[[envelope.cuts]]\nyear = 2026\npot = "capital"\namount = 4.0\n'
                    '[[envelope.cuts]]\nyear = 2027\npot = "capital"\namount = 3.0\n')
    cut = tmp_path / "cut.toml"
    cut.write_text(f'instance = "{TINY}"\nbaseline = "base.toml"\n')
    r = CliRunner().invoke(main, ["solve", str(base), "-o", str(tmp_path / "b")])
    if r.exit_code != 3:
        pytest.skip("the tiny instance with no capital is not infeasible")
    r = CliRunner().invoke(main, ["solve", str(cut), "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert "Not compared with its baseline base: InfeasibleError" in r.output
    assert (tmp_path / "out" / "plan.csv").exists()
    assert not (tmp_path / "out" / "changes.csv").exists()


def test_a_change_of_rules_is_stated(tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text(f'instance = "{TINY}"\nmodel = "fair-share"\n[overrides]\nfee = {{ rate = 0.0 }}\n')
    r = CliRunner().invoke(main, ["diff", str(TINY / "baseline.toml"), str(other), "-o", str(tmp_path / "d")])
    assert r.exit_code == 0, r.output
    assert "Rules: model need-first → fair-share" in r.output
    import json

    changed = json.loads((tmp_path / "d" / "summary.json").read_text())["policy_change"]["settings"]
    assert changed["fee.rate"] == [0.035, 0.0]
    assert changed["fair_share.mode"] == ["off", "band"]
