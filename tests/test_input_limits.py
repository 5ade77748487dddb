"""Input limits and Excel habits (issue 8): reading a CSV file takes memory bounded by a small multiple of
its size, cell by cell with the same messages as the row model (the vectorised checks are compared with
the row-by-row path), ';'- and tab-separated files get a hint, Excel's trailing empty columns are ignored,
numbers and booleans are trimmed alike, '1_000' is not a number, and TOML files are bounded in size, keys
and nesting."""

from __future__ import annotations

import codecs
import gc
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solver.data import readers
from solver.data.instance import MAX_TOML_BYTES, MAX_TOML_KEYS, read_toml
from solver.data.readers import (
    MAX_FILE_BYTES,
    TABLES,
    CostRow,
    ProjectRow,
    SystemRow,
    read_table,
    scan_csv,
    validate_frame,
)
from solver.errors import InputError
from tests.test_bad_input import SCENARIO, assert_one_message, run, run_command, tiny  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parent.parent


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def costs_text(n_projects: int, bad_at: int | None = None) -> str:
    lines = ["project_id,year_offset,capital,revenue\n"]
    for p in range(n_projects):
        for k in range(3):
            cap = "ten" if bad_at is not None and len(lines) == bad_at else f"{(p * 7 + k) % 997 / 8:.3f}"
            lines.append(f"P{p:07d},{k},{cap},{(p + k) % 13 * 0.25}\n")
    return "".join(lines)


def error_of(fn: object, *args: object) -> str:
    with pytest.raises(InputError) as info:
        fn(*args)  # type: ignore[operator]
    return str(info.value)


# --------------------------------------------------------------------------- chunked reading, same messages


def test_chunks_give_the_same_table_and_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "costs.csv", costs_text(50))
    whole = read_table(path, CostRow)
    monkeypatch.setattr(readers, "CHUNK_ROWS", 7)
    monkeypatch.setattr(readers.CsvTable.chunks, "__defaults__", (7,))
    pd.testing.assert_frame_equal(read_table(path, CostRow), whole)
    assert len(whole) == 150
    assert list(whole["_line"][:2]) == [2, 3]
    # a bad cell late in the file: its row and line, in a later chunk
    write(path, costs_text(50, bad_at=120))
    assert error_of(read_table, path, CostRow) == (f"{path}, row 120 (line 121), column capital: Input should be a "
                                                   "valid number, unable to parse string as a number (got 'ten')")


def test_a_duplicate_before_a_bad_cell_is_reported_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers.CsvTable.chunks, "__defaults__", (4,))
    text = costs_text(6).splitlines(keepends=True)
    text[9] = text[2]  # row 9 repeats row 2 (another chunk)
    text[14] = text[14].replace(",0.", ",x0.", 1)  # a bad cell after it
    path = write(tmp_path / "costs.csv", "".join(text))
    msg = error_of(read_table, path, CostRow)
    assert "row 9 (line 10), column project_id: duplicate project_id + year_offset P0000000/1 (first at row 2)" in msg
    parts = text[5].split(",")
    text[5] = ",".join([parts[0], "y", *parts[2:]])  # a bad cell before the duplicate wins
    write(path, "".join(text))
    assert "row 5 (line 6), column year_offset" in error_of(read_table, path, CostRow)


def test_reading_leaves_the_garbage_collector_on(tmp_path: Path) -> None:
    """Reading pauses the cyclic garbage collector; an error kept with its traceback must not keep it paused."""
    path = write(tmp_path / "costs.csv", costs_text(5, bad_at=4))
    with pytest.raises(InputError) as info:
        read_table(path, CostRow)
    assert info.value.row == 4
    assert gc.isenabled()


