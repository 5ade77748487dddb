"""``envelope import pb``: Pabulib participatory-budgeting files (Faliszewski et al., IJCAI 2023; files in
tests/data/benchmarks) as one-year instances with exact money, the ballots and the two PB scenarios."""

from __future__ import annotations

import csv
import gzip
import io
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from solver.cli import main
from solver.data.importers import read_pb
from solver.data.instance import load_instance
from solver.data.scenario import load_policy, load_scenario

DATA = Path(__file__).resolve().parent / "data" / "benchmarks"
WARSAW = DATA / "Poland_Warszawa_2026.pb.gz"
TOULOUSE = DATA / "France_Toulouse_2022.pb.gz"


def run(*args: str) -> object:
    return CliRunner().invoke(main, list(args))


def sections(path: Path) -> dict[str, list[dict[str, str]]]:
    """The file's sections read here independently of the importer (META as key/value rows)."""
    text = gzip.decompress(path.read_bytes()).decode("utf-8") if path.suffix == ".gz" else path.read_text("utf-8")
    out: dict[str, list[dict[str, str]]] = {}
    name, header = "", None
    for row in csv.reader(io.StringIO(text), delimiter=";"):
        if len(row) == 1 and row[0] in ("META", "PROJECTS", "VOTES"):
            name, header = row[0], None
            out[name] = []
        elif header is None:
            header = row
        else:
            out[name].append(dict(zip(header, row)))
    return out


def write_pb(path: Path, meta: str = "budget;10\nvote_type;approval", projects: str = "project_id;cost;votes;name\n"
             "a;4;3;A\nb;5;2;B\nc;3;1;C", votes: str = "voter_id;vote\n1;a,b\n2;a,c\n3;a,b") -> Path:
    path.write_text(f"META\nkey;value\n{meta}\nPROJECTS\n{projects}\nVOTES\n{votes}\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def warsaw_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pb") / "warsaw"
    result = run("import", "pb", str(WARSAW), "-o", str(out))
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow
def test_warsaw_money_is_exact_and_the_tables_are_the_file(warsaw_folder: Path) -> None:
    """Costs and budget read back (in units of 1,000 PLN) equal the file's, to the złoty; benefit = votes;
    ballots = the VOTES section; one system, one year, no organisations file; `selected` kept aside."""
    pb = sections(WARSAW)
    inst = load_instance(warsaw_folder)
    assert inst.sources["money_unit_exponent"] == "3"
    assert "1 unit = 1,000 PLN" in inst.sources["currency_note"]
    budget = Decimal(pb["META"][[r["key"] for r in pb["META"]].index("budget")]["value"])
    assert round(Decimal(repr(float(inst.envelope["capital"].iloc[0]))) * 1000) == budget == 24186815
    file_costs = {r["project_id"]: Decimal(r["cost"]) for r in pb["PROJECTS"]}
    read_costs = {p: round(Decimal(repr(c)) * 1000) for p, c in zip(inst.costs["project_id"], inst.costs["capital"])}
    assert read_costs == file_costs
    assert sum(read_costs.values()) == sum(file_costs.values())
    assert dict(zip(inst.projects["project_id"], inst.projects["benefit"])) == \
        {r["project_id"]: float(r["votes"]) for r in pb["PROJECTS"]}
    votes = [(r["voter_id"], p) for r in pb["VOTES"] for p in r["vote"].split(",")]
    assert list(zip(inst.ballots["voter_id"], inst.ballots["project_id"])) == votes
    assert set(inst.ballots["utility"]) == {1.0}
    assert (len(inst.systems), inst.years, len(inst.projects)) == (1, [2026], 83)
    assert not (warsaw_folder / "organisations.csv").exists()
    assert inst.organisations.empty
    selected = sections_selected(warsaw_folder)
    assert selected == {r["project_id"]: r["selected"] for r in pb["PROJECTS"]}
    assert set(inst.envelope["revenue"]) == {0.0}


def sections_selected(folder: Path) -> dict[str, str]:
    with open(folder / "pabulib_selected.csv", encoding="utf-8") as f:
        return {r["project_id"]: r["selected"] for r in csv.DictReader(f)}


