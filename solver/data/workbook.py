"""Instance workbooks (``.xlsx``): read an instance from a spreadsheet, write one as a spreadsheet.

Two layouts, told apart by their sheet names (docs/spreadsheets.md):

- *tables*: one sheet per instance table, named and with columns as the CSV files of an instance folder
  (``systems``, ``organisations``, ``projects``, ``costs``, ``dependencies``, ``envelope``, ``ballots``), plus
  an ``instance`` sheet of key/value rows holding what ``instance.toml`` holds.
- *bids*: one ``bids`` sheet in the wide layout planners use (one row per project; its cost profile as
  ``capital_y1``, ``revenue_y1``, ``capital_y2``, … — years counted from the project's start, so ``_y1`` is
  costs.csv's ``year_offset`` 0; its dependencies in one ``requires`` cell), an ``envelope`` sheet and optional
  ``organisations``, ``systems`` and ``instance`` sheets (organisations and systems may come from a reference
  instance folder instead).

Every cell goes through the one validation path, ``validate_tables``: the sheets become frames of text cells (as
a CSV file gives them) with each row's Excel row number in ``_row``, each table named ``"book.xlsx, sheet
'bids'"``; its messages are then given the column's header and letter (``column 'benefit' (G)``) and, where one
sheet row makes several table rows (a bid's cost years, its dependencies), the sheet row. What only a workbook
can get wrong (not an xlsx file, a missing sheet, a header, a formula without a saved value, an error cell, a date
where a number belongs, merged cells, its size) is checked here, in the same words.

Writing gives bytes (the command line writes them atomically, ``solver.present.outputs.write_file``). Text cells stay
text (a name ``=1+1`` is stored as text, never as a formula), and the bytes of a workbook are deterministic
(fixed timestamps). Nothing here touches a solver or the presentation layer.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from solver.data.importers import Imported, toml_string
from solver.data.instance import (
    ALL_TABLE_MODELS,
    Instance,
    load_instance,
    read_toml,
    validate_tables,
)
from solver.data.readers import (
    BOOLEAN_WORDS,
    MAX_FILE_BYTES,
    ProjectRow,
    _specs,
    parse_csv,
    safe_text,
    validate_frame,
)
from solver.errors import InputError

#: The largest workbook read (the file), and the most text its sheets may unpack to (their XML and shared
#: strings): a workbook is read whole, at about 10-20 times its sheets' XML in memory, so this keeps reading one
#: under about 1-2 GiB, as ``MAX_FILE_BYTES`` does for a CSV table.
MAX_WORKBOOK_BYTES = 50 * 1024 * 1024
MAX_UNPACKED_BYTES = MAX_FILE_BYTES // 2
#: The most cells a sheet's used range (row 1 to its last row, column A to its last column) may span: a sheet is
#: read cell by cell over that range, so a stray value far below or to the right of the table would cost memory.
MAX_SHEET_CELLS = 3_000_000
#: Cells a whole workbook may hold, counted in its XML before it is loaded (openpyxl keeps each cell as an
#: object, roughly 1 KB with the parsing: a million cells is under about 1 GiB).
MAX_WORKBOOK_CELLS = 1_000_000
#: Excel's own limits: rows and columns of a sheet, characters of a cell, characters of a sheet name.
EXCEL_ROWS = 1_048_576
EXCEL_COLUMNS = 16_384
EXCEL_CELL_CHARS = 32_767
SHEET_NAME_CHARS = 31
#: Number formats: money (£m, to the £k), a share (a fraction shown as a percentage).
MONEY_FORMAT = "#,##0.000"
SHARE_FORMAT = "0.0%"
#: The workbook's created/modified time and its zip entries' time: fixed, so equal content gives equal bytes.
FIXED_TIME = dt.datetime(2000, 1, 1)

LAYOUTS = ("tables", "bids")
#: The sheets of the tables layout that must be there (the others may be left out).
REQUIRED_SHEETS = ("systems", "projects", "costs", "envelope")
#: Sheets the reader never reads (explanations for people).
IGNORED_SHEETS = ("readme",)
#: The bids sheet's columns besides the project's own (the ``ProjectRow`` fields) and the cost years.
BIDS_COLUMNS = ("project_id", "org_id", "system_id", "name", "kind", "platform", "benefit", "earliest_start",
                "latest_start", "duration_years", "run_cost", "savings", "match_share", "mandatory",
                "committed_start", "withdrawal_cost", "group", "requires")
#: Readable header spellings of a bids column.
ALIASES = {"org_code": "org_id", "organisation_code": "org_id", "organization_code": "org_id",
           "organisation_id": "org_id", "system_code": "system_id"}
_COST = re.compile(r"(capital|revenue)_?y(?:ear)?_?(\d+)")
#: The most cost years a bid can have (costs.csv's year_offset is at most 30).
MAX_COST_YEARS = 31
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: Characters an .xlsx cell cannot hold (XML 1.0), and a carriage return (XML reads it back as a line feed).
_ILLEGAL = re.compile(r"[\x00-\x08\x0b-\x1f]")

#: What each column means, in plain words (the README sheet of a written workbook, and docs/spreadsheets.md).
MEANINGS: dict[str, str] = {
    "project_id": "A short unique code for the bid (letters, digits, '-', '_', '.'), e.g. EPR-RA9.",
    "org_id": "The trust's ODS code, as in the organisations sheet (e.g. RA9). Leave empty for a bid made for "
              "a whole system (then fill system_id).",
    "system_id": "The ICB's code, as in the systems sheet. Leave empty when org_id is filled: it is taken from "
                 "the organisation.",
    "name": "What the bid is, in words.",
    "kind": "A free label grouping similar bids (epr_procurement, cyber, digitisation, ...).",
    "platform": "The platform (e.g. EPR supplier) the bid installs or extends; empty if none. A system keeps "
                "to one platform under the default policy.",
    "benefit": "Benefit points per year once the project is live (0 or more).",
    "earliest_start": "First year the project may start (2026 = 2026/27). Empty: the first envelope year.",
    "latest_start": "Last year the project may start. Empty: the last envelope year.",
    "duration_years": "Years from start to go-live (0 = live in its first year).",
    "run_cost": "Running cost per year once live, £m.",
    "savings": "Cash-releasing savings per year once live, £m.",
    "match_share": "Share of each year's cost the system pays locally (0 to 1; 0.2 = 20%).",
    "mandatory": "TRUE if the bid must be funded.",
    "committed_start": "The start year of a signed commitment (MoU); empty if none.",
    "withdrawal_cost": "What withdrawing a signed commitment costs, £m.",
    "group": "Alternatives: at most one bid with the same group code is funded.",
    "requires": "Bids (or groups) this bid needs first, e.g. EPR-RA9, or EPR-RA9:1 to start at least one year "
                "after it; several separated by ';'. Empty if none.",
    "capital_yN": "Capital cost in the bid's Nth year, £m: capital_y1 is the year it starts, capital_y2 the "
                  "year after, ... Leave the years after the last one empty.",
    "revenue_yN": "Revenue (non-capital) cost in the bid's Nth year, £m, counted like capital_yN. An empty cell "
                  "next to a filled capital cell is 0.",
    "year": "The year (2026 = the financial year 2026/27).",
    "capital": "Capital, £m.",
    "revenue": "Revenue, £m.",
    "category": "Digital maturity: 0 = no EPR, 1 = business case stage, 2 = extend or optimise, 3 = mature.",
    "org_type": "Type of organisation (acute, mental_health, ...).",
    "region": "Region.",
    "population": "Registered population (empty: the weighted population).",
    "weighted_population": "Needs-weighted population: fair shares are proportional to it.",
    "need_index": "Weighted over raw population relative to England (1 = average).",
    "imd_score": "Index of multiple deprivation score (reported only).",
    "local_capital": "Capital the system can put up each year as local match, £m.",
    "revenue_headroom": "Revenue the system can afford each year for local shares, run costs and fees, £m.",
    "year_offset": "Year of the project's cost profile counted from its start: 0 = the start year.",
    "lag_years": "Years after the required project's start before this one may start.",
    "voter_id": "A voter (participatory budgeting).",
    "utility": "The voter's points for the project (1 for an approval).",
}


#: The first rows of a written workbook's README sheet.
README_INTRO = {
    "bids": [
        "Envelope bids workbook. Envelope reads the sheets bids, envelope, organisations, systems and instance; it "
        "ignores this README sheet and any other sheet.",
        "bids: one row per bid. Fill project_id, org_id (the trust's code from the organisations sheet), benefit "
        "and the cost years; leave a cell empty to take its default where the column's meaning gives one.",
        "Costs: capital_y1 and revenue_y1 are the bid's first year (the year it starts), capital_y2 and revenue_y2 "
        "its second year, and so on; add columns capital_y5, revenue_y5, ... for longer bids.",
        "envelope: the national money per year (capital and revenue, £m). instance: the name and years of the "
        "instance.",
        "Money is in £m with at most 3 decimals (£k). Years name the first calendar year of a financial year "
        "(2026 = 2026/27). Type values: formulas are read by their saved value, and a date is never a number.",
        "Import: envelope import xlsx THIS.xlsx -o FOLDER, then envelope solve FOLDER/scenario.toml "
        "(docs/spreadsheets.md).",
    ],
    "tables": [
        "Envelope instance workbook, tables layout: one sheet per table of an instance folder (the CSV files), "
        "with the same columns, and the instance sheet for instance.toml. This README sheet is ignored.",
        "Money is in £m with at most 3 decimals (£k). Years name the first calendar year of a financial year "
        "(2026 = 2026/27). Import: envelope import xlsx THIS.xlsx -o FOLDER (docs/spreadsheets.md).",
    ],
}


# --------------------------------------------------------------------------- writing files and workbooks


def is_envelope_workbook(path: str | Path) -> bool:
    """Whether the file at ``path`` is an .xlsx workbook Envelope wrote and nobody has saved since: its creator is
    Envelope, its modified time still Envelope's fixed stamp and no one is named as its last editor (Excel,
    LibreOffice and openpyxl all set those on saving). Only such a file may be replaced by a later run; any other
    file — a template a planner filled in and saved, above all — is the user's."""
    try:
        with zipfile.ZipFile(path) as book:
            core = book.read("docProps/core.xml")
    except (OSError, KeyError, zipfile.BadZipFile):
        return False
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    return (re.search(rb"<dc:creator>Envelope</dc:creator>", core) is not None
            and re.search(rb"<dcterms:modified[^>]*>" + re.escape(stamp) + rb"<", core) is not None
            and b"lastModifiedBy" not in core)


