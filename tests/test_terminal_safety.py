"""Text from the data is printed safely (issue 8): escape sequences, C1 controls and bidi overrides in names
reach the terminal escaped, in the solve summary and the analyses' summaries, while accents and £ stay
readable; and a plan that funds nothing says so, naming the rule that makes every project unaffordable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from solver.data.readers import safe_text
from solver.present import analyses
from tests.test_bad_input import SCENARIO, run, set_cell, tiny  # noqa: F401 - fixture

EVIL = "Evil\x1b]0;pwned\x07\x1b[2J\x9b31m\u202etxt.exe\u2066 £ Café"
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\u2066")


def test_safe_text_escapes_controls_and_keeps_unicode() -> None:
    assert safe_text(EVIL) == "Evil\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202etxt.exe\\u2066 £ Café"
    kept = "Zürich Ñandú £5 € 😀 ქართული عربى 日本 Åse\u200d"
    assert safe_text(kept) == kept
    assert safe_text("a\nb\tc\rd\x00e\x7f\u2028\u200e\u061c") == "a\\nb\\tc\\rd\\x00e\\x7f\\u2028\\u200e\\u061c"
    assert safe_text(12) == "12"


def put_names(folder: Path) -> None:
    for table, rows in (("systems.csv", (1, 2)), ("organisations.csv", (1, 2, 3, 4)), ("projects.csv", range(1, 11))):
        for row in rows:
            set_cell(table, row, "name", f"{EVIL} {row}")(folder)
    path = folder / "instance.toml"
    path.write_text(path.read_text().replace('name = "tiny"', 'name = "tiny\\u001b[31m\\u202e"'))


def assert_safe(text: str) -> None:
    for c in RAW:
        assert c not in text, (c, text)


def test_solve_summary_escapes_names(tiny: Path) -> None:  # noqa: F811
    put_names(tiny)
    set_cell("systems.csv", 2, "local_capital", "0")(tiny)  # so that names appear among who misses out
    result = run("solve", tiny / SCENARIO, "-o", tiny.parent / "out")
    assert result.exit_code == 0, result.stderr
    assert_safe(result.stdout)
    assert "instance tiny\\x1b[31m\\u202e" in result.stdout
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202etxt.exe\\u2066 £ Café" in result.stdout


def test_bad_input_messages_escape_column_names(tiny: Path) -> None:  # noqa: F811
    path = tiny / "envelope.csv"
    path.write_text(path.read_text().replace("revenue", "revenue,\x1b[2Jx", 1).replace("\n2", ",1\n2"))
    result = run("validate", tiny / SCENARIO)
    assert result.exit_code == 2
    assert_safe(result.stderr)
    assert "unknown column '\\x1b[2Jx'" in result.stderr


def test_analysis_summary_escapes_names(tiny: Path) -> None:  # noqa: F811
    put_names(tiny)
    out = tiny.parent / "ladder"
    result = run("ladder", tiny / SCENARIO, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert_safe(result.stdout)
    assert analyses._names(["P1", EVIL]) == "P1, " + safe_text(EVIL)


@pytest.fixture
def no_headroom(tiny: Path) -> Path:  # noqa: F811
    """The tiny instance with no revenue headroom, nothing mandatory and nothing committed."""
    set_cell("systems.csv", 1, "revenue_headroom", "0")(tiny)
    set_cell("systems.csv", 2, "revenue_headroom", "0")(tiny)
    set_cell("projects.csv", 8, "mandatory", "false")(tiny)
    set_cell("projects.csv", 10, "committed_start", "")(tiny)
    return tiny


def test_plan_that_funds_nothing_is_flagged_with_the_rule(no_headroom: Path) -> None:
    out = no_headroom.parent / "out"
    result = run("solve", no_headroom / SCENARIO, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "Funded 0 of 10 candidate projects" in result.stdout
    assert "WARNING: the plan funds none of the 10 candidate projects" in result.stdout
    assert ("WARNING: no project is affordable on its own: revenue_headroom is 0 in 2 of 2 systems, and every "
            "project needs its system to pay the system's part of the access fee (fee.payer = \"system\", rate 3.5%) "
            'in some year: set fee.payer = "centre" in the model or [overrides]') in result.stdout
    warnings = json.loads((out / "summary.json").read_text())["warnings"]
    assert len(warnings) == 2
    assert warnings[1].startswith("no project is affordable on its own: revenue_headroom is 0")


def test_the_named_fix_works_and_a_normal_plan_has_no_warnings(no_headroom: Path) -> None:
    path = no_headroom / SCENARIO
    path.write_text(path.read_text().replace("[solver]", '[overrides]\nfee = { payer = "centre" }\n\n[solver]'))
    out = no_headroom.parent / "out"
    result = run("solve", path, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "WARNING" not in result.stdout
    assert json.loads((out / "summary.json").read_text())["warnings"] == []
