"""``envelope generate``: random instances for scaling studies are deterministic by seed, have the
documented sizes, are whole £k, and are valid by construction (load, pass ``validate``, solve with a
plan that passes the audit); bad arguments exit 2 with one line naming the option."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from solver.api import solve
from solver.backends.result import SolutionStatus
from solver.cli import main
from solver.data.generate import FIRST_YEAR, MAX_PROJECTS, GeneratorSettings, generate
from solver.data.readers import ProjectRow
from solver.data.scenario import load_scenario
from solver.errors import InputError
from solver.pipeline.checks import obvious_causes


def run(args: list[str]) -> Result:
    return CliRunner().invoke(main, args)


def gen_args(out: Path, systems: int = 3, orgs: int = 2, projects: int = 4, years: int = 3, tightness: float = 0.3,
             seed: int = 1) -> list[str]:
    return ["generate", "--systems", str(systems), "--orgs-per-system", str(orgs), "--projects-per-org",
            str(projects), "--years", str(years), "--tightness", str(tightness), "--seed", str(seed), "-o", str(out)]


def written(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def write(settings_: GeneratorSettings, folder: Path) -> Path:
    """The generated files in ``folder`` (as the CLI writes them, without its marker); the scenario's path."""
    folder.mkdir(parents=True)
    for name, text in generate(settings_).files().items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder / "scenario.toml"


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_files_and_another_seed_others(tmp_path: Path) -> None:
    first, again, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for folder, seed in ((first, 7), (again, 7), (other, 8)):
        result = run(gen_args(folder, seed=seed))
        assert result.exit_code == 0, (result.output, result.exception)
    files = written(first)
    assert set(files) >= {"systems.csv", "organisations.csv", "projects.csv", "costs.csv", "dependencies.csv",
                          "envelope.csv", "instance.toml", "scenario.toml"}
    assert files == written(again)
    differ = [name for name, data in written(other).items() if data != files[name]]
    assert {"projects.csv", "costs.csv", "systems.csv"} <= set(differ)


def test_the_api_is_deterministic_and_seeds_differ() -> None:
    s = GeneratorSettings(4, 3, 5, 3, 0.4, seed=123)
    assert generate(s).files() == generate(s).files()
    assert generate(s).files()["projects.csv"] != generate(GeneratorSettings(4, 3, 5, 3, 0.4, seed=124)).files()[
        "projects.csv"]


def test_tightness_scales_only_the_envelope() -> None:
    """Every draw is independent of the tightness: the envelope is floor(T × demand) per year and pot."""
    full, half = (generate(GeneratorSettings(5, 3, 4, 3, t, seed=3)) for t in (1.0, 0.5))
    for pot in ("capital", "revenue"):
        for a, b in zip(full.tables["envelope"][pot], half.tables["envelope"][pot]):
            assert abs(b - a / 2) <= 0.001 + 1e-9
    keep = ["project_id", "org_id", "benefit", "earliest_start", "duration_years", "run_cost", "match_share", "group"]
    assert full.tables["projects"][keep].equals(half.tables["projects"][keep])
    assert full.tables["costs"].equals(half.tables["costs"])
    total = full.tables["envelope"][["capital", "revenue"]].to_numpy().sum()
    assert total == pytest.approx(full.facts["demand_gbpm"], abs=0.002 * 3)


# --------------------------------------------------------------------------- sizes and content