def new_workbook() -> Any:
    """An empty workbook with fixed properties, built in memory: openpyxl's write-only mode keeps each sheet in a
    temporary file of its own, which a killed run would leave behind."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    wb.properties.creator = "Envelope"
    wb.properties.created = FIXED_TIME
    return wb


def sheet_title(name: str, taken: set[str]) -> str:
    """An Excel-legal, unique sheet name for ``name``: ``[]:*?/\\`` as '_', no leading or trailing apostrophe, at
    most 31 characters, unique ignoring case (a clash gets ``~2``, ``~3`` ...); ``taken`` (lower case) is
    updated."""
    base = re.sub(r"[\[\]:*?/\\]", "_", _ILLEGAL.sub("_", name)).strip("'").strip() or "sheet"
    if base.lower() == "history":  # reserved by Excel
        base = "history_"
    title = base[:SHEET_NAME_CHARS]
    n = 1
    while title.lower() in taken:
        n += 1
        suffix = f"~{n}"
        title = base[:SHEET_NAME_CHARS - len(suffix)] + suffix
    taken.add(title.lower())
    return title


def excel_value(value: Any) -> Any:
    """A Python or numpy value as a value a cell holds: None for missing (NaN, NA), Python numbers and booleans,
    text as is; lists and dicts as compact JSON; anything else as its text."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict | list | tuple):
        import json

        return json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.isoformat()
    if isinstance(value, dt.date | dt.datetime):
        return value
    return str(value)


class _Unstorable(ValueError):
    """A text an .xlsx cell cannot hold (a control character, or longer than Excel allows)."""


def _storable(value: Any, strict: bool = True) -> Any:
    """``value`` as a cell can hold it. ``strict``: a text a cell cannot hold raises ``_Unstorable``; otherwise its
    control characters are shown as escapes and it is shortened."""
    if isinstance(value, str) and (_ILLEGAL.search(value) or len(value) > EXCEL_CELL_CHARS):
        if strict:
            raise _Unstorable(value)
        value = _ILLEGAL.sub(lambda m: safe_text(m.group()), value)
        if len(value) > EXCEL_CELL_CHARS:
            value = value[:EXCEL_CELL_CHARS - 1] + "…"
    return value