def test_utf8_error_position_across_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The byte named is the one a whole-file decode names (after a BOM), wherever the blocks split."""
    body = costs_text(3).encode()
    for bom in (b"", codecs.BOM_UTF8):
        for at in (10, 15, 16, 17, 40):
            data = bom + body[:at] + "é".encode()[:1] + body[at:]
            path = tmp_path / "costs.csv"
            path.write_bytes(data)
            try:
                data.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                expected = f"not UTF-8 text ({exc.reason} at byte {exc.start})"
            for block in (16, 17, 1 << 20):
                monkeypatch.setattr(readers, "_BLOCK_BYTES", block)
                assert error_of(read_table, path, CostRow).endswith(expected), (bom, at, block)


def test_size_limit_is_stated_in_memory_terms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "costs.csv", costs_text(20))
    monkeypatch.setattr(readers, "MAX_FILE_BYTES", 100)
    msg = error_of(scan_csv, path, CostRow)
    assert "file is larger than 0 MiB" in msg
    assert "5× its size in memory" in msg
    assert MAX_FILE_BYTES == 200 * 2**20


@pytest.mark.slow
def test_peak_memory_is_bounded_by_five_times_the_file(tmp_path: Path) -> None:
    """A ~24 MiB costs.csv (valid, then with a bad cell near the end) is read in a child process whose peak RSS
    grows by at most 5× the file's size (it grew 28-33× before)."""
    path = tmp_path / "costs.csv"
    with path.open("w", newline="") as f:
        for block in range(10):
            f.write(costs_text(33_000)[0 if block == 0 else 39:].replace("P0", f"Q{block}"))
    size = path.stat().st_size
    script = textwrap.dedent(f"""
        import resource, sys
        from pathlib import Path
        from solver.data.readers import CostRow, read_table
        from solver.errors import InputError
        read_table(Path({str(ROOT / "instances" / "tiny" / "costs.csv")!r}), CostRow)  # warm up: lazy imports
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            print(len(read_table(Path({str(path)!r}), CostRow)))
        except InputError as exc:
            print(exc)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
    """)
    for bad in (False, True):
        if bad:
            with path.open("a", newline="") as f:
                f.write("Z1,0,ten,1\nZ2,0,1,1\n")
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                              cwd=ROOT, check=True)
        first, grew = done.stdout.split("\n")[:2]
        assert ("column capital: Input should be a valid number" in first) if bad else first == "990000", first
        assert int(grew) <= 5 * size, (int(grew) / size, first)


# --------------------------------------------------------------------------- fast checks = the row model

CELL = st.one_of(
    st.text(st.sampled_from(list("0123456789+-.eE_ \t")), max_size=8),
    st.sampled_from(["", " ", "1", "0", "-0", "1.", ".5", "1e3", "1E+06", "0.0005", "1000000", "1000000.001", "2025",
                     "true", " False ", "YES", "no", "on", "t", "maybe", "nan", "inf", "1e400", "١", "\xa01.5",
                     "\x1c1", "1_000", "A", "B", " B ", "a b", "x" * 65, "é", "Alpha\u2028ICB", " A1\t", "\u3000A"]),
    st.text(max_size=6),
)


@st.composite
def table_cells(draw: st.DrawFn) -> tuple[type, list[str], list[list[str]]]:
    model = draw(st.sampled_from([SystemRow, ProjectRow, CostRow]))
    columns = list(model.model_fields)
    rows = draw(st.lists(st.lists(CELL, min_size=len(columns), max_size=len(columns)), min_size=1, max_size=6))
    return model, columns, rows


def outcome(model: type, frame: pd.DataFrame) -> object:
    try:
        return validate_frame(frame, model, "t.csv", None)
    except InputError as exc:
        return str(exc)


@given(case=table_cells())
@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_vectorised_checks_agree_with_the_row_model(case: tuple[type, list[str], list[list[str]]]) -> None:
    """Every table and message is the same with the vectorised checks as with every row through pydantic."""
    model, columns, rows = case
    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    fast = outcome(model, frame)
    readers.FAST_CHECKS = False
    try:
        slow = outcome(model, frame)
    finally:
        readers.FAST_CHECKS = True
    if isinstance(fast, pd.DataFrame):
        assert isinstance(slow, pd.DataFrame), slow
        pd.testing.assert_frame_equal(fast, slow)
    else:
        assert fast == slow


def test_money_rounding_agrees_with_round() -> None:
    rng = np.random.default_rng(1)
    k = rng.integers(0, 10**9, 200_000)
    x = k / 1000.0 + rng.choice([0.0, 1e-12, -1e-12, 3e-10], k.size)
    got, ok = readers._numbers(readers._specs(CostRow)["capital"], x)
    assert ok.all()
    assert got.tolist() == [round(v, 3) for v in x.tolist()]


# --------------------------------------------------------------------------- Excel habits


@pytest.mark.parametrize(("sep", "what"), [(";", "';'-separated"), ("\t", "tab-separated")])
def test_other_separators_get_a_hint(tiny: Path, sep: str, what: str) -> None:  # noqa: F811
    path = tiny / "envelope.csv"
    path.write_text(path.read_text().replace(",", sep).replace(".", ","))
    result, out = run_command("validate", tiny)
    message = assert_one_message(result, out)
    assert f"envelope.csv: looks like {what}: save as comma-separated CSV" in message


