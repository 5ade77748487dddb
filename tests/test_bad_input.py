"""Broken input: every case must make ``envelope validate`` and ``envelope solve`` exit 2 with one
message on stderr naming the file, row (and line), column or TOML key, and the rule broken, with no
traceback and no output written. Also: infeasible scenarios exit 3 naming year, pot and shortfall,
and ``solve`` replaces an output folder atomically with byte-identical results."""

from __future__ import annotations

import csv
import io
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from solver.cli import main
from solver.data.instance import load_instance
from solver.data.readers import CostRow, read_table
from solver.data.scenario import load_scenario
from solver.errors import InputError
from solver.present.outputs import MARKER

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "instances" / "tiny"
SCENARIO = "baseline.toml"
OUTPUT_FILES = {"plan.csv", "systems.csv", "misses.csv", "trusts.csv", "budget.csv", "summary.json", "timing.json",
                MARKER}


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A private copy of the tiny instance (with its baseline scenario)."""
    folder = tmp_path / "tiny"
    shutil.copytree(TINY, folder)
    return folder


# --------------------------------------------------------------------------- editing helpers


def read_rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def write_rows(path: Path, rows: list[list[str]]) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def set_cell(table: str, row: int, column: str, value: str) -> Callable[[Path], None]:
    """Set one cell (data rows count from 1)."""

    def edit(folder: Path) -> None:
        rows = read_rows(folder / table)
        rows[row][rows[0].index(column)] = value
        write_rows(folder / table, rows)

    return edit


def edit_rows(table: str, fn: Callable[[list[list[str]]], None]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        rows = read_rows(folder / table)
        fn(rows)
        write_rows(folder / table, rows)

    return edit


def drop_column(table: str, column: str) -> Callable[[Path], None]:
    def fn(rows: list[list[str]]) -> None:
        i = rows[0].index(column)
        for r in rows:
            del r[i]

    return edit_rows(table, fn)


def add_column(table: str, column: str, value: str = "x") -> Callable[[Path], None]:
    def fn(rows: list[list[str]]) -> None:
        rows[0].append(column)
        for r in rows[1:]:
            r.append(value)

    return edit_rows(table, fn)


def append_rows(table: str, *new: str) -> Callable[[Path], None]:
    return edit_rows(table, lambda rows: rows.extend(line.split(",") for line in new))


def delete_file(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).unlink()


def toml_append(name: str, text: str) -> Callable[[Path], None]:
    """Append TOML text (the baseline scenario ends inside its [solver] table)."""

    def edit(folder: Path) -> None:
        path = folder / name
        path.write_text(path.read_text(encoding="utf-8") + text + "\n", encoding="utf-8")

    return edit


def toml_prepend(name: str, text: str) -> Callable[[Path], None]:
    """Put TOML text at the top level of a file."""

    def edit(folder: Path) -> None:
        path = folder / name
        path.write_text(text + "\n" + path.read_text(encoding="utf-8"), encoding="utf-8")

    return edit


def toml_replace(name: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        path = folder / name
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new), encoding="utf-8")

    return edit


def custom_model(extra: str = "", replace: tuple[str, str] | None = None) -> Callable[[Path], None]:
    """A copy of the need-first model (one text replaced, ``extra`` appended), used by the scenario."""

    def edit(folder: Path) -> None:
        text = (ROOT / "models" / "need-first.toml").read_text(encoding="utf-8")
        if replace is not None:
            assert replace[0] in text
            text = text.replace(*replace)
        (folder / "mymodel.toml").write_text(text + "\n" + extra + "\n", encoding="utf-8")
        toml_replace(SCENARIO, 'model = "need-first"', 'model = "mymodel.toml"')(folder)

    return edit


def both(*edits: Callable[[Path], None]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        for e in edits:
            e(folder)

    return edit


# --------------------------------------------------------------------------- running the CLI


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


COMMANDS = ["validate", "solve"]


def run_command(command: str, folder: Path, extra: tuple[str, ...] = ()) -> tuple[Result, Path]:
    out = folder.parent / "out"
    if command == "validate":
        return run("validate", folder / SCENARIO), out
    return run("solve", folder / SCENARIO, "-o", out, *extra), out


def assert_one_message(result: Result, out: Path, code: int = 2) -> str:
    """Exit code, a single-line message on stderr, nothing on stdout, no traceback, no output."""
    assert result.exit_code == code, (result.exit_code, result.output, result.stderr)
    text = result.stderr
    assert "Traceback" not in text
    assert "Traceback" not in result.stdout
    assert result.stdout == ""
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("error: ")
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".out")]
    return lines[0]


# --------------------------------------------------------------------------- CSV cases


@dataclass
class Bad:
    """A broken input: how to break the copy, and what the message must say."""

    id: str
    edit: Callable[[Path], None]
    file: str
    rule: str
    row: int | None = None
    column: str | None = None
    key: str | None = None

    def expected(self) -> list[str]:
        parts = [self.file, self.rule]
        if self.row is not None:
            parts.append(f"row {self.row} (line {self.row + 1})")
        if self.column is not None:
            parts.append(f"column {self.column}")
        if self.key is not None:
            parts.append(f"key '{self.key}'")
        return parts


# projects.csv data rows: 1 EPR-A1-EPIC, 2 EPR-A1-META, 3 OPT-A2, 4 EPR-B1-EPIC, 5 OPT-B1, 6 CYB-B2,
# 7 CYB-B2-LITE, 8 FAX-B2 (mandatory), 9 SCR-A, 10 COM-A2 (committed 2025)
CSV_CASES = [
    # files and columns
    Bad("missing-file", delete_file("costs.csv"), "costs.csv", "required file is missing"),
    Bad("missing-column", drop_column("projects.csv", "benefit"), "projects.csv", "required column is missing",
        column="benefit"),
    Bad("unknown-column", add_column("systems.csv", "colour"), "systems.csv", "unknown column 'colour'",
        column="colour"),
    Bad("duplicate-column", edit_rows("envelope.csv", lambda rows: rows[0].__setitem__(2, "capital")),
        "envelope.csv", "column appears twice", column="capital"),
    Bad("empty-projects", edit_rows("projects.csv", lambda rows: rows.__delitem__(slice(1, None))),
        "projects.csv", "needs at least one project"),
    Bad("empty-file", lambda f: (f / "envelope.csv").write_text(""), "envelope.csv", "file is empty"),
    Bad("ragged-row", edit_rows("projects.csv", lambda rows: rows[3].append("extra")), "projects.csv",
        "has 17 cells, header has 16", row=3),
    Bad("short-row", edit_rows("costs.csv", lambda rows: rows[2].pop()), "costs.csv", "has 3 cells, header has 4",
        row=2),
    Bad("not-utf8", lambda f: (f / "systems.csv").write_bytes(
        (f / "systems.csv").read_bytes().replace(b"Alpha ICB", "Alpha ICB é".encode("latin-1"))),
        "systems.csv", "not UTF-8"),
    # types and ranges
    Bad("wrong-type-number", set_cell("projects.csv", 3, "benefit", "ten"), "projects.csv", "valid number",
        row=3, column="benefit"),
    Bad("wrong-type-bool", set_cell("projects.csv", 5, "mandatory", "maybe"), "projects.csv", "valid boolean",
        row=5, column="mandatory"),
    Bad("wrong-type-int", set_cell("costs.csv", 2, "year_offset", "1.5"), "costs.csv", "valid integer",
        row=2, column="year_offset"),
    Bad("missing-value", set_cell("projects.csv", 4, "earliest_start", ""), "projects.csv", "value is required",
        row=4, column="earliest_start"),
    Bad("bad-id", set_cell("systems.csv", 2, "system_id", "B B"), "systems.csv", "should match pattern",
        row=2, column="system_id"),
    Bad("negative-cost", set_cell("costs.csv", 2, "capital", "-3"), "costs.csv", "greater than or equal to 0",
        row=2, column="capital"),
    Bad("negative-envelope", set_cell("envelope.csv", 2, "revenue", "-0.1"), "envelope.csv",
        "greater than or equal to 0", row=2, column="revenue"),
    Bad("nan", set_cell("costs.csv", 1, "revenue", "nan"), "costs.csv", "finite number", row=1, column="revenue"),
    Bad("inf", set_cell("systems.csv", 1, "population", "inf"), "systems.csv", "finite number", row=1,
        column="population"),
    Bad("overflow-inf", set_cell("systems.csv", 2, "imd_score", "1e400"), "systems.csv", "finite number", row=2,
        column="imd_score"),
    Bad("money-decimals", set_cell("envelope.csv", 1, "capital", "7.0001"), "envelope.csv", "at most 3 decimals",
        row=1, column="capital"),
    Bad("money-decimals-costs", set_cell("costs.csv", 6, "capital", "3.14159"), "costs.csv", "at most 3 decimals",
        row=6, column="capital"),
    Bad("share-above-one", set_cell("projects.csv", 1, "match_share", "1.2"), "projects.csv",
        "less than or equal to 1", row=1, column="match_share"),
    # references
    Bad("unknown-system", set_cell("organisations.csv", 2, "system_id", "Z"), "organisations.csv",
        "unknown system 'Z'", row=2, column="system_id"),
    Bad("unknown-system-project", set_cell("projects.csv", 9, "system_id", "Z"), "projects.csv",
        "unknown system 'Z'", row=9, column="system_id"),
    Bad("unknown-org", set_cell("projects.csv", 1, "org_id", "ZZ"), "projects.csv", "unknown organisation 'ZZ'",
        row=1, column="org_id"),
    Bad("org-in-other-system", set_cell("projects.csv", 1, "system_id", "B"), "projects.csv",
        "belongs to system 'A', not 'B'", row=1, column="system_id"),
    Bad("no-org-no-system", set_cell("projects.csv", 9, "system_id", ""), "projects.csv",
        "needs an org_id, or a system_id", row=9, column="org_id"),
    Bad("unknown-project-costs", set_cell("costs.csv", 4, "project_id", "NOPE"), "costs.csv",
        "unknown project 'NOPE'", row=4, column="project_id"),
    Bad("unknown-project-deps", set_cell("dependencies.csv", 1, "project_id", "NOPE"), "dependencies.csv",
        "unknown project 'NOPE'", row=1, column="project_id"),
    Bad("unknown-requires", set_cell("dependencies.csv", 1, "requires", "NOPE"), "dependencies.csv",
        "unknown project or group 'NOPE'", row=1, column="requires"),
    Bad("no-cost-profile", edit_rows("costs.csv", lambda rows: rows.__delitem__(5)), "projects.csv",
        "has no cost profile in costs.csv", row=3, column="project_id"),
    # duplicates
    Bad("duplicate-project-id", set_cell("projects.csv", 4, "project_id", "OPT-A2"), "projects.csv",
        "duplicate project_id OPT-A2 (first at row 3)", row=4, column="project_id"),
    Bad("duplicate-system-id", set_cell("systems.csv", 2, "system_id", "A"), "systems.csv",
        "duplicate system_id A (first at row 1)", row=2, column="system_id"),
    Bad("duplicate-cost-year", set_cell("costs.csv", 2, "year_offset", "0"), "costs.csv",
        "duplicate project_id + year_offset EPR-A1-EPIC/0 (first at row 1)", row=2, column="project_id"),
    Bad("duplicate-envelope-year", set_cell("envelope.csv", 3, "year", "2026"), "envelope.csv",
        "duplicate year 2026 (first at row 2)", row=3, column="year"),
    Bad("duplicate-dependency", append_rows("dependencies.csv", "SCR-A,EPR-A1,0"), "dependencies.csv",
        "duplicate project_id + requires SCR-A/EPR-A1 (first at row 1)", row=2, column="project_id"),
    # dependencies and groups
    Bad("self-dependency", set_cell("dependencies.csv", 1, "requires", "SCR-A"), "dependencies.csv",
        "project 'SCR-A' cannot require itself", row=1, column="requires"),
    Bad("self-dependency-via-group", append_rows("dependencies.csv", "EPR-A1-EPIC,EPR-A1,0"), "dependencies.csv",
        "project 'EPR-A1-EPIC' cannot require itself", row=2, column="requires"),
    Bad("two-cycle", append_rows("dependencies.csv", "OPT-A2,OPT-B1,0", "OPT-B1,OPT-A2,1"), "dependencies.csv",
        "dependency cycle: OPT-A2 -> OPT-B1 -> OPT-A2", row=2, column="requires"),
    Bad("cycle-via-group", append_rows("dependencies.csv", "EPR-A1-META,SCR-A,0"), "dependencies.csv",
        "dependency cycle: EPR-A1-META -> SCR-A -> EPR-A1-META", row=2, column="requires"),
    Bad("group-is-project-id", set_cell("projects.csv", 3, "group", "OPT-B1"), "projects.csv",
        "group 'OPT-B1' has the same id as a project", row=3, column="group"),
    # years
    Bad("earliest-after-latest", both(set_cell("projects.csv", 3, "earliest_start", "2027"),
                                      set_cell("projects.csv", 3, "latest_start", "2026")),
        "projects.csv", "earliest_start 2027 is after latest_start 2026", row=3, column="earliest_start"),
    Bad("start-after-years", set_cell("projects.csv", 5, "latest_start", "2030"), "projects.csv",
        "start 2030 is outside the envelope years 2025-2027", row=5, column="latest_start"),
    Bad("start-before-years", set_cell("projects.csv", 5, "earliest_start", "2024"), "projects.csv",
        "start 2024 is outside the envelope years 2025-2027", row=5, column="earliest_start"),
    Bad("profile-past-years", both(set_cell("projects.csv", 1, "earliest_start", "2027"),
                                   set_cell("projects.csv", 1, "latest_start", "2027")), "projects.csv",
        "a 2-year cost profile starting 2027 runs past the last envelope year 2027", row=1, column="earliest_start"),
    Bad("committed-outside-window", set_cell("projects.csv", 10, "committed_start", "2026"), "projects.csv",
        "committed_start 2026 is outside [earliest_start, latest_start] = [2025, 2025]", row=10,
        column="committed_start"),
    Bad("envelope-year-not-instance-year", set_cell("envelope.csv", 3, "year", "2028"), "envelope.csv",
        "year 2028 is not in instance years", row=3, column="year"),
    Bad("envelope-year-missing", edit_rows("envelope.csv", lambda rows: rows.pop()), "envelope.csv",
        "no row for year(s) [2027]"),
]

# --------------------------------------------------------------------------- TOML cases

TOML_CASES = [
    # scenario file
    Bad("scenario-unknown-key", toml_prepend(SCENARIO, 'colour = "red"'), SCENARIO, "unknown key", key="colour"),
    Bad("scenario-unknown-solver-key", toml_append(SCENARIO, "gap = 0.01"), SCENARIO, "unknown key",
        key="solver.gap"),
    Bad("scenario-unknown-envelope-key", toml_append(SCENARIO, "[envelope]\nscael = 0.9"), SCENARIO, "unknown key",
        key="envelope.scael"),
    Bad("scenario-unknown-cut-key", toml_append(SCENARIO, "[[envelope.cuts]]\nyear = 2025\namount = 1\nplot = 1"),
        SCENARIO, "unknown key", key="envelope.cuts[0].plot"),
    Bad("scenario-missing-instance", toml_replace(SCENARIO, 'instance = "."', ""), SCENARIO,
        "required key is missing", key="instance"),
    Bad("scenario-wrong-type", toml_append(SCENARIO, 'time_limit = "long"'), SCENARIO, "valid number",
        key="solver.time_limit"),
    Bad("scenario-bad-toml", toml_append(SCENARIO, "mip_gap = = 1"), SCENARIO, "invalid TOML"),
    Bad("scenario-missing-file", delete_file(SCENARIO), SCENARIO, "file not found"),
    Bad("instance-folder-missing", toml_replace(SCENARIO, 'instance = "."', 'instance = "nowhere"'), "nowhere",
        "instance folder not found"),
    Bad("scenario-nan", toml_append(SCENARIO, "[envelope]\nscale = nan"), SCENARIO, "finite number",
        key="envelope.scale"),
    Bad("scenario-inf", toml_append(SCENARIO, "time_limit = inf"), SCENARIO, "finite number",
        key="solver.time_limit"),
    # backends and models
    Bad("unknown-backend", toml_replace(SCENARIO, 'backend = "highs"', 'backend = "gurobi"'), SCENARIO,
        "unknown backend 'gurobi'", key="solver.backend"),
    Bad("unknown-model", toml_replace(SCENARIO, 'model = "need-first"', 'model = "greedy"'), SCENARIO,
        "unknown policy model 'greedy'", key="model"),
    Bad("model-file-missing", toml_replace(SCENARIO, 'model = "need-first"', 'model = "mine.toml"'), SCENARIO,
        "policy model file not found", key="model"),
    # cuts
    Bad("cut-exceeds-pot", toml_append(SCENARIO, "[[envelope.cuts]]\nyear = 2026\namount = 4.5"), SCENARIO,
        "cut of £4.500m exceeds the 2026 capital envelope of £4.000m", key="envelope.cuts[0].amount"),
    Bad("cut-exceeds-both", toml_append(SCENARIO, '[[envelope.cuts]]\nyear = 2027\npot = "both"\namount = 3.6'),
        SCENARIO, "exceeds the 2027 envelope of £3.500m", key="envelope.cuts[0].amount"),
    Bad("cut-unknown-year", toml_append(SCENARIO, "[[envelope.cuts]]\nyear = 2030\namount = 1"), SCENARIO,
        "year 2030 is not an envelope year", key="envelope.cuts[0].year"),
    Bad("cut-decimals", toml_append(SCENARIO, "[[envelope.cuts]]\nyear = 2025\namount = 0.0005"), SCENARIO,
        "at most 3 decimals", key="envelope.cuts[0].amount"),
    Bad("cut-negative", toml_append(SCENARIO, "[[envelope.cuts]]\nyear = 2025\namount = -1"), SCENARIO,
        "greater than or equal to 0", key="envelope.cuts[0].amount"),
    # overrides
    Bad("override-unknown-key", toml_append(SCENARIO, "[overrides.budget]\ncarryover = 0.1"), SCENARIO,
        "unknown key", key="overrides.budget.carryover"),
    Bad("override-unknown-section", toml_append(SCENARIO, "[overrides.budgets]\ncarry_over = 0.1"), SCENARIO,
        "unknown key", key="overrides.budgets"),
    Bad("override-out-of-range", toml_append(SCENARIO, "[overrides.budget]\ncarry_over = 2"), SCENARIO,
        "less than or equal to 1", key="overrides.budget.carry_over"),
    Bad("override-bad-choice", toml_append(SCENARIO, '[overrides.fair_share]\nmode = "sometimes"'), SCENARIO,
        "Input should be 'off', 'floor', 'cap', 'band' or 'deviation' (got 'sometimes')",
        key="overrides.fair_share.mode"),
    Bad("override-inf", toml_append(SCENARIO, "[overrides.objective]\nspend_weight = inf"), SCENARIO,
        "finite number", key="overrides.objective.spend_weight"),
    Bad("override-nan", toml_append(SCENARIO, "[overrides.fee]\nrate = nan"), SCENARIO, "finite number",
        key="overrides.fee.rate"),
    # policy model file
    Bad("model-unknown-key", custom_model("[extras]\nfoo = 1"), "mymodel.toml", "unknown key", key="extras"),
    Bad("model-unknown-nested-key", custom_model("[fair_share.extra]\nfoo = 1"), "mymodel.toml", "unknown key",
        key="fair_share.extra"),
    Bad("model-inf", custom_model(replace=("spend_weight = 0.0", "spend_weight = -inf")), "mymodel.toml",
        "finite number", key="objective.spend_weight"),
    Bad("model-bad-value", custom_model(replace=('payer = "system"            #', 'payer = "nobody"  #')),
        "mymodel.toml", "Input should be 'system', 'centre' or 'ignore' (got 'nobody')",
        key="revenue_consequences.payer"),
    # instance.toml
    Bad("instance-unknown-key", toml_prepend("instance.toml", 'currencyy = "GBPm"'), "instance.toml",
        "unknown key", key="currencyy"),
    Bad("instance-wrong-currency", toml_replace("instance.toml", 'currency = "GBPm"', 'currency = "EUR"'),
        "instance.toml", "should match pattern", key="currency"),
    Bad("instance-years-gap", toml_replace("instance.toml", "[2025, 2026, 2027]", "[2025, 2027]"),
        "instance.toml", "must be consecutive years", key="years"),
    Bad("instance-missing-years", toml_replace("instance.toml", "years = [2025, 2026, 2027]", ""),
        "instance.toml", "required key is missing", key="years"),
]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", CSV_CASES + TOML_CASES, ids=lambda c: c.id)
def test_bad_input_exits_2_with_one_message(tiny: Path, case: Bad, command: str) -> None:
    case.edit(tiny)
    result, out = run_command(command, tiny)
    message = assert_one_message(result, out)
    for part in case.expected():
        assert part in message, (part, message)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (("--backend", "gurobi"), ["option --backend", "unknown backend 'gurobi'", "highs"]),
        (("--time-limit", "0"), ["option --time-limit", "greater than 0"]),
        (("--gap", "nan"), ["option --gap", "finite number"]),
        (("--threads", "-1"), ["option --threads", "greater than or equal to 0"]),
    ],
    ids=["backend", "time-limit", "gap-nan", "threads"],
)
def test_bad_solver_option_exits_2(tiny: Path, options: tuple[str, ...], expected: list[str]) -> None:
    result, out = run_command("solve", tiny, options)
    message = assert_one_message(result, out)
    for part in expected:
        assert part in message, (part, message)


def test_bad_input_message_names_full_path(tiny: Path) -> None:
    set_cell("projects.csv", 3, "benefit", "ten")(tiny)
    result, out = run_command("validate", tiny)
    message = assert_one_message(result, out)
    assert str(tiny.resolve() / "projects.csv") in message
    assert message == (f"error: {tiny.resolve() / 'projects.csv'}, row 3 (line 4), column benefit: "
                       "Input should be a valid number, unable to parse string as a number (got 'ten')")


# --------------------------------------------------------------------------- accepted input


def test_bom_and_crlf_are_accepted(tiny: Path) -> None:
    for path in sorted(tiny.iterdir()):
        if path.suffix in (".csv", ".toml"):
            text = path.read_text(encoding="utf-8").replace("\r\n", "\n").replace("\n", "\r\n")
            path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert (tiny / "projects.csv").read_bytes().startswith(b"\xef\xbb\xbfproject_id,")
    assert b"\r\n" in (tiny / "projects.csv").read_bytes()
    result = run("validate", tiny / SCENARIO)
    assert result.exit_code == 0, result.stderr
    assert "valid" in result.stdout
    result, out = run_command("solve", tiny)
    assert result.exit_code == 0, result.stderr
    assert {p.name for p in out.iterdir()} == OUTPUT_FILES
    reference = run("solve", TINY / SCENARIO, "-o", tiny.parent / "reference")
    assert reference.exit_code == 0, reference.stderr
    assert (out / "plan.csv").read_bytes() == (tiny.parent / "reference" / "plan.csv").read_bytes()


def test_blank_lines_and_spaces_are_accepted(tiny: Path) -> None:
    path = tiny / "envelope.csv"
    path.write_text("year, capital, revenue\n2025, 7, 0.5\n\n2026,4,0.6\n2027,3,0.5\n\n", encoding="utf-8")
    result = run("validate", tiny / SCENARIO)
    assert result.exit_code == 0, result.stderr


# --------------------------------------------------------------------------- infeasible


@pytest.mark.parametrize("command", COMMANDS)
def test_infeasible_names_year_pot_and_shortfall(tiny: Path, command: str) -> None:
    # FAX-B2 is mandatory; fix its start to 2025 and make it cost more than 2025's capital envelope.
    set_cell("projects.csv", 8, "latest_start", "2025")(tiny)
    set_cell("costs.csv", 10, "capital", "8")(tiny)
    result, out = run_command(command, tiny)
    assert result.exit_code == 3, (result.output, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("infeasible: ")
    # 8 (FAX-B2) + 1.2 (COM-A2, committed 2025) against 7: one line naming year, pot and shortfall
    assert re.search(r"^ *2025(/26)? capital: .*£9\.200m.*short by £2\.200m$", result.stderr, re.MULTILINE), \
        result.stderr
    assert not out.exists()


def test_infeasible_cut_names_year_pot_and_shortfall(tiny: Path) -> None:
    # cutting 2025 capital below what the committed COM-A2 needs (1.2) is infeasible, not bad input
    toml_append(SCENARIO, "[[envelope.cuts]]\nyear = 2025\namount = 6.5")(tiny)
    result, out = run_command("solve", tiny)
    assert result.exit_code == 3, (result.output, result.stderr)
    # 1.2 needed against 7 - 6.5 = 0.5
    assert re.search(r"^ *2025(/26)? capital: .*short by £0\.700m$", result.stderr, re.MULTILINE), result.stderr
    assert not out.exists()


# --------------------------------------------------------------------------- Python API


def test_api_wrong_type_raises_input_error(tiny: Path) -> None:
    set_cell("projects.csv", 3, "benefit", "ten")(tiny)
    with pytest.raises(InputError) as info:
        load_scenario(tiny / SCENARIO)
    err = info.value
    assert Path(err.file).name == "projects.csv"
    assert (err.row, err.line, err.column) == (3, 4, "benefit")
    assert err.exit_code == 2


def test_api_cross_table_raises_input_error(tiny: Path) -> None:
    set_cell("projects.csv", 1, "org_id", "ZZ")(tiny)
    with pytest.raises(InputError, match="unknown organisation 'ZZ'") as info:
        load_instance(tiny)
    err = info.value
    assert Path(err.file).name == "projects.csv"
    assert (err.row, err.line, err.column) == (1, 2, "org_id")


def test_api_cycle_raises_input_error(tiny: Path) -> None:
    append_rows("dependencies.csv", "OPT-A2,OPT-B1,0", "OPT-B1,OPT-A2,1")(tiny)
    with pytest.raises(InputError, match="dependency cycle") as info:
        load_instance(tiny)
    assert (Path(info.value.file).name, info.value.row, info.value.column) == ("dependencies.csv", 2, "requires")


def test_api_read_table_negative_cost(tiny: Path) -> None:
    set_cell("costs.csv", 2, "capital", "-3")(tiny)
    with pytest.raises(InputError, match="greater than or equal to 0") as info:
        read_table(tiny / "costs.csv", CostRow)
    assert (info.value.row, info.value.line, info.value.column) == (2, 3, "capital")


def test_api_toml_error_names_file(tiny: Path) -> None:
    toml_append(SCENARIO, "[overrides.budget]\ncarryover = 0.1")(tiny)
    with pytest.raises(InputError, match="key 'overrides.budget.carryover': unknown key") as info:
        load_scenario(tiny / SCENARIO)
    assert Path(info.value.file).name == SCENARIO
    assert info.value.row is None


def test_api_overrides_reject_non_finite(tiny: Path) -> None:
    sc = load_scenario(tiny / SCENARIO)
    with pytest.raises(InputError, match="key 'overrides.objective.spend_weight': must be a finite number"):
        sc.with_overrides({"objective": {"spend_weight": float("inf")}})
    with pytest.raises(InputError, match="unknown backend 'gurobi'"):
        sc.with_solver(backend="gurobi")


# --------------------------------------------------------------------------- atomic, reproducible output


def test_solve_twice_replaces_folder_atomically_and_identically(tiny: Path) -> None:
    out = tiny.parent / "out"
    first = run("solve", tiny / SCENARIO, "-o", out)
    assert first.exit_code == 0, first.stderr
    assert {p.name for p in out.iterdir()} == OUTPUT_FILES
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "notes.txt").write_text("the user's, added later")
    refused = run("solve", tiny / SCENARIO, "-o", out)          # never deleted by the next run: refused
    assert refused.exit_code == 2
    assert "notes.txt" in refused.stderr
    assert (out / "notes.txt").read_text() == "the user's, added later"
    (out / "notes.txt").unlink()

    second = run("solve", tiny / SCENARIO, "-o", out)
    assert second.exit_code == 0, second.stderr
    assert {p.name for p in out.iterdir()} == OUTPUT_FILES  # replaced whole, not merged
    assert sorted(p.name for p in out.parent.iterdir()) == ["out", "tiny"]  # no temporary or old folders left
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    for name in sorted(OUTPUT_FILES - {"timing.json"}):
        assert after[name] == before[name], name
        assert after[name], name