def _append(ws: Any, values: list[Any], formats: dict[int, str], bold: bool = False) -> None:
    """One row at the end of ``ws``: text stored as text, never as a formula; ``formats`` on its number cells."""
    from openpyxl.styles import Font

    ws.append(values)
    font = Font(bold=True) if bold else None
    for j, (cell, value) in enumerate(zip(ws[ws.max_row], values)):
        if isinstance(value, str):
            cell.data_type = "s"  # openpyxl takes a text starting with '=' for a formula
        elif j in formats and isinstance(value, int | float) and not isinstance(value, bool):
            cell.number_format = formats[j]
        if font is not None:
            cell.font = font


def _width(values: Iterable[Any]) -> float:
    longest = 0
    for v in values:
        if v is None:
            continue
        text = f"{v:,.3f}" if isinstance(v, float) else str(v)
        longest = max(longest, max((len(line) for line in text.split("\n")), default=0))
    return float(min(max(longest + 2, 8), 60))


def add_sheet(wb: Any, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
              formats: dict[int, str] | None = None, *, autofilter: bool = True, strict: bool = True,
              on_unstorable: Any = None) -> None:
    """One table as a sheet: a bold, frozen header row (``freeze_panes`` A2), column widths from the contents,
    ``formats`` (column position → number format) on the number cells, an autofilter. ``rows`` hold cell values
    (``excel_value``). A text that a cell cannot hold raises ``on_unstorable(row position, column position)``
    when ``strict``; otherwise it is shown with escapes."""
    from openpyxl.utils import get_column_letter

    if len(rows) + 1 > EXCEL_ROWS or len(columns) > EXCEL_COLUMNS:
        raise InputError(None, f"table {title} has {len(rows):,} rows and {len(columns):,} columns; an Excel sheet "
                               f"holds at most {EXCEL_ROWS - 1:,} rows under its header and {EXCEL_COLUMNS:,} "
                               "columns")
    formats = formats or {}
    ws = wb.create_sheet(title)
    sample = rows[:500]
    for j, name in enumerate(columns):
        ws.column_dimensions[get_column_letter(j + 1)].width = _width([name, *(r[j] for r in sample)])
    ws.freeze_panes = "A2"
    if autofilter and columns:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(rows) + 1}"
    _append(ws, [_storable(str(name), strict=False) for name in columns], {}, bold=True)
    for i, row in enumerate(rows):
        cells = []
        for j, v in enumerate(row):
            try:
                cells.append(_storable(v, strict=strict))
            except _Unstorable:
                if on_unstorable is not None:
                    raise on_unstorable(i, j) from None
                raise
        _append(ws, cells, formats)


