"""Read and validate the tables of an instance, one pydantic row model per table.

Two steps: ``parse_csv`` reads a CSV file's cells as text (file, syntax and header checks), and
``validate_frame`` checks each cell of a table given as a DataFrame, from a CSV or from any
importer, for type and range; the first broken cell raises ``InputError`` naming file, row, line
(when known), column and rule. Cross-table checks (references, cycles, years) live in
``instance.py``. Nothing here knows about solvers.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import numpy as np
import pandas as pd
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from solver.errors import InputError

MONEY_DECIMALS = 3


def _money(v: float) -> float:
    scaled = v * 10**MONEY_DECIMALS
    # float error in ``scaled`` is a few ulps; a tolerance relative to the amount let a 4th decimal through
    # above about £100m (500.0004 was accepted and rounded)
    if abs(scaled - round(scaled)) > 1e-6 + 4 * math.ulp(scaled):
        raise ValueError(f"money is in £m with at most {MONEY_DECIMALS} decimals")
    return round(v, MONEY_DECIMALS)


Money = Annotated[float, Field(ge=0, le=1e6), AfterValidator(_money)]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
Year = Annotated[int, Field(ge=1900, le=2200)]
Text = Annotated[str, Field(max_length=300)]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)


class SystemRow(_Row):
    """A system (ICB/ICS)."""

    system_id: Id
    name: Text
    region: Text = ""
    population: Annotated[float, Field(ge=0)]
    weighted_population: Annotated[float, Field(gt=0)]
    need_index: Annotated[float, Field(gt=0, le=100)]
    imd_score: Annotated[float, Field(ge=0)] | None = None
    local_capital: Money
    revenue_headroom: Money


class OrganisationRow(_Row):
    """An organisation (trust) inside a system."""

    org_id: Id
    name: Text
    system_id: Id
    org_type: Text = ""
    category: Annotated[int, Field(ge=0, le=3)]
    platform: Text = ""


class ProjectRow(_Row):
    """A candidate project."""

    project_id: Id
    org_id: Id | None = None
    system_id: Id | None = None
    name: Text
    kind: Text = ""
    platform: Text = ""
    benefit: Annotated[float, Field(ge=0, le=1e9)]
    earliest_start: Year
    latest_start: Year
    duration_years: Annotated[int, Field(ge=0, le=30)]
    run_cost: Money
    match_share: Annotated[float, Field(ge=0, le=1)]
    mandatory: bool
    committed_start: Year | None = None
    withdrawal_cost: Money
    group: Id | None = None


class CostRow(_Row):
    """One year of a project's cost profile, relative to its start year."""

    project_id: Id
    year_offset: Annotated[int, Field(ge=0, le=30)]
    capital: Money
    revenue: Money


class DependencyRow(_Row):
    """``project_id`` may start only ``lag_years`` after ``requires`` (a project or group) starts."""

    project_id: Id
    requires: Id
    lag_years: Annotated[int, Field(ge=0, le=30)]


class EnvelopeRow(_Row):
    """The national envelope for one year."""

    year: Year
    capital: Money
    revenue: Money


TABLES: dict[str, type[_Row]] = {
    "systems.csv": SystemRow,
    "organisations.csv": OrganisationRow,
    "projects.csv": ProjectRow,
    "costs.csv": CostRow,
    "dependencies.csv": DependencyRow,
    "envelope.csv": EnvelopeRow,
}

KEYS: dict[str, tuple[str, ...]] = {
    "systems.csv": ("system_id",),
    "organisations.csv": ("org_id",),
    "projects.csv": ("project_id",),
    "costs.csv": ("project_id", "year_offset"),
    "dependencies.csv": ("project_id", "requires"),
    "envelope.csv": ("year",),
}

MAX_FILE_BYTES = 200 * 1024 * 1024


def _required(model: type[_Row]) -> list[str]:
    return [n for n, f in model.model_fields.items() if f.is_required()]