def test_scenarios_and_models_make_the_objective_the_votes(tmp_path: Path) -> None:
    out = tmp_path / "toulouse"
    assert run("import", "pb", str(TOULOUSE), "-o", str(out)).exit_code == 0
    greedy = load_scenario(out / "greedy.toml")
    shares = load_scenario(out / "equal-shares.toml")
    for sc in (greedy, shares):
        pol = sc.policy
        assert (pol.fee.rate, pol.match_funding.enabled, pol.revenue_consequences.payer) == (0.0, False, "ignore")
        assert pol.standardisation.mode == "off"
        assert pol.need.need_index_power == 0
        assert set(pol.need.category_weights.values()) == {1.0}
        assert (pol.objective.horizon_years, pol.objective.discount_rate) == (1, 0.0)
        assert sc.solver.mip_gap == 0
    assert (greedy.policy.allocation.method, greedy.policy.allocation.order) == ("greedy", "value")
    assert greedy.policy.allocation.min_benefit == 0       # Toulouse states no threshold
    assert shares.policy.allocation.method == "equal-shares"


@pytest.mark.slow
def test_warsaw_threshold_reaches_the_greedy_model(tmp_path: Path) -> None:
    files = read_pb(WARSAW).files()
    (tmp_path / "pb-greedy.toml").write_text(files["pb-greedy.toml"], encoding="utf-8")
    policy, _ = load_policy("pb-greedy.toml", tmp_path)
    assert policy.allocation.min_benefit == 3000


def test_the_need_first_optimum_is_the_most_votes_within_the_budget(tmp_path: Path) -> None:
    """With the imported model and the optimiser, the objective is the votes of the funded projects: a knapsack
    on a hand-checkable file (budget 10: a+b = 5 votes for 9, a+c = 4 for 7, b+c = 3 for 8 → a and b)."""
    from solver.api import solve

    out = tmp_path / "small"
    assert run("import", "pb", str(write_pb(tmp_path / "small.pb")), "-o", str(out)).exit_code == 0
    model = (out / "pb-greedy.toml").read_text().split("[allocation]")[0]
    (out / "optimal.toml").write_text(model)
    (out / "optimise.toml").write_text('instance = "."\nmodel = "optimal.toml"\n[solver]\nmip_gap = 0.0\n')
    outcome = solve(load_scenario(out / "optimise.toml"))
    assert outcome.status == "optimal"
    assert outcome.objective == pytest.approx(5.0)


@pytest.mark.slow
def test_warsaw_greedy_scenario_selects_what_the_city_selected(warsaw_folder: Path) -> None:
    """End to end: `envelope import pb` then the greedy scenario (the allocation rule `greedy` by value with
    min_benefit 3000) funds exactly the projects whose `selected` is 1. Skipped while the pipeline has no
    rule-based allocation (status 'heuristic'); it runs in full once that lands."""
    from solver.api import solve

    outcome = solve(load_scenario(warsaw_folder / "greedy.toml"))
    if outcome.status != "heuristic":
        pytest.skip("the pipeline does not run [allocation] method = 'greedy' yet")
    selected = {p for p, s in sections_selected(warsaw_folder).items() if s == "1"}
    assert outcome.funded == selected


def test_toulouse_and_plain_text_files(tmp_path: Path) -> None:
    out = tmp_path / "toulouse"
    result = run("import", "pb", str(TOULOUSE), "-o", str(out))
    assert result.exit_code == 0, result.output
    inst = load_instance(out)
    pb = sections(TOULOUSE)
    assert len(inst.projects) == 199
    assert inst.years == [2022]
    assert not (out / "pabulib_selected.csv").exists()          # the file has no `selected` column
    districts = {r["project_id"]: r["district"] for r in pb["PROJECTS"]}
    assert dict(zip(inst.projects["project_id"], inst.projects["kind"])) == districts   # district → kind
    assert round(float(inst.costs["capital"].sum()) * 1000) == sum(round(float(r["cost"])) for r in pb["PROJECTS"])


