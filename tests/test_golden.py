"""Golden outputs: ``envelope solve`` on the tiny instance writes, byte for byte, the tables
recorded before the package was reorganised (tests/golden/), so a refactor that changes a plan,
a figure or a column shows up here."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from solver.cli import main

GOLDEN = Path(__file__).parent / "golden"
TINY = Path(__file__).resolve().parent.parent / "instances" / "tiny" / "baseline.toml"


def test_solve_tiny_matches_the_golden_tables(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["solve", str(TINY), "-o", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("plan.csv", "budget.csv", "systems.csv", "misses.csv"):
        assert (out / name).read_bytes() == (GOLDEN / "solve-tiny" / name).read_bytes(), name
    new = json.loads((out / "summary.json").read_text())
    old = json.loads((GOLDEN / "solve-tiny" / "summary.json").read_text())
    for doc in (new, old):  # where the package and solver live, and their versions, may differ
        doc.pop("model_path", None)
        doc.pop("scenario_path", None)
        doc.pop("scenario_id", None)
        doc.pop("versions", None)
        doc["solver"].pop("version", None)
    assert new == old