def _describe(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    value = err.get("input")
    shown = repr(value) if value is not None else "empty"
    if isinstance(value, str) and len(value) > 40:
        shown = repr(value[:40] + "…")
    return f"{msg} (got {shown})"


def check_header(file: str | Path, header: list[str], model: type[_Row], line: int | None) -> None:
    """Unknown, repeated and missing columns of one table (``line`` 1 for a CSV header, else None)."""
    fields = list(model.model_fields)
    for i, name in enumerate(header):
        if name not in model.model_fields:
            raise InputError(file, f"unknown column '{name}'; expected columns: {', '.join(fields)}",
                             column=name or f"#{i + 1}", row=None, line=line)
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise InputError(file, "column appears twice in the header", column=name, line=line)
        seen.add(name)
    for name in _required(model):
        if name not in header:
            raise InputError(file, "required column is missing", column=name, line=line)


def parse_csv(path: Path, model: type[_Row]) -> pd.DataFrame:
    """Read one CSV table's cells as text, without validating them: a frame with the header's columns
    (each cell's text as written, None where empty) plus ``_row`` (data row, from 1) and ``_line``
    (physical line of the record's start). Blank records are left out (their row numbers too).

    Checks what only a file has: existence, size, UTF-8, NUL bytes, CSV syntax, the header, ragged
    rows. A BOM and CRLF line ends are accepted. Cells are validated by ``validate_frame``.
    """
    if not path.is_file():
        raise InputError(path, "required file is missing")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InputError(path, f"file is larger than {MAX_FILE_BYTES // 2**20} MiB")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if "\x00" in text:
        raise InputError(path, "contains NUL bytes; not a CSV text file")
    # records end at \n, \r or \r\n only (not at U+2028, NEL, form feed...), and quoted line breaks are kept
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(path, "file is empty; expected a header row") from None
    except csv.Error as exc:
        raise InputError(path, f"malformed CSV header: {exc}", line=reader.line_num) from None
    header = [h.strip() for h in header]
    check_header(path, header, model, line=1)

    columns: list[list[str | None]] = [[] for _ in header]
    rows: list[int] = []
    lines: list[int] = []
    row_no = 0
    try:
        for row_no, cells in enumerate(reader, start=1):
            line = reader.line_num
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise InputError(path, f"has {len(cells)} cells, header has {len(header)}", row=row_no, line=line)
            for col, c in zip(columns, cells):
                col.append(c if c.strip() != "" else None)
            rows.append(row_no)
            lines.append(line)
    except csv.Error as exc:
        raise InputError(path, f"malformed CSV: {exc}", row=row_no + 1, line=reader.line_num) from None
    out = {h: pd.Series(col, dtype=object) for h, col in zip(header, columns)}
    out["_row"] = pd.Series(rows, dtype="int64")
    out["_line"] = pd.Series(lines, dtype="int64")
    return pd.DataFrame(out)


def read_table(path: Path, model: type[_Row]) -> pd.DataFrame:
    """Read one CSV table, validate every cell against ``model`` and return a typed frame.

    Empty cells are missing values; a BOM and CRLF line ends are accepted. Raises
    ``InputError`` at the first broken cell, naming file, row (data rows from 1), line and column.
    """
    return validate_frame(parse_csv(path, model), model, path, KEYS.get(path.name))


#: Bookkeeping columns: where a row came from (data row from 1; physical CSV line), for messages.
BOOKKEEPING = ("_row", "_line")
_MISSING = object()


def _cell(value: Any) -> Any:
    """A frame cell as pydantic input: numpy scalars as Python values; None, NaN, NA and blank text
    as missing (like an empty CSV cell)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return _MISSING
    if isinstance(value, float) and math.isnan(value):
        return _MISSING
    if isinstance(value, str) and value.strip() == "":
        return _MISSING
    return value


def validate_frame(frame: pd.DataFrame, model: type[_Row], file: str | Path,
                   key: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Validate every cell of one table given as a frame and return the typed frame (see ``_frame``).

    Columns are the CSV file's column names (any order; optional ones may be left out). Missing
    values are None, NaN, NA or blank text. ``key`` names the columns whose values must be unique.
    Rows are named by the ``_row`` column if the frame has one (else position from 1) and by
    ``_line`` if present (a CSV's physical line). Raises ``InputError`` at the first broken cell,
    naming ``file``, row, line and column, with the same rules and words as the CSV reader.
    """
    positions = [j for j, c in enumerate(frame.columns) if c not in BOOKKEEPING]
    header = [str(frame.columns[j]).strip() for j in positions]
    check_header(file, header, model, line=None)
    n = len(frame)
    values = [frame.iloc[:, j].tolist() for j in positions]
    row_nos = [int(r) for r in frame["_row"].tolist()] if "_row" in frame.columns else list(range(1, n + 1))
    has_line = "_line" in frame.columns
    lines: list[int | None] = [int(v) for v in frame["_line"].tolist()] if has_line else [None] * n

    records: list[dict[str, Any]] = []
    keys_seen: dict[tuple[Any, ...], int] = {}
    for i, (row_no, line) in enumerate(zip(row_nos, lines)):
        raw = {}
        for name, col in zip(header, values):
            v = _cell(col[i])
            if v is not _MISSING:
                raw[name] = v
        if not raw:
            continue  # a blank row, as a blank CSV line
        try:
            rec = model.model_validate(raw).model_dump()
        except ValidationError as exc:
            err = exc.errors()[0]
            column = str(err["loc"][0]) if err.get("loc") else None
            if err.get("type") == "missing":
                raise InputError(file, "value is required", row=row_no, line=line, column=column) from None
            raise InputError(file, _describe(err), row=row_no, line=line, column=column) from None
        for name, value in rec.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise InputError(file, "must be a finite number", row=row_no, line=line, column=name)
        if key is not None:
            k = tuple(rec[c] for c in key)
            if k in keys_seen:
                raise InputError(
                    file,
                    f"duplicate {' + '.join(key)} {'/'.join(map(str, k))} (first at row {keys_seen[k]})",
                    row=row_no, line=line, column=key[0],
                )
            keys_seen[k] = row_no
        rec["_row"] = row_no
        if has_line:
            rec["_line"] = line
        records.append(rec)
    return _frame(records, model, with_line=has_line)


def _is_text(kind: Any) -> bool:
    """True for str, Annotated[str, ...] and their optional forms."""
    if kind is str:
        return True
    if get_origin(kind) is Annotated:
        return _is_text(get_args(kind)[0])
    return any(_is_text(a) for a in get_args(kind) if a is not type(None))


def _frame(records: list[dict[str, Any]], model: type[_Row], *, with_line: bool = True) -> pd.DataFrame:
    """Typed frame: text columns hold str or None (never NaN); numbers are int/float/bool, with
    optional numbers as float (NaN when missing); then ``_row`` and (if known) ``_line``."""
    out: dict[str, pd.Series] = {}
    for name, info in model.model_fields.items():
        values = [r[name] for r in records]
        kind = info.annotation
        if _is_text(kind):
            out[name] = pd.Series(values, dtype=object)
        elif kind is bool:
            out[name] = pd.Series(values, dtype=bool)
        elif kind is int:
            out[name] = pd.Series(values, dtype="int64")
        else:
            out[name] = pd.Series([float("nan") if v is None else float(v) for v in values], dtype=float)
    out["_row"] = pd.Series([r["_row"] for r in records], dtype="int64")
    if with_line:
        out["_line"] = pd.Series([r["_line"] for r in records], dtype="int64")
    return pd.DataFrame(out)