def test_trailing_empty_columns_are_ignored(tiny: Path) -> None:  # noqa: F811
    path = tiny / "costs.csv"
    lines = path.read_text().splitlines()
    # Excel: empty header cells at the end and the matching empty cells (rows past the 16th may lose them)
    path.write_text("\n".join([lines[0] + ",,"] + [ln + (",," if i % 2 else ",") for i, ln in enumerate(lines[1:])])
                    + "\n")
    result = run("validate", tiny / SCENARIO)
    assert result.exit_code == 0, result.stderr
    lines[3] += ",,x"
    path.write_text("\n".join([lines[0] + ",,"] + lines[1:]) + "\n")
    result, out = run_command("validate", tiny)
    assert "costs.csv, row 3 (line 4), column #6: has a value in column #6, which has no header" in \
        assert_one_message(result, out)


def test_padded_numbers_and_booleans_are_trimmed_alike() -> None:
    frame = pd.DataFrame({"project_id": [" a "], "year_offset": ["\t0 "], "capital": ["\xa01.5\u3000"],
                          "revenue": [" 2 "]})
    got = validate_frame(frame, CostRow, "t")
    assert got.iloc[0][["project_id", "year_offset", "capital", "revenue"]].tolist() == ["a", 0, 1.5, 2.0]
    rows = validate_frame(pd.DataFrame({"m": [" false ", "\tTRUE\xa0", " yes", "No "]}).rename(
        columns={"m": "mandatory"}), _one(ProjectRow, "mandatory"), "t")
    assert rows["mandatory"].tolist() == [False, True, True, False]
    msg = error_of(validate_frame, pd.DataFrame({"mandatory": [" maybe "]}), _one(ProjectRow, "mandatory"), "t")
    assert msg == "t, row 1, column mandatory: Input should be a valid boolean, unable to interpret input " \
                  "(got ' maybe ')"


def _one(model: type, field: str) -> type:
    """A row model with one field of ``model``."""
    from pydantic import create_model

    info = model.model_fields[field]
    return create_model("One", __base__=readers._Row, **{field: (info.annotation, info)})


@pytest.mark.parametrize(("cell", "kind"), [("1_000", "number"), ("1_5", "number"), ("2_0_2_5", "integer")])
def test_digit_separators_are_not_numbers(cell: str, kind: str) -> None:
    column = "capital" if kind == "number" else "year_offset"
    frame = pd.DataFrame({"project_id": ["a"], "year_offset": ["0"], "capital": ["1"], "revenue": ["1"]})
    frame[column] = [cell]
    msg = error_of(validate_frame, frame, CostRow, "t")
    assert msg == f"t, row 1, column {column}: Input should be a valid {kind}, written without '_' between " \
                  f"digits (got '{cell}')"


def test_an_earlier_column_error_comes_before_a_digit_separator() -> None:
    frame = pd.DataFrame({"project_id": ["a b"], "year_offset": ["0"], "capital": ["1_0"], "revenue": ["1"]})
    assert "column project_id: String should match pattern" in error_of(validate_frame, frame, CostRow, "t")


def test_every_boolean_word_is_documented() -> None:
    doc = (ROOT / "docs" / "scenario-format.md").read_text(encoding="utf-8")
    for word in readers.BOOLEAN_WORDS:
        assert f"`{word}`" in doc, word
    assert set(TABLES.values()) >= {CostRow, ProjectRow, SystemRow}


# --------------------------------------------------------------------------- TOML limits


def test_toml_too_large_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("".join(f"k{i} = 1\n" for i in range(MAX_TOML_BYTES // 8 + 10)))
    assert "file is larger than 1024 KiB" in error_of(read_toml, path)


def test_toml_with_too_many_keys_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("[a]\n" + "".join(f"k{i}=1\n" for i in range(MAX_TOML_KEYS + 1)))
    assert f"has more than {MAX_TOML_KEYS:,} keys" in error_of(read_toml, path)


@pytest.mark.parametrize("nest", ["a = " + "[" * 600 + "]" * 600, "a = " + "{b = " * 600 + "1" + "}" * 600])
def test_deep_toml_nesting_is_bad_input(tiny: Path, nest: str) -> None:  # noqa: F811
    path = tiny / SCENARIO
    path.write_text(nest + "\n" + path.read_text())
    result, out = run_command("validate", tiny)
    assert "invalid TOML: tables or arrays nested too deeply" in assert_one_message(result, out)