def test_a_20x5x4_instance_has_the_expected_rows() -> None:
    made = generate(GeneratorSettings(20, 5, 4, 3, 0.3, seed=11))
    t = made.tables
    assert len(t["systems"]) == 20
    assert len(t["organisations"]) == 100
    assert len(t["projects"]) == 20 * 5 * 4 + 20          # K per organisation, one system-wide project per system
    assert len(t["envelope"]) == 3
    assert list(t["envelope"]["year"]) == [FIRST_YEAR, FIRST_YEAR + 1, FIRST_YEAR + 2]
    assert t["projects"]["org_id"].value_counts().eq(4).all()
    system_wide = t["projects"][t["projects"]["org_id"].isna()]
    assert len(system_wide) == 20
    assert set(system_wide["system_id"]) == set(t["systems"]["system_id"])
    assert t["organisations"].groupby("system_id").size().eq(5).all()
    profile = t["costs"].groupby("project_id")["year_offset"].max() + 1
    assert len(t["costs"]) == profile.sum()
    assert set(profile.index) == set(t["projects"]["project_id"])
    assert (profile <= 3).all()
    assert made.facts["projects"] == 420
    assert made.facts["organisations"] == 100


def test_an_england_sized_instance_has_every_feature() -> None:
    """42 systems × 5 organisations × 5 projects: all four categories, EPR-less organisations, several
    platforms, alternatives groups, dependencies, mandatory and committed projects, match shares, savings."""
    made = generate(GeneratorSettings(42, 5, 5, 3, 0.3, seed=20261123))
    orgs, pr, dep = made.tables["organisations"], made.tables["projects"], made.tables["dependencies"]
    assert set(orgs["category"]) == {0, 1, 2, 3}
    assert (orgs.loc[orgs["category"] == 0, "platform"] == "").all()
    assert orgs["platform"].nunique() >= 6
    assert {"epr_procurement", "epr_optimisation", "epr_extension", "cyber", "digitisation",
            "shared_care_record"} <= set(pr["kind"])
    assert pr["group"].notna().sum() >= 2 * pr["group"].nunique() > 0
    assert len(dep) > 0
    assert (dep["lag_years"] == 1).all()
    assert pr["mandatory"].sum() > 0
    assert pr["committed_start"].notna().sum() > 0
    assert (pr["match_share"] > 0).any()
    assert (pr["match_share"] == 0).any()
    if "savings" in ProjectRow.model_fields:
        assert "savings" in pr.columns
        assert (pr["savings"] > 0).any()
    # the forced projects: none depends on another, none in a group with another forced one
    forced = pr[pr["mandatory"] | pr["committed_start"].notna()]
    assert not set(forced["project_id"]) & set(dep["project_id"])
    assert not forced["group"].dropna().duplicated().any()


_MONEY = re.compile(r"^\d+(\.\d{1,3})?$")