def to_bytes(wb: Any) -> bytes:
    """The workbook as ``.xlsx`` bytes, the same for the same content: fixed created and modified times and zip
    entry times."""
    raw = io.BytesIO()
    wb.save(raw)
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + stamp, data)
            entry = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            entry.external_attr = 0o600 << 16
            dst.writestr(entry, data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


# --------------------------------------------------------------------------- instance → workbook


def number_text(value: float | int) -> str:
    """A number as a CSV file would hold it: integers without a decimal point (``2026``, not ``2026.0``), other
    numbers in their shortest exact form without an exponent (``0.676``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) < 2**63:
        return str(int(value))
    return np.format_float_positional(value, unique=True, trim="-")


def _kind(model: Any, column: str) -> str:
    spec = _specs(model).get(column)
    return spec.kind if spec is not None else "text"


def _from_text(text: Any, kind: str) -> Any:
    """A CSV cell's text as the value a sheet shows: numbers and booleans as such, the rest as text."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    t = text.strip()
    if kind == "bool":
        got = BOOLEAN_WORDS.get(t.lower())
        return got if got is not None else text
    if kind in ("int", "float"):
        if re.fullmatch(r"[+-]?\d{1,15}", t):
            return int(t)
        try:
            x = float(t)
        except ValueError:
            return text
        return x if math.isfinite(x) else text
    return text


@dataclass
class _Book:
    """An instance as sheets: ``instance.toml``'s content and each table's cell values (its columns in order)."""

    meta: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    instance: Instance


def _source(source: str | Path | Instance) -> _Book:
    if isinstance(source, Instance):
        inst = source
        meta = {"name": inst.name, "description": inst.description, "currency": "GBPm", "years": list(inst.years),
                "synthetic": "", "sources": dict(inst.sources)}
        tables = {}
        for name in ALL_TABLE_MODELS:
            frame = getattr(inst, name)
            if name == "ballots" and frame.empty:
                continue
            tables[name] = frame[[c for c in ALL_TABLE_MODELS[name][0].model_fields if c in frame.columns]]
        return _Book(meta, tables, inst)
    folder = Path(source)
    inst = load_instance(folder)
    meta = read_toml(folder / "instance.toml")
    tables = {}
    for name, (model, _) in ALL_TABLE_MODELS.items():
        path = folder / f"{name}.csv"
        if not path.is_file():
            continue
        raw = parse_csv(path, model).drop(columns=["_row", "_line"])
        tables[name] = pd.DataFrame({c: pd.Series([_from_text(v, _kind(model, c)) for v in raw[c]], dtype=object)
                                     for c in raw.columns}, columns=raw.columns)
    return _Book(meta, tables, inst)


def _formats(model: Any, columns: Sequence[str]) -> dict[int, str]:
    specs = _specs(model)
    out = {}
    for j, c in enumerate(columns):
        spec = specs.get(c)
        if spec is not None and spec.money:
            out[j] = MONEY_FORMAT
        elif c == "match_share":
            out[j] = SHARE_FORMAT
    return out


def sheet_rows(frame: pd.DataFrame) -> list[list[Any]]:
    """A table's rows as cell values for ``add_sheet``."""
    return [[excel_value(v) for v in row] for row in frame.itertuples(index=False, name=None)]


def _unstorable(table: str, frame_columns: Sequence[str]) -> Any:
    def error(i: int, j: int) -> InputError:
        return InputError(table, f"has a control character or is longer than {EXCEL_CELL_CHARS:,} characters, which an "
                                 ".xlsx cell cannot hold", row=i + 1, column=str(frame_columns[j]))
    return error


def _table_sheet(wb: Any, taken: set[str], name: str, frame: pd.DataFrame, where: str) -> None:
    model = ALL_TABLE_MODELS[name][0]
    columns = list(frame.columns)
    add_sheet(wb, sheet_title(name, taken), columns, sheet_rows(frame), _formats(model, columns),
              on_unstorable=_unstorable(f"{where}/{name}", columns))


def _instance_rows(meta: dict[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = [["name", meta.get("name", "")], ["description", meta.get("description", "")],
                             ["currency", meta.get("currency", "GBPm")],
                             ["years", ", ".join(str(int(y)) for y in meta.get("years", []))],
                             ["synthetic", meta.get("synthetic", "")]]
    rows += [[f"sources.{k}", str(v)] for k, v in dict(meta.get("sources", {})).items()]
    return rows


def _readme_rows(layout: str, columns: dict[str, Sequence[str]]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for sheet, cols in columns.items():
        for c in cols:
            key = re.sub(r"(capital|revenue)_y\d+", r"\1_yN", c)
            rows.append([sheet, c, MEANINGS.get(key, "")])
    return rows


def instance_workbook(source: str | Path | Instance, layout: str = "tables",
                      meta: dict[str, Any] | None = None) -> bytes:
    """An instance (a folder, or a loaded ``Instance``) as ``.xlsx`` bytes in ``layout`` (``tables`` or ``bids``;
    see the module notes). A folder's tables are written as its CSV files hold them (the columns it has, in its
    order); an ``Instance`` writes every column. ``meta`` replaces the source's ``instance.toml`` content (an
    ``Instance`` has no ``synthetic`` note). A README sheet says what each column means."""
    if layout not in LAYOUTS:
        raise InputError(None, f"option --layout: must be tables or bids (got {layout!r})")
    book = _source(source)
    if meta is not None:
        book.meta = dict(meta)
    where = str(source.root) if isinstance(source, Instance) else str(source)
    wb = new_workbook()
    taken: set[str] = set()
    described: dict[str, Sequence[str]] = {}
    if layout == "bids":
        columns, rows = _bids_rows(book.instance)
        formats = {j: MONEY_FORMAT for j, c in enumerate(columns) if _COST.fullmatch(c)}
        formats.update(_formats(ProjectRow, columns))
        add_sheet(wb, sheet_title("bids", taken), columns, rows, formats,
                  on_unstorable=_unstorable(f"{where}/projects", columns))
        described["bids"] = columns
        names = [n for n in ("envelope", "organisations", "systems") if n in book.tables]
    else:
        names = [n for n in ALL_TABLE_MODELS if n in book.tables]
    for name in names:
        _table_sheet(wb, taken, name, book.tables[name], where)
        described[name] = list(book.tables[name].columns)
    add_sheet(wb, sheet_title("instance", taken), ["key", "value"], _instance_rows(book.meta), autofilter=False,
              on_unstorable=lambda i, j: InputError(f"{where}/instance.toml", "a value has a control character or "
                                                    "is too long for an .xlsx cell", row=i + 1))
    intro = [["", "", line] for line in README_INTRO[layout]]
    add_sheet(wb, sheet_title("README", taken), ["sheet", "column", "meaning"],
              intro + _readme_rows(layout, described), autofilter=False, strict=False)
    return to_bytes(wb)


def _bids_rows(inst: Instance) -> tuple[list[str], list[list[Any]]]:
    """The bids sheet of an instance: one row per project, its dependencies in ``requires`` and its cost
    profile as ``capital_yN``/``revenue_yN`` (N = year_offset + 1; years the profile leaves out stay empty)."""
    pr = inst.projects
    fields = [c for c in BIDS_COLUMNS if c in ProjectRow.model_fields]
    if pr["org_id"].notna().all():
        fields.remove("system_id")  # every bid names its trust: the system follows from it
    costs: dict[str, dict[int, tuple[float, float]]] = {}
    for pid, off, cap, rev in inst.costs[["project_id", "year_offset", "capital", "revenue"]].itertuples(
            index=False, name=None):
        costs.setdefault(pid, {})[int(off)] = (float(cap), float(rev))
    years = max((max(p) + 1 for p in costs.values()), default=1)
    requires: dict[str, list[str]] = {}
    for pid, req, lag in inst.dependencies[["project_id", "requires", "lag_years"]].itertuples(index=False, name=None):
        requires.setdefault(pid, []).append(req if int(lag) == 0 else f"{req}:{int(lag)}")
    columns = [*fields, "requires"] + [f"{pot}_y{k + 1}" for k in range(years) for pot in ("capital", "revenue")]
    rows = []
    for rec in pr[fields].itertuples(index=False, name=None):
        row = [excel_value(v) for v in rec]
        pid = rec[0]
        row.append("; ".join(requires.get(pid, [])) or None)
        profile = costs.get(pid, {})
        for k in range(years):
            row += list(profile[k]) if k in profile else [None, None]
        rows.append(row)
    return columns, rows


# --------------------------------------------------------------------------- reading a workbook


def _header_key(text: str) -> str:
    """A header as a column name: trimmed, lower case, runs of spaces and hyphens as '_' (``Capital Y1`` →
    ``capital_y1``)."""
    return re.sub(r"[\s\-]+", "_", text.strip().lower())


@dataclass
class _Sheet:
    """One sheet's table: its header (as written, as a column name, and the column letters) and its non-blank
    rows as text cells (as a CSV file would hold them: None for an empty cell)."""

    title: str
    label: str
    shown: list[str]
    names: list[str]
    letters: list[str]
    rows: list[int] = field(default_factory=list)
    cells: list[list[str | None]] = field(default_factory=list)

    def where(self, j: int) -> str:
        return f"'{safe_text(self.shown[j])}' ({self.letters[j]})"

    def frame(self, columns: dict[str, int] | None = None) -> pd.DataFrame:
        """The sheet as a frame of text cells (``columns``: name → position; default every column) with
        ``_row``."""
        columns = columns if columns is not None else {n: j for j, n in enumerate(self.names)}
        data = {n: pd.Series([r[j] for r in self.cells], dtype=object) for n, j in columns.items()}
        data["_row"] = pd.Series(self.rows, dtype=np.int64)
        return pd.DataFrame(data, columns=[*columns, "_row"])


class _Cached:
    """The saved values of formula cells (read on first use: a second, read-only pass over the workbook)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.book: Any = None

    def values(self, title: str, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], tuple[Any, str]]:
        from openpyxl import load_workbook

        if self.book is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.book = load_workbook(io.BytesIO(self.data), read_only=True, data_only=True)
        ws = self.book[title]
        out: dict[tuple[int, int], tuple[Any, str]] = {}
        last = max(r for r, _ in wanted)
        for r, row in enumerate(ws.iter_rows(min_row=1, max_row=last), start=1):
            for c, cell in enumerate(row, start=1):
                if (r, c) in wanted:
                    out[(r, c)] = (cell.value, getattr(cell, "data_type", "n"))
        return out


_CELL = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c[\s/>]")


def _count_cells(data: bytes, infos: list[zipfile.ZipInfo], path: Path) -> int:
    """Cell elements in every part of the workbook (a sheet may be stored under any name), counted while streaming
    it, before anything is loaded; stops once past the limit."""
    total = 0
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in infos:
            if info.is_dir():
                continue
            try:
                with z.open(info) as part:
                    carry = b""
                    while True:
                        chunk = part.read(1 << 20)
                        block = carry + chunk
                        if not chunk:
                            total += len(_CELL.findall(block))
                            break
                        edge = max(len(block) - 64, 0)   # a tag cut by the chunk's end: counted with the next
                        total += sum(1 for m in _CELL.finditer(block) if m.start() < edge)
                        carry = block[edge:]
                        if total > MAX_WORKBOOK_CELLS:
                            return total
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise InputError(path, f"is damaged: its part {info.filename} cannot be unpacked ({exc})") from None
    return total


def _open(path: Path) -> tuple[Any, _Cached]:
    """The workbook at ``path`` (every sheet read, formulas as formulas), after the file checks: found, size, an
    xlsx zip archive (not encrypted, not an old .xls, not a CSV renamed .xlsx), its unpacked size."""
    from openpyxl import load_workbook

    try:
        found = path.is_file()
    except OSError as exc:
        raise InputError(path, f"cannot read file ({exc.strerror})") from None
    if not found:
        raise InputError(path, "is a folder, not a workbook" if path.is_dir() else "file not found")
    size = path.stat().st_size
    if size > MAX_WORKBOOK_BYTES:
        raise InputError(path, f"file is larger than {MAX_WORKBOOK_BYTES // 2**20} MiB ({size / 2**20:,.0f} MiB); a "
                               "workbook is read whole, so the limit keeps reading one under about 1 GiB of memory: "
                               "use CSV files for larger instances")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot read file ({exc.strerror})") from None
    if data.startswith(_OLE):
        raise InputError(path, "is encrypted (password-protected) or an old .xls workbook: save it from Excel as "
                               "an .xlsx workbook without a password")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        what = "is empty" if not data else "is not an .xlsx workbook (an .xlsx file is a zip archive; is it a CSV or " \
                                           "a text file renamed .xlsx?)"
        raise InputError(path, what)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(path, f"is not a readable .xlsx workbook ({exc})") from None
    names = {i.filename for i in infos}
    if "xl/workbook.xml" not in names:
        raise InputError(path, "is a zip archive but not an .xlsx workbook (it has no xl/workbook.xml; an .ods or "
                               ".numbers file? save it as an Excel .xlsx workbook)")
    unpacked = sum(i.file_size for i in infos)        # every part: a sheet may live under any name
    if unpacked > MAX_UNPACKED_BYTES:
        raise InputError(path, f"it unpacks to {unpacked / 2**20:,.0f} MiB, more than the "
                               f"{MAX_UNPACKED_BYTES // 2**20} MiB a workbook may hold (reading one takes many "
                               "times that in memory): use CSV files for larger instances")
    cells = _count_cells(data, infos, path)
    if cells > MAX_WORKBOOK_CELLS:
        raise InputError(path, f"it holds more than the {MAX_WORKBOOK_CELLS:,} cells a workbook may hold "
                               "(a workbook is read whole, about 1 KB of memory a cell): clear stray cells, or use "
                               "CSV files for larger instances")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl's notes on features it does not read
            book = load_workbook(io.BytesIO(data), data_only=False, keep_links=False)
    except Exception as exc:  # a damaged or foreign file can fail anywhere in openpyxl
        raise InputError(path, f"cannot be read as an .xlsx workbook ({type(exc).__name__}: {exc})") from None
    return book, _Cached(data)


def _text(value: Any, data_type: str) -> str | None | tuple[str]:
    """A cell as the text a CSV file would hold (None: empty), or ``(problem,)``."""
    if value is None:
        return None
    if data_type == "e":
        return (f"holds the error {value}: correct the cell (or the formula it comes from) and save again",)
    if isinstance(value, dt.datetime | dt.date | dt.time | dt.timedelta):
        return (f"holds a date or time ({value}); a number or a text belongs here: format the cell as Number or "
                "Text and type the value again",)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number_text(value)
    return str(value)


def _read_sheet(ws: Any, path: Path, cached: _Cached) -> _Sheet:
    """One sheet's header and non-blank rows as text; the first problem (header, merged cells, formula without
    a saved value, error or date cell) raises ``InputError`` naming the sheet, row and column."""
    from openpyxl.utils import get_column_letter

    label = f"{path}, sheet '{ws.title}'"
    span = ws.max_row * ws.max_column
    if span > MAX_SHEET_CELLS:
        raise InputError(label, f"its used range runs to row {ws.max_row:,} and column "
                                f"{get_column_letter(ws.max_column)} ({span:,} cells, more than the "
                                f"{MAX_SHEET_CELLS:,} a sheet may span): is there a stray value far below or to the "
                                "right of the table? Clear it, or use CSV files for larger instances")
    rows = [list(r) for r in ws.iter_rows(min_row=1, max_row=ws.max_row, max_col=ws.max_column)]
    width = max((len(r) for r in rows), default=0)
    for rng in sorted(ws.merged_cells.ranges, key=lambda r: (r.min_row, r.min_col)):
        raise InputError(label, f"cells {rng.coord} are merged; a merged cell keeps its value only in its first "
                                "cell, so the other rows or columns would lose it: unmerge them and fill every cell",
                         row=rng.min_row, column=get_column_letter(rng.min_col))
    formulas = {(c.row, c.column) for r in rows for c in r if c.data_type == "f"}
    saved = cached.values(ws.title, formulas) if formulas else {}

    shown: dict[int, str] = {}  # column number → how messages name it (its header and letter, once known)

    def value(c: Any) -> str | None:
        where = shown.get(c.column, get_column_letter(c.column))
        v, t = (saved.get((c.row, c.column), (None, "n")) if c.data_type == "f" else (c.value, c.data_type))
        if c.data_type == "f" and v is None and t == "str":
            v = ""      # a formula whose saved result is empty text, e.g. =IF(...,"",...)
        if c.data_type == "f" and v is None:
            formula = str(getattr(c.value, "text", c.value))
            raise InputError(label, f"holds a formula ({safe_text(formula[:60])}) with no saved value: open and save "
                                    "the workbook in Excel or LibreOffice so its value is calculated, or type the "
                                    "value", row=c.row, column=where)
        got = _text(v, t)
        if isinstance(got, tuple):
            raise InputError(label, got[0], row=c.row, column=where)
        return got

    header = [value(c) for c in rows[0]] if rows else []
    header += [None] * (width - len(header))
    keep = [j for j, h in enumerate(header) if h is not None and h.strip()]
    sheet = _Sheet(ws.title, label, [header[j].strip() for j in keep], [_header_key(header[j]) for j in keep],
                   [get_column_letter(j + 1) for j in keep])
    shown.update({j + 1: sheet.where(k) for k, j in enumerate(keep)})
    seen: dict[str, int] = {}
    for k, name in enumerate(sheet.names):
        if name in seen:
            raise InputError(label, f"column {sheet.where(k)} repeats the header of column {sheet.where(seen[name])}",
                             row=1, column=sheet.where(k))
        seen[name] = k
    dropped = [j for j in range(width) if j not in set(keep)]
    for r in rows[1:]:
        for j in dropped:
            if j < len(r) and (value(r[j]) or "").strip():
                raise InputError(label, "has a value in a column with no header: give the column a header, or "
                                        "clear it", row=r[j].row, column=get_column_letter(j + 1))
        texts = [value(r[j]) if j < len(r) else None for j in keep]
        if all(t is None or not t.strip() for t in texts):
            continue
        sheet.rows.append(r[0].row if r else 0)
        sheet.cells.append(texts)
    return sheet


@dataclass
class _Where:
    """How a table's messages name the sheet: per table row (``_row``) the sheet row and its columns' names."""

    columns: dict[str, str]
    rows: dict[int, tuple[int, dict[str, str]]] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)   # instance sheet: key → sheet row


def _relabel(exc: InputError, places: dict[str, _Where], renames: dict[str, str]) -> InputError:
    """``exc`` from ``validate_tables`` in a workbook's terms: the sheet row and the column's header and letter."""
    where = places.get(str(exc.file))
    rule = exc.rule
    for old, new in renames.items():
        rule = rule.replace(old, new)
    if where is None:
        return InputError(exc.file, rule, row=exc.row, column=exc.column, line=exc.line)
    row, columns = exc.row, where.columns
    if row is not None and row in where.rows:
        row, columns = where.rows[row]
    rule = re.sub(r"\(first at row (\d+)\)",
                  lambda m: f"(first at row {where.rows.get(int(m[1]), (int(m[1]), {}))[0]})", rule)
    column = columns.get(exc.column, f"'{exc.column}'") if exc.column else None
    if where.keys and row is None:
        key = re.match(r"key '([^'\[]+)", rule)
        if key and key[1] in where.keys:
            row = where.keys[key[1]]
            column = columns.get("key" if "unknown key" in rule else "value")
    return InputError(exc.file, rule, row=row, column=column)


@dataclass(frozen=True)
class ImportedWorkbook(Imported):
    """An imported workbook: the instance folder it makes (``Imported``), already validated (``instance``)."""

    instance: Instance | None = None

    def validate(self) -> Instance:
        """The validated instance (checked when the workbook was read, with the workbook's sheet names)."""
        return self.instance if self.instance is not None else super().validate()


def read_workbook(path: str | Path, reference: str | Path | None = None) -> Instance:
    """The instance in the workbook at ``path`` (tables or bids layout), validated; ``reference`` is an instance
    folder whose organisations and systems a bids workbook without those sheets uses. ``InputError`` on the
    first problem, naming the workbook, sheet, row (as Excel numbers it) and column (header and letter)."""
    got = import_workbook(path, reference).instance
    assert got is not None
    return got


def import_workbook(path: str | Path, reference: str | Path | None = None) -> ImportedWorkbook:
    """A workbook as an instance folder to write (``instance.toml``, one CSV file per table, ``scenario.toml``
    with the need-first model), validated (see ``read_workbook``)."""
    path = Path(path)
    book, cached = _open(path)
    sheets = {ws.title.strip().lower(): ws for ws in book.worksheets}
    known = set(ALL_TABLE_MODELS) | {"instance", "bids"}
    for title in sheets:
        if title not in known and not title.startswith(IGNORED_SHEETS):
            import difflib

            near = difflib.get_close_matches(title, sorted(known), n=1, cutoff=0.8)
            if near:
                raise InputError(path, f"sheet '{safe_text(title)}' is not one Envelope reads; did you mean "
                                       f"'{near[0]}'? (other sheets, such as README, are ignored)")
    if "bids" in sheets:
        clash = [n for n in ("projects", "costs", "dependencies", "ballots") if n in sheets]
        if clash:
            raise InputError(path, f"has both a 'bids' sheet (bids layout) and a '{clash[0]}' sheet (tables layout); "
                                   "keep one layout")
        layout = "bids"
    elif "projects" in sheets:
        layout = "tables"
    else:
        raise InputError(path, "has neither a 'bids' sheet (bids layout) nor a 'projects' sheet (tables layout); "
                               f"its sheets: {', '.join(repr(ws.title) for ws in book.worksheets)}")
    read = {name: _read_sheet(ws, path, cached) for name, ws in sheets.items() if name in known}
    places: dict[str, _Where] = {}
    frames: dict[str, pd.DataFrame] = {}
    files: dict[str, str] = {}
    if layout == "tables":
        for name in REQUIRED_SHEETS:
            if name not in read:
                raise InputError(path, f"required sheet '{name}' is missing (the tables layout has the sheets "
                                       f"{', '.join(['instance', *ALL_TABLE_MODELS])}; organisations, dependencies, "
                                       "ballots and instance may be left out)")
        for name in ALL_TABLE_MODELS:
            if name in read:
                frames[name], places[read[name].label] = _table(read[name])
                files[name] = read[name].label
        renames = {f"{n}.csv": f"sheet '{n}'" for n in ALL_TABLE_MODELS}
        renames["required file is missing"] = "required sheet is missing"
    else:
        renames = _bids(path, read, reference, frames, places, files)
    for name in ALL_TABLE_MODELS:
        files.setdefault(name, f"{path}, sheet '{name}'")
    meta, meta_file = _meta(path, read, frames, places, renames)
    try:
        inst = validate_tables(frames, path, meta, files=files, meta_file=meta_file)
    except InputError as exc:
        raise _relabel(exc, places, renames) from None
    tables = {name: frame.drop(columns=[c for c in ("_row", "_line") if c in frame.columns])
              for name, frame in frames.items()}
    if "dependencies" not in tables:  # an instance folder always has dependencies.csv
        tables["dependencies"] = pd.DataFrame({c: pd.Series(dtype=object) for c in ("project_id", "requires",
                                                                                      "lag_years")})
    order = [n for n in ALL_TABLE_MODELS if n in tables]
    scenario = (f"description = {toml_string(f'{path.name}: the bids with the default need-first policy')}\n"
                'instance = "."\nmodel = "need-first"\n')
    return ImportedWorkbook(meta=meta, tables={n: tables[n] for n in order}, extra={"scenario.toml": scenario},
                            scenarios=("scenario.toml",), source=str(path), instance=inst)


def _table(sheet: _Sheet) -> tuple[pd.DataFrame, _Where]:
    columns = {n: sheet.where(j) for j, n in enumerate(sheet.names)}
    return sheet.frame(), _Where(columns)


def _bids(path: Path, read: dict[str, _Sheet], reference: str | Path | None, frames: dict[str, pd.DataFrame],
          places: dict[str, _Where], files: dict[str, str]) -> dict[str, str]:
    """The tables of a bids workbook (into ``frames``, ``places`` and ``files``); returns the message renames."""
    for name in ("envelope",):
        if name not in read:
            raise InputError(path, f"required sheet '{name}' is missing (the bids layout has the sheets bids and "
                                   "envelope, and organisations, systems and instance, which may be left out)")
    for name in ("systems", "organisations"):
        if name in read:
            frames[name], places[read[name].label] = _table(read[name])
            files[name] = read[name].label
        elif reference is not None:
            frames[name], files[name] = _reference(Path(reference), name)
        else:
            raise InputError(path, f"sheet '{name}' is missing: add the {name} sheet, or give --reference "
                                   "INSTANCE_DIR (e.g. instances/england) to take organisations and systems from an "
                                   "instance folder")
    frames["envelope"], places[read["envelope"].label] = _table(read["envelope"])
    files["envelope"] = read["envelope"].label
    bids = read["bids"]
    for name in ("projects", "costs", "dependencies"):
        files[name] = bids.label
    org_system = {str(o).strip(): str(s).strip() for o, s in zip(frames["organisations"]["org_id"],
                                                                 frames["organisations"]["system_id"])
                  if o is not None and s is not None} if "org_id" in frames["organisations"] and \
        "system_id" in frames["organisations"] else {}
    frames["projects"], frames["costs"], frames["dependencies"], where = _bids_tables(bids, org_system)
    places[bids.label] = where
    return {"costs.csv": "the capital_yN/revenue_yN columns", "projects.csv": "sheet 'bids'",
            "dependencies.csv": "sheet 'bids'", "required file is missing": "required sheet is missing"}


def _reference(folder: Path, name: str) -> tuple[pd.DataFrame, str]:
    """A table of the reference instance folder, as text (its messages name the CSV file, row and line)."""
    try:
        found = folder.is_dir()
    except OSError:
        found = False
    if not found:
        raise InputError(folder, "option --reference: not an instance folder (give a folder such as "
                                 "instances/england)")
    path = folder / f"{name}.csv"
    frame = parse_csv(path, ALL_TABLE_MODELS[name][0])
    return frame, str(path)


def _bids_tables(sheet: _Sheet, org_system: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame,
                                                                      _Where]:
    """The bids sheet as projects, costs and dependencies frames of text cells, and how their rows and columns
    are named in the sheet (a costs or dependencies row names the bid's sheet row and its cost or requires
    column)."""
    project: dict[str, int] = {}
    cost: dict[tuple[str, int], int] = {}
    requires: int | None = None
    expected = (f"expected columns: {', '.join(BIDS_COLUMNS)}, then capital_y1, revenue_y1, capital_y2, ... (the "
                "cost years counted from the project's start)")
    for j, raw in enumerate(sheet.names):
        name = ALIASES.get(raw, raw)
        m = _COST.fullmatch(name)
        if m:
            k = int(m[2])
            if not 1 <= k <= MAX_COST_YEARS:
                raise InputError(sheet.label, f"cost years count from 1 (the start year) to {MAX_COST_YEARS}",
                                 row=1, column=sheet.where(j))
            key = (m[1], k - 1)
            if key in cost:
                raise InputError(sheet.label, f"column {sheet.where(j)} repeats column {sheet.where(cost[key])}",
                                 row=1, column=sheet.where(j))
            cost[key] = j
        elif name == "requires":
            requires = j
        elif name in ProjectRow.model_fields:
            if name in project:
                raise InputError(sheet.label, f"column {sheet.where(j)} repeats column {sheet.where(project[name])}",
                                 row=1, column=sheet.where(j))
            project[name] = j
        else:
            raise InputError(sheet.label, f"unknown column; {expected}", row=1, column=sheet.where(j))
    if not cost:
        raise InputError(sheet.label, f"has no cost columns; {expected}")
    columns = {n: sheet.where(j) for n, j in project.items()}
    pid_col = project.get("project_id")
    # projects: the sheet's project columns, with system_id from the organisation where the row leaves it out
    proj = sheet.frame(project)
    if "org_id" in project:
        given = proj["system_id"] if "system_id" in project else [None] * len(proj)
        proj["system_id"] = pd.Series([s if s is not None and s.strip() else org_system.get((o or "").strip())
                                       for o, s in zip(proj["org_id"], given)], dtype=object)
        columns.setdefault("system_id", columns["org_id"])
    proj = proj[[c for c in proj.columns if c != "_row"] + ["_row"]]
    # costs: one row per bid and year with a capital or revenue cell (an empty partner cell is 0; a bid with no
    # cost cell gets its first year, whose empty cells are then reported); dependencies: one per requires entry.
    # Their rows are numbered above every sheet row and named, through ``places``, by the bid's sheet row.
    base = max(sheet.rows, default=0) + 1
    rows: dict[int, tuple[int, dict[str, str]]] = {}
    c_rows: list[tuple[Any, ...]] = []
    d_rows: list[tuple[Any, ...]] = []
    offsets = sorted({k for _, k in cost})
    pid_name = columns.get("project_id", "'project_id'")
    for row, texts in zip(sheet.rows, sheet.cells):
        pid = texts[pid_col] if pid_col is not None else None

        def cell(pot: str, k: int, texts: list[str | None] = texts) -> str | None:
            j = cost.get((pot, k))
            t = texts[j] if j is not None else None
            return t if t is not None and t.strip() else None

        filled = [k for k in offsets if cell("capital", k) is not None or cell("revenue", k) is not None]
        for k in filled or offsets[:1]:
            n = base + len(rows)
            c_rows.append((pid, str(k), cell("capital", k) or ("0" if filled else None),
                           cell("revenue", k) or ("0" if filled else None), n))
            first = cost.get(("capital", k), cost.get(("revenue", k)))
            rows[n] = (row, {"project_id": pid_name, "year_offset": sheet.where(first),
                             **{p: sheet.where(cost[(p, k)]) if (p, k) in cost else f"'{p}_y{k + 1}'"
                                for p in ("capital", "revenue")}})
        text = texts[requires] if requires is not None else None
        for token in re.split(r"[;,\n]+", text or ""):
            if not token.strip():
                continue
            req, colon, lag = token.strip().partition(":")
            n = base + len(rows)
            d_rows.append((pid, req.strip(), lag.strip() if colon else "0", n))
            assert requires is not None
            rows[n] = (row, {"project_id": pid_name, "requires": sheet.where(requires),
                             "lag_years": sheet.where(requires)})
    where = _Where(columns, rows)
    costs = pd.DataFrame(c_rows, columns=["project_id", "year_offset", "capital", "revenue", "_row"], dtype=object)
    deps = pd.DataFrame(d_rows, columns=["project_id", "requires", "lag_years", "_row"], dtype=object)
    costs["_row"] = costs["_row"].astype(np.int64)
    deps["_row"] = deps["_row"].astype(np.int64)
    return proj, costs, deps, where


def _meta(path: Path, read: dict[str, _Sheet], frames: dict[str, pd.DataFrame], places: dict[str, _Where],
          renames: dict[str, str]) -> tuple[dict[str, Any], str]:
    """``instance.toml``'s content from the instance sheet; without one (or without its name or years), the name
    from the file name and the years of the envelope sheet, first to last."""
    meta: dict[str, Any] = {}
    sheet = read.get("instance")
    label = f"{path}, sheet 'envelope'"
    if sheet is not None:
        label = sheet.label
        where = _Where({n: sheet.where(j) for j, n in enumerate(sheet.names)})
        places[label] = where
        for name in ("key", "value"):
            if name not in sheet.names:
                raise InputError(label, "needs the columns key and value (one row per key: name, description, "
                                        "currency, years, synthetic, sources.<name>)", column=f"'{name}'")
        k, v = sheet.names.index("key"), sheet.names.index("value")
        for row, texts in zip(sheet.rows, sheet.cells):
            key = (texts[k] or "").strip()
            value = texts[v] if texts[v] is not None else ""
            if not key:
                raise InputError(label, "value without a key", row=row, column=sheet.where(k))
            name = key.removeprefix("sources.") if key.startswith("sources.") else None
            if (name is not None and name in meta.get("sources", {})) or (name is None and key in meta):
                raise InputError(label, f"key '{safe_text(key)}' appears twice", row=row, column=sheet.where(k))
            where.keys[key] = row
            if name is not None:
                meta.setdefault("sources", {})[name] = value
            elif key == "years":
                meta[key] = _years(value, label, row, sheet.where(v))
            else:
                meta[key] = value
    if "name" not in meta:
        from solver.data.importers import _slug

        meta["name"] = _slug(path.stem, "workbook")[:100]
    if "years" not in meta:
        try:
            env = validate_frame(frames["envelope"], ALL_TABLE_MODELS["envelope"][0], read["envelope"].label,
                                 ("year",))
        except InputError as exc:
            raise _relabel(exc, places, renames) from None
        years = sorted(int(y) for y in env["year"])
        meta["years"] = list(range(years[0], years[-1] + 1)) if years else []
        if sheet is None:
            label = read["envelope"].label
    return meta, label


def _years(text: str, label: str, row: int, column: str) -> list[int]:
    """``2026, 2027, 2028`` or ``2026-2028`` (or one year) as a list of years."""
    t = text.strip()
    span = re.fullmatch(r"(\d{4})\s*(?:-|–|to)\s*(\d{4})", t)
    if span and int(span[1]) <= int(span[2]) and int(span[2]) - int(span[1]) < 200:
        return list(range(int(span[1]), int(span[2]) + 1))
    parts = [p for p in re.split(r"[,;\s]+", t) if p]
    if parts and all(re.fullmatch(r"\d{4}", p) for p in parts):
        return [int(p) for p in parts]
    raise InputError(label, f"key 'years': expected years such as '2026, 2027, 2028' or '2026-2028' (got "
                            f"{safe_text(t)[:40]!r})", row=row, column=column)


__all__ = ["ImportedWorkbook", "add_sheet", "excel_value", "import_workbook", "instance_workbook",
           "is_envelope_workbook", "new_workbook", "number_text", "read_workbook", "sheet_rows", "sheet_title",
           "to_bytes"]