def test_cumulative_ballots_keep_their_points(tmp_path: Path) -> None:
    path = write_pb(tmp_path / "cum.pb", meta="budget;10.5\nvote_type;cumulative",
                    projects="project_id;cost;score\na;4.25;7\nb;5;3",
                    votes="voter_id;vote;points\n1;a,b;5,2\n2;a;2\n3;b;1")
    imp = read_pb(path)
    inst = imp.validate()
    assert list(zip(inst.ballots["voter_id"], inst.ballots["project_id"], inst.ballots["utility"])) == \
        [("1", "a", 5.0), ("1", "b", 2.0), ("2", "a", 2.0), ("3", "b", 1.0)]
    assert list(inst.projects["benefit"]) == [7.0, 3.0]
    # 4.25 is not a whole number of currency units: the unit is 10 (0.425 units), the nearest to 1,000 that works
    assert imp.meta["sources"]["money_unit_exponent"] == "1"
    assert list(inst.costs["capital"]) == [0.425, 0.5]
    assert list(inst.envelope["capital"]) == [1.05]


def test_benefit_from_ballots_and_cents(tmp_path: Path) -> None:
    path = write_pb(tmp_path / "cents.pb", meta="budget;2000000.5\ncurrency;EUR",
                    projects="project_id;cost\na;999999.25\nb;1000000.01", votes="voter_id;vote\n1;a,b\n2;a")
    imp = read_pb(path)
    inst = imp.validate()
    assert list(inst.projects["benefit"]) == [2.0, 1.0]          # approvals counted
    assert imp.meta["sources"]["money_unit_exponent"] == "1"   # units of 10 EUR: cents kept, at most 1e6 units
    assert [Decimal(repr(c)) * 10 for c in inst.costs["capital"]] == [Decimal("999999.25"), Decimal("1000000.01")]
    assert Decimal(repr(float(inst.envelope["capital"].iloc[0]))) * 10 == Decimal("2000000.5")


