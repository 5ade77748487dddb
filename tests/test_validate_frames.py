"""``validate_tables``: an instance validated from DataFrames (any importer) takes the same path, the
same checks and the same messages as the CSV loader, naming table, row and column."""

from __future__ import annotations

import pickle
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from solver.data.instance import TABLE_MODELS, Instance, load_instance, validate_tables
from solver.errors import InputError

TINY = Path(__file__).resolve().parent.parent / "instances" / "tiny"
META = tomllib.loads((TINY / "instance.toml").read_text(encoding="utf-8"))
BOOKKEEPING = ["_row", "_line"]


def text_frames() -> dict[str, pd.DataFrame]:
    """The tiny instance's CSV files as frames of text cells (empty cells as "")."""
    return {name: pd.read_csv(TINY / f"{name}.csv", dtype=str, keep_default_na=False) for name in TABLE_MODELS}


def typed_frames() -> dict[str, pd.DataFrame]:
    """The tiny instance's validated tables without bookkeeping: numbers, booleans, None and NaN."""
    inst = load_instance(TINY)
    return {name: getattr(inst, name).drop(columns=BOOKKEEPING) for name in TABLE_MODELS}


def assert_same_tables(a: Instance, b: Instance) -> None:
    for name in TABLE_MODELS:
        left, right = getattr(a, name), getattr(b, name)
        pd.testing.assert_frame_equal(left.drop(columns=[c for c in BOOKKEEPING if c in left]),
                                      right.drop(columns=[c for c in BOOKKEEPING if c in right]), obj=name)
    assert (a.name, a.years, a.description, a.sources) == (b.name, b.years, b.description, b.sources)


@pytest.mark.parametrize("frames", [text_frames, typed_frames], ids=["text", "typed"])
def test_frames_validate_to_the_csv_instance(frames: object) -> None:
    expected = load_instance(TINY)
    got = validate_tables(frames(), "tiny-frames", META)  # type: ignore[operator]
    assert_same_tables(got, expected)
    assert list(got.projects["_row"]) == list(range(1, len(got.projects) + 1))
    assert "_line" not in got.projects.columns         # frames have rows, not lines
    assert "_line" in expected.projects.columns
    assert_same_tables(pickle.loads(pickle.dumps(got)), got)


def test_meta_may_be_an_instance_meta_and_dependencies_may_be_left_out() -> None:
    frames = text_frames()
    del frames["dependencies"]
    meta = load_instance(TINY)
    got = validate_tables(frames, "gen", {"name": meta.name, "years": meta.years})
    assert got.dependencies.empty
    assert list(got.dependencies.columns[:3]) == ["project_id", "requires", "lag_years"]
    frames["dependencies"] = pd.DataFrame()
    assert validate_tables(frames, "gen", META).dependencies.empty


def test_frames_with_bookkeeping_keep_the_csv_lines() -> None:
    inst = load_instance(TINY)
    frames = {name: getattr(inst, name) for name in TABLE_MODELS}
    projects = frames["projects"].copy()
    projects.loc[0, "org_id"] = "ZZ"
    frames["projects"] = projects
    with pytest.raises(InputError, match="unknown organisation 'ZZ'") as info:
        validate_tables(frames, TINY, META)
    assert (info.value.row, info.value.line, info.value.column) == (1, 2, "org_id")


def broken(table: str, edit: object) -> dict[str, pd.DataFrame]:
    frames = text_frames()
    frames[table] = edit(frames[table].copy())  # type: ignore[operator]
    return frames


def set_cell(row: int, column: str, value: str):  # noqa: ANN201 - a small edit helper
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[row - 1, column] = value
        return frame

    return edit


@pytest.mark.parametrize(("table", "edit", "where", "rule"), [
    pytest.param("projects", lambda f: f.drop(columns=["benefit"]), (None, "benefit"),
                 "required column is missing", id="missing-column"),
    pytest.param("systems", lambda f: f.assign(colour="red"), (None, "colour"),
                 "unknown column 'colour'; expected columns: system_id, name, region, population, "
                 "weighted_population, need_index, imd_score, local_capital, revenue_headroom", id="unknown-column"),
    pytest.param("costs", set_cell(2, "capital", "-3"), (2, "capital"),
                 "Input should be greater than or equal to 0 (got '-3')", id="bad-cell"),
    pytest.param("costs", set_cell(2, "capital", "1.2345"), (2, "capital"),
                 "money is in £m with at most 3 decimals (got '1.2345')", id="money-decimals"),
    pytest.param("projects", set_cell(3, "name", ""), (3, "name"), "value is required", id="empty-required"),
    pytest.param("projects", set_cell(1, "org_id", "ZZ"), (1, "org_id"), "unknown organisation 'ZZ'",
                 id="unknown-org"),
    pytest.param("systems", set_cell(2, "system_id", "A"), (2, "system_id"), "duplicate system_id A (first at row 1)",
                 id="duplicate-id"),
    pytest.param("dependencies", set_cell(1, "requires", "SCR-A"), (1, "requires"),
                 "project 'SCR-A' cannot require itself", id="self-dependency"),
])
def test_bad_frames_name_table_row_and_column(table: str, edit: object, where: tuple[int | None, str],
                                              rule: str) -> None:
    with pytest.raises(InputError) as info:
        validate_tables(broken(table, edit), "budget.xlsx", META)
    err = info.value
    assert (err.file, err.row, err.line, err.column) == (f"budget.xlsx/{table}", where[0], None, where[1])
    assert err.rule == rule
    row = f", row {where[0]}" if where[0] is not None else ""
    assert str(err) == f"budget.xlsx/{table}{row}, column {where[1]}: {rule}"


def test_typed_bad_cells() -> None:
    frames = typed_frames()
    frames["envelope"] = frames["envelope"].assign(capital=[7.0, float("inf"), 1.0])
    with pytest.raises(InputError, match="finite number") as info:
        validate_tables(frames, "gen", META)
    assert (info.value.row, info.value.column) == (2, "capital")
    frames = typed_frames()
    frames["projects"] = frames["projects"].assign(earliest_start=frames["projects"]["earliest_start"] + 0.5)
    with pytest.raises(InputError, match="fractional part") as info:
        validate_tables(frames, "gen", META)
    assert (info.value.file, info.value.row, info.value.column) == ("gen/projects", 1, "earliest_start")


def test_tables_and_meta_problems() -> None:
    frames = text_frames()
    with pytest.raises(InputError, match="required table is missing") as info:
        validate_tables({k: v for k, v in frames.items() if k != "costs"}, "gen", META)
    assert info.value.file == "gen/costs"
    with pytest.raises(InputError, match="unknown table 'budgets'; expected tables: systems, organisations"):
        validate_tables({**frames, "budgets": frames["envelope"]}, "gen", META)
    with pytest.raises(InputError, match="key 'years': must be consecutive years") as info:
        validate_tables(frames, "gen", {**META, "years": [2025, 2027, 2026]})
    assert info.value.file == "gen"
    with pytest.raises(InputError, match="key 'name': required key is missing"):
        validate_tables(frames, "gen", {"years": [2025, 2026, 2027]})
    with pytest.raises(InputError, match=r"no row for year\(s\) \[2028\]") as info:
        validate_tables(frames, "gen", {**META, "years": [2025, 2026, 2027, 2028]})
    assert info.value.file == "gen/envelope"


def test_data_loading_imports_no_solver() -> None:
    import subprocess
    import sys

    code = ("import sys, solver.data.instance, solver.data.readers; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('highspy', 'pulp', 'ortools')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
