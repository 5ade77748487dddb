"""Spreadsheets: instance workbooks (tables and bids layouts) read and written, ``envelope import xlsx``,
``envelope workbook`` and the result workbook (docs/spreadsheets.md)."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from solver.cli import main
from solver.data.instance import Instance, load_instance
from solver.data.workbook import import_workbook, instance_workbook, number_text, read_workbook
from solver.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "instances" / "tiny"
ENGLAND = ROOT / "instances" / "england"
TEMPLATE = ROOT / "instances" / "workbook" / "bids-template.xlsx"
TABLES = ("systems", "organisations", "projects", "costs", "dependencies", "envelope", "ballots")


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def write_book(source: Any, path: Path, layout: str) -> Path:
    """An instance written as a workbook file (what envelope workbook writes)."""
    path.write_bytes(instance_workbook(source, layout))
    return path


def assert_same_instance(a: Instance, b: Instance) -> None:
    """Equal tables (every column, in order; bookkeeping left out) and metadata."""
    for name in TABLES:
        fa, fb = (getattr(i, name).drop(columns=["_row", "_line"], errors="ignore").reset_index(drop=True)
                  for i in (a, b))
        pd.testing.assert_frame_equal(fa, fb, obj=name)
    assert (a.name, a.years, a.description, a.sources) == (b.name, b.years, b.description, b.sources)


def round_trip_tables(folder: Path, tmp_path: Path) -> None:
    book = write_book(folder, tmp_path / "book.xlsx", "tables")
    imported = import_workbook(book)
    files = imported.files()
    for csv in sorted(folder.glob("*.csv")):
        assert files[csv.name] == csv.read_text(encoding="utf-8"), csv.name   # byte-identical
    assert sorted(n for n in files if n.endswith(".csv")) == sorted(p.name for p in folder.glob("*.csv"))
    assert_same_instance(load_instance(folder), imported.validate())


def round_trip_bids(folder: Path, tmp_path: Path) -> None:
    book = write_book(folder, tmp_path / "bids.xlsx", "bids")
    assert_same_instance(load_instance(folder), read_workbook(book))


def test_tiny_round_trips_through_the_tables_layout(tmp_path: Path) -> None:
    round_trip_tables(TINY, tmp_path)


def test_tiny_round_trips_through_the_bids_layout(tmp_path: Path) -> None:
    round_trip_bids(TINY, tmp_path)
    ws = load_workbook(tmp_path / "bids.xlsx")["bids"]
    header = [c.value for c in ws[1]]
    assert header[-5:] == ["requires", "capital_y1", "revenue_y1", "capital_y2", "revenue_y2"]
    row = {h: c.value for h, c in zip(header, ws[3])}   # EPR-A1-META: 2 cost years, in group EPR-A1
    assert (row["project_id"], row["capital_y1"], row["revenue_y1"], row["capital_y2"]) == ("EPR-A1-META", 3, 0.3, 2)
    scr = next(r for r in ws.iter_rows(min_row=2, values_only=True) if r[0] == "SCR-A")
    assert dict(zip(header, scr))["requires"] == "EPR-A1:1"
    assert ws.freeze_panes == "A2"
    assert ws.cell(1, 1).font.b
    assert ws.cell(2, header.index("run_cost") + 1).number_format == "#,##0.000"


@pytest.mark.slow
def test_england_round_trips_through_both_layouts(tmp_path: Path) -> None:
    round_trip_tables(ENGLAND, tmp_path)
    round_trip_bids(ENGLAND, tmp_path)


def test_the_template_imports_validates_and_is_what_build_writes(tmp_path: Path) -> None:
    out = tmp_path / "x"
    result = run("import", "xlsx", str(TEMPLATE), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "scenario.toml").is_file()
    assert 'model = "need-first"' in (out / "scenario.toml").read_text()
    assert run("validate", str(out / "scenario.toml")).exit_code == 0
    inst = load_instance(out)
    assert len(inst.systems) == 42
    assert len(inst.organisations) == 205
    assert 5 <= len(inst.projects) <= 10
    assert inst.projects["mandatory"].any()
    assert inst.projects["group"].notna().any()
    assert len(inst.dependencies)
    assert "README" in load_workbook(TEMPLATE, read_only=True).sheetnames
    spec = importlib.util.spec_from_file_location("workbook_build", TEMPLATE.parent / "build.py")
    assert spec is not None
    assert spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert build.template() == TEMPLATE.read_bytes(), "run python instances/workbook/build.py"


# --------------------------------------------------------------------------- bad workbooks


def edited(tmp_path: Path, change: Callable[[Any], None], layout: str = "bids") -> Path:
    """The tiny instance as a workbook, changed by ``change(workbook)``."""
    wb = load_workbook(io.BytesIO(instance_workbook(TINY, layout)))
    change(wb)
    path = tmp_path / "bad.xlsx"
    wb.save(path)
    return path


def cell(sheet: str, row: int, column: str, value: object) -> Callable[[Any], None]:
    def change(wb: Any) -> None:
        ws = wb[sheet]
        j = [c.value for c in ws[1]].index(column) + 1
        ws.cell(row, j).value = value
    return change


BAD = {
    "text in a number column": (cell("bids", 7, "benefit", "lots"),
                                r"bad\.xlsx, sheet 'bids', row 7, column 'benefit' \([A-Z]\): .*valid number"),
    "unknown organisation": (cell("bids", 3, "org_id", "ZZ9"),
                             r"sheet 'bids', row 3, column 'org_id' \(B\): unknown organisation 'ZZ9'"),
    "duplicate project id": (cell("bids", 4, "project_id", "EPR-A1-EPIC"),
                             r"sheet 'bids', row 4, column 'project_id' \(A\): duplicate project_id EPR-A1-EPIC "
                             r"\(first at row 2\)"),
    "bad cost year": (cell("bids", 5, "capital_y2", -2), r"sheet 'bids', row 5, column 'capital_y2' \([A-Z]\): "),
    "bad dependency": (cell("bids", 6, "requires", "NOPE:1"),
                       r"sheet 'bids', row 6, column 'requires' \([A-Z]\): unknown project or group 'NOPE'"),
    "formula with no value": (cell("bids", 6, "earliest_start", "=2024+1"),
                              r"sheet 'bids', row 6, column 'earliest_start' \([A-Z]\): holds a formula \(=2024\+1\) "
                              "with no saved value"),
    "error cell": (cell("envelope", 3, "capital", "#DIV/0!"),
                   r"sheet 'envelope', row 3, column 'capital' \(B\): holds the error #DIV/0!"),
    "date for a number": (cell("envelope", 3, "capital", pd.Timestamp("2026-04-01").to_pydatetime()),
                          r"sheet 'envelope', row 3, column 'capital' \(B\): holds a date"),
    "missing required sheet": (lambda wb: wb.remove(wb["envelope"]),
                               r"bad\.xlsx: required sheet 'envelope' is missing"),
    "no organisations and no reference": (lambda wb: wb.remove(wb["organisations"]),
                                          r"sheet 'organisations' is missing: .*--reference"),
    "merged cells": (lambda wb: wb["bids"].merge_cells("B3:B4"), r"sheet 'bids', row 3, .*B3:B4 are merged"),
    "repeated header": (cell("bids", 1, "name", "Project ID"), r"row 1, column 'Project ID' .* repeats"),
    "unknown bids column": (cell("bids", 1, "name", "colour"), r"column 'colour' \([A-Z]\): unknown column"),
    "bad years": (cell("instance", 5, "value", "soon"), r"sheet 'instance', row 5, column 'value' \(B\): key 'years'"),
    "huge sheet": (lambda wb: wb["bids"].cell(1_048_576, 16_384, 1), r"sheet 'bids': its used range runs to row "
                                                                       r"1,048,576 and column XFD"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_workbook_exits_2_naming_sheet_row_and_column(tmp_path: Path, case: str) -> None:
    change, message = BAD[case]
    path = edited(tmp_path, change)
    result = run("import", "xlsx", str(path), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert re.search(message, result.output), result.output
    assert not (tmp_path / "out").exists()


def test_tables_layout_messages_name_the_sheet(tmp_path: Path) -> None:
    path = edited(tmp_path, cell("projects", 5, "benefit", "abc"), "tables")
    with pytest.raises(InputError, match=r"sheet 'projects', row 5, column 'benefit' \(G\): .*valid number"):
        read_workbook(path)
    path = edited(tmp_path, lambda wb: wb.remove(wb["costs"]), "tables")
    with pytest.raises(InputError, match=r"required sheet 'costs' is missing"):
        read_workbook(path)
    path = edited(tmp_path, lambda wb: setattr(wb["dependencies"], "title", "dependancies"), "tables")
    with pytest.raises(InputError, match=r"'dependancies' is not one Envelope reads; did you mean 'dependencies'"):
        read_workbook(path)


@pytest.mark.parametrize(("content", "message"), [
    (b"project_id,benefit\nA,1\n", r"not an \.xlsx workbook .*CSV"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, r"encrypted .* or an old \.xls"),
    (b"", r"is empty"),
])
def test_a_file_that_is_not_a_workbook_exits_2(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bids.xlsx"
    path.write_bytes(content)
    result = run("import", "xlsx", str(path), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert re.search(message, result.output), result.output


def test_a_formula_with_a_saved_value_is_read_by_its_value(tmp_path: Path) -> None:
    path = edited(tmp_path, cell("bids", 6, "benefit", "=1+2"))
    with zipfile.ZipFile(path) as z:  # openpyxl saves no value: store the one Excel would
        parts = {i.filename: z.read(i) for i in z.infolist()}
    name = next(n for n in parts if n.startswith("xl/worksheets/") and b"<f>1+2</f>" in parts[n])
    parts[name] = parts[name].replace(b"<f>1+2</f><v />", b"<f>1+2</f><v>3</v>")
    with zipfile.ZipFile(path, "w") as z:
        for n, data in parts.items():
            z.writestr(n, data)
    inst = read_workbook(path)
    assert inst.projects.loc[inst.projects["_row"] == 6, "benefit"].item() == 3.0


def test_readable_headers_floats_for_integers_and_text_ids(tmp_path: Path) -> None:
    def change(wb: Any) -> None:
        ws = wb["bids"]
        header = [c.value for c in ws[1]]
        ws.cell(1, header.index("capital_y1") + 1).value = "Capital Y1"
        ws.cell(1, header.index("revenue_y1") + 1).value = " revenue year 1 "
        ws.cell(1, header.index("project_id") + 1).value = "Project ID"
        ws.cell(2, header.index("project_id") + 1).value = "007"
        ws.cell(2, header.index("earliest_start") + 1).value = 2025
    path = edited(tmp_path, change)
    with zipfile.ZipFile(path) as z:  # as Excel may store it: 2025.0 (openpyxl writes 2025)
        parts = {i.filename: z.read(i) for i in z.infolist()}
    sheet = next(n for n in parts if n.startswith("xl/worksheets/") and b"Capital Y1" in parts[n])
    parts[sheet], count = re.subn(rb'(<c r="H2"[^>]*><v>)2025(</v>)', rb"\g<1>2025.0\g<2>", parts[sheet])
    assert count == 1
    with zipfile.ZipFile(path, "w") as z:
        for n, data in parts.items():
            z.writestr(n, data)
    imported = import_workbook(path)
    projects = imported.files()["projects.csv"]
    assert "\n007,A1,A," in projects
    assert ",2025,2026," in projects
    assert number_text(2026.0) == "2026"
    assert number_text(0.676) == "0.676"
    assert number_text(1e-7) == "0.0000001"


def test_reference_supplies_organisations_and_systems(tmp_path: Path) -> None:
    def drop(wb: Any) -> None:
        wb.remove(wb["organisations"])
        wb.remove(wb["systems"])
    path = edited(tmp_path, drop)
    result = run("import", "xlsx", str(path), "-o", str(tmp_path / "out"), "--reference", str(TINY))
    assert result.exit_code == 0, result.output
    assert_same_instance(load_instance(TINY), load_instance(tmp_path / "out"))


# --------------------------------------------------------------------------- text stays text


FORMULAS = ["=1+1", '=HYPERLINK("http://x")', "+44 20", "@SUM(A1)", "'quoted"]


@pytest.mark.parametrize("layout", ["tables", "bids"])
def test_formula_looking_names_stay_text_both_ways(tmp_path: Path, layout: str) -> None:
    inst = load_instance(TINY)
    pr = inst.projects.copy()
    pr.loc[: len(FORMULAS) - 1, "name"] = FORMULAS
    book = write_book(dataclasses.replace(inst, projects=pr), tmp_path / "f.xlsx", layout)
    ws = load_workbook(book)["projects" if layout == "tables" else "bids"]
    j = [c.value for c in ws[1]].index("name") + 1
    cells = [ws.cell(i + 2, j) for i in range(len(FORMULAS))]
    assert [(c.value, c.data_type) for c in cells] == [(f, "s") for f in FORMULAS]
    assert read_workbook(book).projects["name"].tolist()[: len(FORMULAS)] == FORMULAS


def test_formula_looking_text_stays_text_in_a_result_workbook() -> None:
    from solver.present.results import Result
    from solver.present.xlsx import result_workbook

    plan = pd.DataFrame({"project_id": ["-X1", "007"], "name": FORMULAS[:2], "national_capital": [1.5, 2.0]})
    data = result_workbook(Result(kind="solve", name="r", path="r", tables={"plan": plan},
                                  summary={"scenario": "=cmd()", "solver": {"options": {"mip_gap": 0.001}}}))
    wb = load_workbook(io.BytesIO(data))
    assert [(c.value, c.data_type) for c in wb["plan"]["B"][1:]] == [(f, "s") for f in FORMULAS[:2]]
    assert [c.value for c in wb["plan"]["A"][1:]] == ["-X1", "007"]
    assert [(c.value, c.data_type) for c in wb["summary"]["B"][1:]] == [("=cmd()", "s"), (0.001, "n")]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1,
                              max_size=40).map(str.strip).filter(bool), min_size=10, max_size=10))
def test_any_text_name_survives_instance_workbook_instance(tmp_path: Path, names: list[str]) -> None:
    inst = load_instance(TINY)
    pr = inst.projects.copy()
    pr["name"] = names
    book = tmp_path / "h.xlsx"
    book.write_bytes(instance_workbook(dataclasses.replace(inst, projects=pr), "tables"))
    assert read_workbook(book).projects["name"].tolist() == names


# --------------------------------------------------------------------------- envelope workbook


def test_result_workbook_of_a_tiny_solve(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("solve", str(TINY / "baseline.toml"), "-o", str(out)).exit_code == 0
    result = run("workbook", str(out), "-o", str(tmp_path / "results.xlsx"))
    assert result.exit_code == 0, result.output
    wb = load_workbook(tmp_path / "results.xlsx")
    assert wb.sheetnames[0] == "summary"
    assert {"plan", "budget", "systems", "trusts", "misses"} <= set(wb.sheetnames)
    facts = {r[0]: r[1] for r in wb["summary"].iter_rows(min_row=2, values_only=True)}
    assert facts["status"] == "optimal"
    assert facts["solver.backend"] == "highs"
    assert facts["audit.passed"] is True
    assert facts["envelope"].startswith('[{"year":2025')
    plan = wb["plan"]
    header = [c.value for c in plan[1]]
    assert plan.freeze_panes == "A2"
    assert plan.cell(1, 1).font.b
    assert plan.auto_filter.ref
    assert plan.cell(2, header.index("national_capital") + 1).number_format == "#,##0.000"
    assert plan.cell(2, header.index("start") + 1).number_format == "General"
    systems = wb["systems"]
    header = [c.value for c in systems[1]]
    assert systems.cell(2, header.index("fair_share") + 1).number_format == "#,##0.000"
    again = tmp_path / "again.xlsx"
    assert run("workbook", str(out), "-o", str(again)).exit_code == 0
    assert again.read_bytes() == (tmp_path / "results.xlsx").read_bytes()


def test_workbook_command_on_an_instance_and_its_refusals(tmp_path: Path) -> None:
    target = tmp_path / "tiny.xlsx"
    target.write_bytes(b"old")                             # the user's file: refused, untouched
    result = run("workbook", str(TINY), "-o", str(target), "--layout", "bids")
    assert result.exit_code == 2, result.output
    assert "not a workbook Envelope wrote" in result.output
    assert target.read_bytes() == b"old"
    target.unlink()
    assert run("workbook", str(TINY), "-o", str(target), "--layout", "tables").exit_code == 0
    assert run("workbook", str(TINY), "-o", str(target), "--layout", "bids").exit_code == 0
    assert "bids" in load_workbook(target).sheetnames     # a workbook Envelope wrote is replaced
    (tmp_path / "folder.xlsx").mkdir()
    for args, message in [(["-o", str(tmp_path / "folder.xlsx")], "is a directory"),
                          (["-o", str(tmp_path / "tiny.csv")], "ending in .xlsx")]:
        result = run("workbook", str(TINY), *args)
        assert result.exit_code == 2, result.output
        assert message in result.output
    result = run("workbook", str(tmp_path), "-o", str(tmp_path / "x.xlsx"))
    assert result.exit_code == 2
    assert "neither an instance folder" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.xlsx", "tiny.xlsx"]   # no temporary file left


def test_a_formula_whose_saved_result_is_empty_text_reads_as_an_empty_cell(tmp_path: Path) -> None:
    """Excel saves =IF(...,"",...) as t="str" with an empty value: an empty cell, not a missing value."""
    book = edited(tmp_path, cell("bids", 3, "group", '=IF(1=1,"","x")'))
    with zipfile.ZipFile(book) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    formula = re.compile(rb'<c r="([A-Z]+3)"([^>]*)><f>IF\(1=1,"","x"\)</f><v\s*(?:/>|></v>)')
    hits = [n for n, data in parts.items() if formula.search(data)]
    assert len(hits) == 1
    with pytest.raises(InputError, match="no saved value"):     # as openpyxl saved it: no value saved
        read_workbook(book)
    parts[hits[0]] = formula.sub(rb'<c r="\1" t="str"><f>IF(1=1,"","x")</f><v></v>', parts[hits[0]])
    with zipfile.ZipFile(book, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    inst = read_workbook(book)
    row = inst.projects.iloc[1]
    assert not isinstance(row["group"], str) or row["group"] == ""


def test_a_workbook_of_too_many_cells_is_refused_before_it_is_loaded(tmp_path: Path) -> None:
    """Cells are counted in the XML, in every part (a sheet may be stored under any name), before loading."""
    book = tmp_path / "many.xlsx"
    with zipfile.ZipFile(io.BytesIO(instance_workbook(TINY, "tables"))) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    parts["xl/elsewhere/extra.xml"] = b"<sheetData>" + b"<c/>" * 1_000_001 + b"</sheetData>"
    with zipfile.ZipFile(book, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    result = run("import", "xlsx", str(book), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert "more than the 1,000,000 cells a workbook may hold" in result.output
    assert not (tmp_path / "out").exists()