BAD = {
    "no-meta": ("PROJECTS\nproject_id;cost\na;1\n", "has no META section; a Pabulib file has META, PROJECTS and VOTES"),
    "no-budget": ("META\nkey;value\nunit;x\nPROJECTS\nproject_id;cost\na;1\n", "META has no 'budget'"),
    "bad-budget": ("META\nkey;value\nbudget;lots\nPROJECTS\nproject_id;cost\na;1\n",
                   "line 3: META budget must be a number (got 'lots')"),
    "no-cost": ("META\nkey;value\nbudget;5\nPROJECTS\nproject_id;price\na;1\n",
                "line 5: PROJECTS has no 'cost' column (columns: project_id, price)"),
    "bad-cost": ("META\nkey;value\nbudget;5\nPROJECTS\nproject_id;cost\na;1\nb;-2\n",
                 "line 7: project b: cost must be >= 0"),
    "ragged": ("META\nkey;value\nbudget;5\nPROJECTS\nproject_id;cost;votes\na;1\n",
               "line 6: PROJECTS row has 2 cells, its header has 3"),
    "duplicate": ("META\nkey;value\nbudget;5\nPROJECTS\nproject_id;cost;votes\na;1;1\na;2;2\n",
                  "line 7: project_id 'a' appears twice (first at line 6)"),
    "bad-id": ("META\nkey;value\nbudget;5\nPROJECTS\nproject_id;cost;votes\na b;1;1\n",
               "line 6: project_id 'a b' is not usable as an id"),
    "unknown-vote": ("META\nkey;value\nbudget;5\nPROJECTS\nproject_id;cost;votes\na;1;1\nVOTES\nvoter_id;vote\n"
                     "1;a,z\n", "line 9: voter 1 votes for unknown project 'z'"),
    "twice": ("META\nkey;value\nbudget;5\nPROJECTS\nproject_id;cost;votes\na;1;1\nVOTES\nvoter_id;vote\n1;a\n1;a\n",
              "line 10: voter_id '1' appears twice (first at line 9)"),
    "points": ("META\nkey;value\nbudget;5\nvote_type;scoring\nPROJECTS\nproject_id;cost;votes\na;1;1\nVOTES\n"
               "voter_id;vote;points\n1;a;1,2\n", "line 10: voter 1: 1 projects but 2 points"),
    "ordinal": ("META\nkey;value\nbudget;5\nvote_type;ordinal\nPROJECTS\nproject_id;cost\na;1\n",
                "line 4: META vote_type 'ordinal' is not supported"),
    "too-big": ("META\nkey;value\nbudget;1000000000000000001\nPROJECTS\nproject_id;cost;votes\na;1;1\n",
                "cannot all be written exactly"),
    "nul": ("META\nkey;value\nbudget;5\x00\n", "line 3: contains NUL bytes"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_files_exit_2_naming_file_and_line(tmp_path: Path, case: str) -> None:
    text, rule = BAD[case]
    path = tmp_path / f"{case}.pb"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    result = run("import", "pb", str(path), "-o", str(out))
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {path}: ")
    assert len(result.output.strip().splitlines()) == 1
    assert rule in result.output, result.output
    assert not out.exists()


def test_not_utf8_and_bad_gzip(tmp_path: Path) -> None:
    path = tmp_path / "latin.pb"
    path.write_bytes("META\nkey;value\nbudget;5\nunit;Kraków\n".encode("latin-1"))
    result = run("import", "pb", str(path), "-o", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert "line 4: not UTF-8 text" in result.output
    path = tmp_path / "broken.pb.gz"
    path.write_bytes(gzip.compress(b"META\nkey;value\nbudget;5\n")[:-6])
    result = run("import", "pb", str(path), "-o", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert "not a readable gzip file" in result.output


def test_hostile_text_is_carried_as_text(tmp_path: Path) -> None:
    """Names with markup, formula starts, quotes and control characters reach projects.csv as written (the
    instance is input, not a spreadsheet export); messages about them are escaped."""
    names = ['<script>alert(1)</script>', '=HYPERLINK("x")', 'tab\there "quoted"', "esc\x1b[31mred"]
    projects = "project_id;cost;votes;name\n" + "\n".join(f'p{i};1;1;"{n.replace(chr(34), 2 * chr(34))}"'
                                                           for i, n in enumerate(names))
    path = write_pb(tmp_path / "hostile.pb", projects=projects, votes="voter_id;vote\n1;p0")
    out = tmp_path / "out"
    result = run("import", "pb", str(path), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert list(load_instance(out).projects["name"]) == names
    bad = write_pb(tmp_path / "bad.pb", projects="project_id;cost;votes\np\x1b[2J;1;1")
    result = run("import", "pb", str(bad), "-o", str(tmp_path / "o2"))
    assert result.exit_code == 2
    assert "\x1b" not in result.output
    assert "\\x1b" in result.output


def test_output_folder_rules(tmp_path: Path) -> None:
    """The folder is written as `envelope solve` writes: a foreign folder is refused, and so is the folder that
    holds the file being imported; an earlier import is replaced."""
    path = write_pb(tmp_path / "small.pb")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    assert run("import", "pb", str(path), "-o", str(foreign)).exit_code == 2
    assert (foreign / "notes.txt").read_text() == "keep"
    assert run("import", "pb", str(path), "-o", str(tmp_path)).exit_code == 2
    out = tmp_path / "out"
    assert run("import", "pb", str(path), "-o", str(out)).exit_code == 0
    assert run("import", "pb", str(path), "-o", str(out)).exit_code == 0


def test_an_unterminated_quote_is_refused_naming_its_line(tmp_path: Path) -> None:
    from solver.data.importers import read_pb
    from solver.errors import InputError

    head = "META\nkey;value\nbudget;100\nvote_type;approval\nPROJECTS\nproject_id;cost;votes;name\n"
    for tail in ('a;60;3;"Park\nb;50;2;Road\nVOTES\nvoter_id;vote\n1;a,b\n',          # open to the end of the file
                 'a;60;3;"Park\nb;50;2;Road"\nVOTES\nvoter_id;vote\n1;a,b\n'):        # closed lines later
        bad = tmp_path / "bad.pb"
        bad.write_text(head + tail)
        with pytest.raises(InputError, match="line 7"):
            read_pb(bad)