def test_money_is_whole_thousands_of_pounds(tmp_path: Path) -> None:
    folder = tmp_path / "g"
    write(GeneratorSettings(6, 3, 6, 4, 0.7, seed=5), folder)
    money = {"systems.csv": ["local_capital", "revenue_headroom"],
             "projects.csv": ["run_cost", "withdrawal_cost", "benefit"] + (
                 ["savings"] if "savings" in ProjectRow.model_fields else []),
             "costs.csv": ["capital", "revenue"], "envelope.csv": ["capital", "revenue"]}
    import csv
    for name, columns in money.items():
        with open(folder / name, newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert rows
        for row in rows:
            for c in columns:
                assert _MONEY.match(row[c]), (name, c, row[c])


# --------------------------------------------------------------------------- valid by construction


def check_valid(settings_: GeneratorSettings, folder: Path, gap: float = 1e-6) -> None:
    scenario = load_scenario(write(settings_, folder))
    assert obvious_causes(scenario) == []
    outcome = solve(scenario, mip_gap=gap, time_limit=60)
    assert outcome.status in (SolutionStatus.OPTIMAL, SolutionStatus.FEASIBLE)
    assert outcome.audit is not None
    assert outcome.audit.ok, outcome.audit.violations
    pr = scenario.instance.projects
    assert set(pr.loc[pr["mandatory"], "project_id"]) <= outcome.funded
    assert set(pr.loc[pr["committed_start"].notna(), "project_id"]) <= outcome.funded


@settings(deadline=None, derandomize=True, database=None, max_examples=12, phases=(Phase.explicit, Phase.generate),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(systems=st.integers(1, 3), orgs=st.integers(1, 3), projects=st.integers(1, 4), years=st.integers(1, 3),
       tightness=st.sampled_from([0.02, 0.1, 0.3, 0.6, 1.0]), seed=st.integers(0, 2**32 - 1))
def test_every_generated_instance_validates_and_solves_with_an_audited_plan(
        tmp_path_factory: pytest.TempPathFactory, systems: int, orgs: int, projects: int, years: int,
        tightness: float, seed: int) -> None:
    check_valid(GeneratorSettings(systems, orgs, projects, years, tightness, seed),
                tmp_path_factory.mktemp("gen") / "g")


def test_an_instance_with_mandatory_and_committed_projects_solves(tmp_path: Path) -> None:
    made = generate(GeneratorSettings(5, 4, 3, 2, 0.3, seed=1))
    assert made.facts["mandatory"] > 0
    assert made.facts["committed"] > 0
    check_valid(made.settings, tmp_path / "g", gap=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_larger_instances_with_many_forced_projects_solve(tmp_path: Path, seed: int) -> None:
    """Tight envelopes and many organisations: the forced projects (mandatory, committed) still fit."""
    check_valid(GeneratorSettings(12, 6, 3, 3, 0.15, seed), tmp_path / "g", gap=1e-3)


def test_the_cli_writes_a_folder_that_validates(tmp_path: Path) -> None:
    out = tmp_path / "g"
    result = run(gen_args(out, systems=2, orgs=2, projects=3, years=2, tightness=0.5, seed=9))
    assert result.exit_code == 0, (result.output, result.exception)
    assert "Wrote generated-2x2x3-y2-t0.5-s9" in result.stdout
    check = run(["validate", str(out / "scenario.toml")])
    assert check.exit_code == 0, check.output
    assert "2 systems, 4 organisations, 14 projects" in check.stdout
    again = run(gen_args(out, systems=2, orgs=2, projects=3, years=2, tightness=0.5, seed=10))
    assert again.exit_code == 0, again.output          # an earlier output of Envelope is replaced


# --------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(("change", "option"), [
    ({"systems": 0}, "--systems"),
    ({"systems": 1001}, "--systems"),
    ({"orgs": 0}, "--orgs-per-system"),
    ({"projects": 21}, "--projects-per-org"),
    ({"years": 0}, "--years"),
    ({"years": 11}, "--years"),
    ({"tightness": 0}, "--tightness"),
    ({"tightness": 1.5}, "--tightness"),
    ({"tightness": -0.1}, "--tightness"),
    ({"tightness": "nan"}, "--tightness"),
    ({"seed": -1}, "--seed"),
    ({"systems": 1000, "orgs": 100, "projects": 20}, "--projects-per-org"),
])
def test_bad_arguments_exit_2_naming_the_option(tmp_path: Path, change: dict, option: str) -> None:
    args = {"systems": 2, "orgs": 2, "projects": 2, "years": 2, "tightness": 0.3, "seed": 0, **change}
    out = tmp_path / "g"
    result = run(gen_args(out, **args))
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert option in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()


def test_a_non_number_is_a_usage_error_and_a_foreign_folder_is_refused(tmp_path: Path) -> None:
    bad = run(["generate", "--systems", "two", "--orgs-per-system", "1", "--projects-per-org", "1", "-o",
               str(tmp_path / "g")])
    assert bad.exit_code == 2
    assert "--systems" in bad.output
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    refused = run(gen_args(mine))
    assert refused.exit_code == 2
    assert "not an Envelope output folder" in refused.stderr
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_settings_check_is_the_api_guard() -> None:
    with pytest.raises(InputError, match="--tightness"):
        generate(GeneratorSettings(1, 1, 1, 1, 0.0))
    assert MAX_PROJECTS < 1000 * 100 * 20
    with pytest.raises(InputError, match="projects"):
        GeneratorSettings(1000, 100, 20, 3, 0.3).check()
