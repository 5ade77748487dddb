"""Read and validate the tables of an instance, one pydantic row model per table.

Two steps: ``scan_csv`` checks what only a file has (size, UTF-8, NUL bytes, CSV syntax, the
header, ragged rows) without keeping its cells, and ``validate_frame`` checks each cell of a table,
given as a DataFrame (any importer) or as a scanned CSV file (read again in chunks), for type and
range; the first broken cell raises ``InputError`` naming file, row, line (when known), column and
rule. Cross-table checks (references, cycles, years) live in ``instance.py``. Nothing here knows
about solvers.

Memory: no table is ever held as per-row Python objects. Cells are checked a chunk of rows at a
time by vectorised, dtype-aware checks that accept only spellings whose value is certain; any cell
they do not accept sends its row through the row model (pydantic), which decides and words the
message, so messages are those of the row model. Reading a CSV file needs at most about
``MEMORY_FACTOR`` times its size (the typed table it returns is most of that).
"""

from __future__ import annotations

import codecs
import csv
import functools
import gc
import math
import re
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

import numpy as np
import pandas as pd
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model

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


#: A local limit that never binds (£1tn a year): ``local_capital`` and ``revenue_headroom`` when systems.csv leaves
#: the column out. The same value as ``solver.rules.local_funding.UNLIMITED_GBPM`` (the largest amount a money cell
#: takes), so a system without a stated limit is treated exactly as a limit removed by a rule-price relaxation.
UNLIMITED_LOCAL_GBPM = 1e6


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)

    #: Columns that may be left out of the file (their documented default is used), but whose cells must all be
    #: filled when the column is given: an empty cell in a column the file has is more likely a slip than a wish
    #: for the default (``as_given`` makes them required for such a file).
    filled_when_given: ClassVar[tuple[str, ...]] = ()


class SystemRow(_Row):
    """A system (ICB/ICS). Defaults when a column is left out: ``population`` = ``weighted_population``,
    ``need_index`` 1, ``local_capital`` and ``revenue_headroom`` unlimited (``UNLIMITED_LOCAL_GBPM``)."""

    system_id: Id
    name: Text
    region: Text = ""
    population: Annotated[float, Field(ge=0)] | None = None  # None: weighted_population (filled by validate_tables)
    weighted_population: Annotated[float, Field(gt=0)]
    need_index: Annotated[float, Field(gt=0, le=100)] = 1.0
    imd_score: Annotated[float, Field(ge=0)] | None = None
    local_capital: Money = UNLIMITED_LOCAL_GBPM
    revenue_headroom: Money = UNLIMITED_LOCAL_GBPM

    filled_when_given: ClassVar[tuple[str, ...]] = ("population", "need_index", "local_capital", "revenue_headroom")


class OrganisationRow(_Row):
    """An organisation (trust) inside a system."""

    org_id: Id
    name: Text
    system_id: Id
    org_type: Text = ""
    category: Annotated[int, Field(ge=0, le=3)]
    platform: Text = ""


class ProjectRow(_Row):
    """A candidate project. Defaults when a column is left out: ``name`` = ``project_id``, ``earliest_start`` and
    ``latest_start`` the first and last envelope years (both filled by ``validate_tables``), ``duration_years``,
    ``run_cost``, ``match_share``, ``withdrawal_cost`` and ``savings`` 0, ``mandatory`` false; ``kind``,
    ``platform``, ``committed_start`` and ``group`` empty (these four may also be empty in a given column)."""

    project_id: Id
    org_id: Id | None = None
    system_id: Id | None = None
    name: Text | None = None  # None: the project_id (filled by validate_tables)
    kind: Text = ""
    platform: Text = ""
    benefit: Annotated[float, Field(ge=0, le=1e9)]
    earliest_start: Year | None = None  # None: the first envelope year (filled by validate_tables)
    latest_start: Year | None = None    # None: the last envelope year (filled by validate_tables)
    duration_years: Annotated[int, Field(ge=0, le=30)] = 0
    run_cost: Money = 0.0
    match_share: Annotated[float, Field(ge=0, le=1)] = 0.0
    mandatory: bool = False
    committed_start: Year | None = None
    withdrawal_cost: Money = 0.0
    group: Id | None = None
    savings: Money = 0.0

    filled_when_given: ClassVar[tuple[str, ...]] = (
        "name", "earliest_start", "latest_start", "duration_years", "run_cost", "match_share", "mandatory",
        "withdrawal_cost", "savings")


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


class BallotRow(_Row):
    """One voter's support for one project (participatory budgeting): approval (``utility`` 1, the default when
    the column is left out) or cardinal (the voter's points or utility for the project)."""

    voter_id: Id
    project_id: Id
    utility: Annotated[float, Field(ge=0, le=1e9)] = 1.0

    filled_when_given: ClassVar[tuple[str, ...]] = ("utility",)


@functools.cache
def _as_given(model: type[_Row], given: frozenset[str]) -> type[_Row]:
    """``model`` with the ``filled_when_given`` columns that ``given`` holds made required (same field order and
    rules, so messages are the model's); ``model`` itself when there is none."""
    must = [f for f in model.filled_when_given if f in given]
    if not must:
        return model
    fields: dict[str, Any] = {}
    for f in must:
        info = model.model_fields[f]
        ann: Any = info.annotation
        if get_origin(ann) in (Union, types.UnionType):
            ann = next(a for a in get_args(ann) if a is not type(None))
        fields[f] = (Annotated[(ann, *info.metadata)] if info.metadata else ann, ...)
    return create_model(model.__name__, __base__=model, __doc__=model.__doc__, **fields)


def as_given(model: type[_Row], header: list[str] | tuple[str, ...]) -> type[_Row]:
    """The row model for a table whose columns are ``header``: a column left out takes its default, but a
    ``filled_when_given`` column the table has needs every cell filled (an empty one is "value is required")."""
    return _as_given(model, frozenset(header))


#: The tables of an instance folder (``organisations.csv`` may be left out when every project names its system
#: and none an organisation; see ``solver.data.instance``).
TABLES: dict[str, type[_Row]] = {
    "systems.csv": SystemRow,
    "organisations.csv": OrganisationRow,
    "projects.csv": ProjectRow,
    "costs.csv": CostRow,
    "dependencies.csv": DependencyRow,
    "envelope.csv": EnvelopeRow,
}
#: Tables an instance folder may have or leave out (left out: an empty table).
OPTIONAL_TABLES: dict[str, type[_Row]] = {"ballots.csv": BallotRow}

KEYS: dict[str, tuple[str, ...]] = {
    "systems.csv": ("system_id",),
    "organisations.csv": ("org_id",),
    "projects.csv": ("project_id",),
    "costs.csv": ("project_id", "year_offset"),
    "dependencies.csv": ("project_id", "requires"),
    "envelope.csv": ("year",),
    "ballots.csv": ("voter_id", "project_id"),
}

#: The largest CSV file read. Reading a table needs up to about ``MEMORY_FACTOR`` times its file's size in memory
#: (measured: a 150 MiB costs.csv peaks at about 4× its size over the process's baseline), so this keeps reading
#: any one table under about 1 GiB.
MAX_FILE_BYTES = 200 * 1024 * 1024
MEMORY_FACTOR = 5
#: Rows checked at a time: bounds the per-row Python objects alive while reading.
CHUNK_ROWS = 20_000
_BLOCK_BYTES = 4 * 1024 * 1024

#: The whitespace trimmed around a number or boolean (what pydantic trims around a number): Python's
#: whitespace except the information separators \x1c-\x1f.
_TRIM = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
        "\u2028\u2029\u202f\u205f\u3000"
_ASCII_WS = " \t\n\r\x0b\x0c"
#: Boolean spellings (any case, padding trimmed): what a spreadsheet or a person writes for yes and no.
BOOLEAN_WORDS: dict[str, bool] = {
    "true": True, "false": False, "yes": True, "no": False, "1": True, "0": False,
    "t": True, "f": False, "y": True, "n": False, "on": True, "off": False,
}

# --------------------------------------------------------------------------- text shown to a person

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    c = match.group()
    return _NAMED_ESCAPES.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def safe_text(value: object) -> str:
    """``value`` as text that is safe to print on a terminal: control characters (C0 with ESC, DEL, C1), bidi
    controls (overrides, embeddings, isolates, marks), line and paragraph separators and lone surrogates are
    shown as escapes (``\\x1b``, ``\\u202e``); everything else (accents, £, emoji, other scripts) is kept.
    Use it for every piece of text that comes from the data (names, ids, labels) before it is printed."""
    text = value if isinstance(value, str) else str(value)
    return _UNSAFE.sub(_escape, text)


# --------------------------------------------------------------------------- header and messages


def _required(model: type[_Row]) -> list[str]:
    return [n for n, f in model.model_fields.items() if f.is_required()]


def _describe(err: dict[str, Any], original: str | None = None) -> str:
    msg = str(err.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    value = err.get("input")
    if original is not None and isinstance(value, str):
        value = original  # a trimmed cell is shown as written
    shown = repr(value) if value is not None else "empty"
    if isinstance(value, str) and len(value) > 40:
        shown = repr(value[:40] + "…")
    return f"{msg} (got {shown})"


_SEPARATORS = {";": "';'-separated", "\t": "tab-separated", "|": "'|'-separated"}


def _separator_hint(header: list[str], model: type[_Row]) -> str | None:
    """A hint when the header is one cell holding the columns joined by another separator."""
    if len(header) != 1:
        return None
    for sep, what in _SEPARATORS.items():
        parts = [p.strip().strip('"') for p in header[0].split(sep)]
        if len(parts) > 1 and any(p in model.model_fields for p in parts):
            return (f"looks like {what}: save as comma-separated CSV (in Excel: 'CSV UTF-8 (Comma delimited)'); "
                    f"the header is read as one column '{safe_text(header[0][:60])}'")
    return None


def check_header(file: str | Path, header: list[str], model: type[_Row], line: int | None) -> None:
    """Unknown, repeated and missing columns of one table (``line`` 1 for a CSV header, else None)."""
    fields = list(model.model_fields)
    for i, name in enumerate(header):
        if name not in model.model_fields:
            hint = _separator_hint(header, model)
            if hint is not None:
                raise InputError(file, hint, line=line)
            raise InputError(file, f"unknown column '{safe_text(name)}'; expected columns: {', '.join(fields)}",
                             column=safe_text(name) or f"#{i + 1}", row=None, line=line)
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise InputError(file, "column appears twice in the header", column=name, line=line)
        seen.add(name)
    for name in _required(model):
        if name not in header:
            raise InputError(file, "required column is missing", column=name, line=line)


# --------------------------------------------------------------------------- CSV files


@dataclass(frozen=True)
class CsvTable:
    """A CSV file checked by ``scan_csv`` (file, encoding, syntax, header, ragged rows) whose cells have not
    been read: ``validate_frame`` reads them a chunk at a time. ``header`` holds the named columns (Excel's
    trailing unnamed, empty columns left out); ``width`` counts every cell of the header line."""

    path: Path
    header: tuple[str, ...]
    width: int
    rows: int

    def chunks(self, size: int = CHUNK_ROWS) -> Iterator[tuple[list[np.ndarray], np.ndarray, np.ndarray]]:
        """(columns of cell text as object arrays, data row numbers, physical lines) for ``size`` records at a
        time; blank records are left out (their row numbers too)."""
        n = len(self.header)
        for batch, rows, lines in _records(self.path, n, self.width, size):
            cols = [np.fromiter(col, dtype=object, count=len(batch)) for col in zip(*batch)] if batch else \
                [np.empty(0, dtype=object) for _ in range(n)]
            yield cols, np.array(rows, dtype=np.int64), np.array(lines, dtype=np.int64)


def _check_bytes(path: Path) -> None:
    """UTF-8 (a BOM is accepted) and no NUL bytes, read in blocks: the first encoding error is named by its byte
    (counted after a BOM), and takes precedence over NUL bytes anywhere."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    nul = False
    with path.open("rb") as f:
        first = True
        while True:
            block = f.read(_BLOCK_BYTES)
            if first:
                first = False
                if block.startswith(codecs.BOM_UTF8):
                    block = block[3:]
            final = not block
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(block, final)
            except UnicodeDecodeError as exc:
                raise InputError(path, f"not UTF-8 text ({exc.reason} at byte {offset - pending + exc.start})") \
                    from None
            nul = nul or b"\x00" in block
            offset += len(block)
            if final:
                break
    if nul:
        raise InputError(path, "contains NUL bytes; not a CSV text file")


def _open_reader(path: Path) -> tuple[Any, Any]:
    # universal newlines (records end at \n, \r or \r\n, and a quoted \r\n is read as \n, as before); not at
    # U+2028, NEL or form feed
    f = path.open(encoding="utf-8-sig", newline=None)
    return f, csv.reader(f)


def _read_header(path: Path, reader: Any) -> tuple[list[str], int]:
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(path, "file is empty; expected a header row") from None
    except csv.Error as exc:
        raise InputError(path, f"malformed CSV header: {exc}", line=reader.line_num) from None
    header = [h.strip() for h in header]
    width = len(header)
    while header and header[-1] == "":  # Excel's trailing empty columns
        header.pop()
    return header, width


def _records(path: Path, n: int, width: int,
             size: int) -> Iterator[tuple[list[list[str]], list[int], list[int]]]:
    """Batches of up to ``size`` non-blank records after the header: (the ``n`` named cells of each, data rows
    from 1, physical lines); at least one batch, maybe empty."""
    f, reader = _open_reader(path)
    with f, _gc_paused():
        _read_header(path, reader)
        batch: list[list[str]] = []
        rows: list[int] = []
        lines: list[int] = []
        row_no = 0
        try:
            for row_no, cells in enumerate(reader, start=1):
                if not cells or (not cells[0].strip() and all(not c.strip() for c in cells)):
                    continue
                k = len(cells)
                if k != n:
                    line = reader.line_num
                    if not n <= k <= width:
                        raise InputError(path, f"has {k} cells, header has {width}", row=row_no, line=line)
                    for j in range(n, k):
                        if cells[j].strip():
                            raise InputError(path, f"has a value in column #{j + 1}, which has no header",
                                             row=row_no, line=line, column=f"#{j + 1}")
                    cells = cells[:n]
                batch.append(cells)
                rows.append(row_no)
                lines.append(reader.line_num)
                if len(batch) >= size:
                    yield batch, rows, lines
                    batch, rows, lines = [], [], []
        except csv.Error as exc:
            raise InputError(path, f"malformed CSV: {exc}", row=row_no + 1, line=reader.line_num) from None
        except UnicodeDecodeError as exc:  # the file changed since it was checked
            raise InputError(path, f"not UTF-8 text ({exc.reason})") from None
        yield batch, rows, lines


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while many short-lived rows are made (none of them is in a cycle): it would
    walk every tracked object again and again."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def scan_csv(path: Path, model: type[_Row]) -> CsvTable:
    """Check what only a file has, keeping none of its cells: existence, size, UTF-8, NUL bytes, CSV syntax, the
    header (with a hint for ';'- or tab-separated files), ragged rows. A BOM, CRLF or CR line ends and Excel's
    trailing empty columns (unnamed header cells at the end, with empty cells below) are accepted."""
    try:
        found = path.is_file()
    except OSError as exc:
        raise InputError(path, f"cannot read file ({exc.strerror})") from None
    if not found:
        raise InputError(path, "required file is missing")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InputError(path, f"file is larger than {MAX_FILE_BYTES // 2**20} MiB ({size / 2**20:,.0f} MiB); "
                               f"reading a table needs up to {MEMORY_FACTOR}× its size in memory, so the limit "
                               f"keeps one table under {MEMORY_FACTOR * MAX_FILE_BYTES / 2**30:.0f} GiB")
    _check_bytes(path)
    f, reader = _open_reader(path)
    with f:
        header, width = _read_header(path, reader)
    check_header(path, header, model, line=1)
    rows = sum(len(b[0]) for b in _records(path, len(header), width, CHUNK_ROWS))
    return CsvTable(path, tuple(header), width, rows)


def parse_csv(path: Path, model: type[_Row]) -> pd.DataFrame:
    """One CSV table's cells as text, without validating them (for small tables and tools; ``read_table`` and
    ``load_instance`` never hold a whole table as text): the header's columns (each cell's text as written, None
    where empty) plus ``_row`` (data row, from 1) and ``_line`` (physical line of the record's start). Blank
    records are left out (their row numbers too). File checks as ``scan_csv``."""
    table = scan_csv(path, model)
    parts: list[pd.DataFrame] = []
    for cols, rows, lines in table.chunks():
        data: dict[str, Any] = {h: pd.Series([None if not c.strip() else c for c in col], dtype=object)
                                for h, col in zip(table.header, cols)}
        data["_row"] = pd.Series(rows, dtype="int64")
        data["_line"] = pd.Series(lines, dtype="int64")
        parts.append(pd.DataFrame(data))
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def read_table(path: Path, model: type[_Row]) -> pd.DataFrame:
    """Read one CSV table, validate every cell against ``model`` and return a typed frame.

    Empty cells are missing values; a BOM and CRLF line ends are accepted. Raises
    ``InputError`` at the first broken cell, naming file, row (data rows from 1), line and column.
    """
    return validate_frame(scan_csv(path, model), model, path, KEYS.get(path.name))


# --------------------------------------------------------------------------- cells


#: Bookkeeping columns: where a row came from (data row from 1; physical CSV line), for messages.
BOOKKEEPING = ("_row", "_line")
_MISSING = object()
_BAD = object()
_ID_PATTERN = r"^[A-Za-z0-9_.\-]+$"
_IDS_JOINED = re.compile(r"[A-Za-z0-9_.\-]+(?:\n[A-Za-z0-9_.\-]+)*")
_FLOAT = re.compile(r"[ \t]*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t]*")
_INT = re.compile(r"[ \t]*[+-]?[0-9]{1,18}[ \t]*")
_FLOAT_CHARS = re.compile(r"[0-9eE+\-. \t\n]*")
_INT_CHARS = re.compile(r"[0-9+\- \t\n]*")


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


@dataclass(frozen=True)
class _Spec:
    """What the vectorised checks need to know about one field (``fast`` False: every cell goes through pydantic)."""

    kind: str                 # the input type: text, float, int or bool
    out: str                  # the output column: text, float, int or bool (as ``_frame``)
    required: bool
    default: Any
    fast: bool
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    min_len: int = 0
    max_len: int | None = None
    pattern: re.Pattern[str] | None = None
    money: bool = False


_SPECS: dict[type, dict[str, _Spec]] = {}


def _specs(model: type[_Row]) -> dict[str, _Spec]:
    if model not in _SPECS:
        _SPECS[model] = {name: _spec(info) for name, info in model.model_fields.items()}
    return _SPECS[model]


def _spec(info: Any) -> _Spec:
    ann = info.annotation
    meta = list(info.metadata)
    if get_origin(ann) in (Union, types.UnionType):
        args = [a for a in get_args(ann) if a is not type(None)]
        ann = args[0] if len(args) == 1 else None
    if get_origin(ann) is Annotated:
        base, *extra = get_args(ann)
        for e in extra:
            meta += list(getattr(e, "metadata", [e]))
        ann = base
    kind = {str: "text", float: "float", int: "int", bool: "bool"}.get(ann)  # type: ignore[call-overload]
    top = info.annotation
    out = "text" if _is_text(top) else "bool" if top is bool else "int" if top is int else "float"
    fast = kind is not None
    bounds: dict[str, Any] = {}
    for m in meta:
        cls = type(m).__name__
        if cls in ("Ge", "Gt", "Le", "Lt"):
            bounds[cls.lower()] = float(getattr(m, cls.lower()))
        elif cls == "MinLen":
            bounds["min_len"] = int(m.min_length)
        elif cls == "MaxLen":
            bounds["max_len"] = int(m.max_length)
        elif getattr(m, "pattern", None) is not None:
            if m.pattern == _ID_PATTERN:
                bounds["pattern"] = re.compile(_ID_PATTERN)
            else:
                fast = False
        elif cls == "AfterValidator" and getattr(m, "func", None) is _money:
            bounds["money"] = True
        else:
            fast = False
    return _Spec(kind=kind or "other", out=out, required=info.is_required(),
                 default=None if info.is_required() else info.default, fast=fast, **bounds)


def _missing(arr: np.ndarray) -> np.ndarray:
    """Missing cells: None, NaN, NA, NaT and blank text."""
    n = len(arr)
    if arr.dtype.kind == "f":
        return np.isnan(arr)
    if arr.dtype.kind != "O":
        return np.zeros(n, dtype=bool)
    try:  # all text (a CSV chunk): C-speed
        return np.fromiter(map(str.isspace, arr), bool, n) | ~np.fromiter(map(bool, arr), bool, n)
    except TypeError:
        return np.fromiter((_cell(v) is _MISSING for v in arr), bool, n)


def _text1(spec: _Spec, v: Any) -> Any:
    if type(v) is not str:
        return _BAD
    t = v.strip(_ASCII_WS)
    if not t or t[0].isspace() or t[-1].isspace() or len(t) < spec.min_len \
            or (spec.max_len is not None and len(t) > spec.max_len) \
            or (spec.pattern is not None and not spec.pattern.fullmatch(t)):
        return _BAD
    return t


def _fast_text(spec: _Spec, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(vals)
    try:
        joined = "\n".join(vals)
        joined.encode("utf-8")
    except (TypeError, UnicodeEncodeError):
        return vals, np.zeros(n, dtype=bool)
    if spec.pattern is not None and joined.count("\n") == n - 1 and _IDS_JOINED.fullmatch(joined) \
            and spec.max_len is not None \
            and max(map(len, vals)) <= spec.max_len and min(map(len, vals)) >= max(spec.min_len, 1):
        out = vals  # ids cannot be padded: nothing to strip
    else:
        out = np.empty(n, dtype=object)
        out[:] = [_text1(spec, v) for v in vals]
    ok = out != _BAD if out is not vals else np.ones(n, dtype=bool)
    seen: dict[str, str] = {}  # one object per distinct value (ids repeat down a cost profile)
    out = np.array([seen.setdefault(v, v) if type(v) is str else v for v in out], dtype=object) if n else out
    return out, np.asarray(ok, dtype=bool)


def _float1(v: Any) -> float:
    if type(v) is str and _FLOAT.fullmatch(v):
        return float(v)
    return math.nan


def _int1(v: Any) -> Any:
    if type(v) is str and _INT.fullmatch(v):
        return int(v)
    return _BAD


def _numbers(spec: _Spec, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values as float64, cells certain) for a number field; integers are exact below 2**53."""
    n = len(vals)
    kind = vals.dtype.kind
    if kind == "f":
        x = vals.astype(np.float64)
        ok = np.ones(n, dtype=bool)
    elif kind in "iu":
        x = vals.astype(np.float64)
        ok = np.abs(x) < 2.0**53
    elif kind == "O" and spec.kind in ("float", "int"):
        chars, conv = (_FLOAT_CHARS, np.float64) if spec.kind == "float" else (_INT_CHARS, np.int64)
        x = None
        try:
            joined = "\n".join(vals)
            if chars.fullmatch(joined):
                x = vals.astype(conv).astype(np.float64)
                ok = np.ones(n, dtype=bool) if spec.kind == "float" else np.abs(x) < 2.0**53
        except (TypeError, ValueError, OverflowError):
            x = None
        if x is None:
            if spec.kind == "float":
                x = np.fromiter(map(_float1, vals), np.float64, n)
                ok = ~np.isnan(x)
            else:
                ints = [_int1(v) for v in vals]
                ok = np.array([i is not _BAD for i in ints], dtype=bool)
                x = np.array([float(i) if i is not _BAD else 0.0 for i in ints], dtype=np.float64)
    else:
        return np.zeros(n), np.zeros(n, dtype=bool)
    ok &= np.isfinite(x)
    if spec.kind == "int":
        ok &= x == np.floor(x)
    with np.errstate(invalid="ignore"):
        if spec.ge is not None:
            ok &= x >= spec.ge
        if spec.gt is not None:
            ok &= x > spec.gt
        if spec.le is not None:
            ok &= x <= spec.le
        if spec.lt is not None:
            ok &= x < spec.lt
        if spec.money:
            scaled = x * 10**MONEY_DECIMALS
            whole = np.rint(scaled)
            ok &= np.abs(scaled - whole) <= 1e-6  # stricter than ``_money``: the rest is decided by it
            x = np.where(ok, whole / 10**MONEY_DECIMALS, x)  # = round(x, 3) when within 1e-6 of a whole £k
    return x, ok


def _booleans(vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(vals)
    if vals.dtype.kind == "b":
        return vals.astype(bool), np.ones(n, dtype=bool)
    if vals.dtype.kind != "O":
        return np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    got = [BOOLEAN_WORDS.get(v.strip(_TRIM).lower()) if type(v) is str else (v if type(v) is bool else None)
           for v in vals]
    return np.array([g is True for g in got], dtype=bool), np.array([g is not None for g in got], dtype=bool)


def _fast(spec: _Spec, vals: np.ndarray, miss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(typed output values, certain) for one column of a chunk: certain cells are accepted by the row model
    with exactly these values; the rest go through it."""
    n = len(vals)
    present = ~miss
    # a missing cell of an optional column takes the column's default (as the row model gives it)
    if spec.out == "text":
        out = np.empty(n, dtype=object)
        out[:] = spec.default
    elif spec.out == "bool":
        out = np.full(n, bool(spec.default), dtype=bool)
    elif spec.out == "int":
        out = np.full(n, 0 if spec.default is None else int(spec.default), dtype=np.int64)
    else:
        out = np.full(n, np.nan if spec.default is None else float(spec.default))
    ok = np.ones(n, dtype=bool) if not spec.required else present.copy()
    if not present.any():
        return out, ok
    if not spec.fast:
        return out, miss & ok
    sub = vals[present] if not present.all() else vals
    if spec.kind == "text":
        got, good = _fast_text(spec, sub if sub.dtype.kind == "O" else sub.astype(object))
        if sub.dtype.kind != "O":
            good = np.zeros(len(sub), dtype=bool)
    elif spec.kind == "bool":
        got, good = _booleans(sub)
    else:
        got, good = _numbers(spec, sub)
        if spec.out == "int":
            got = np.where(good, got, 0).astype(np.int64)
    out[present] = got
    ok[present] = good
    return out, ok


# --------------------------------------------------------------------------- tables


def _validate_row(model: type[_Row], names: list[str], cells: list[Any], file: str | Path, row_no: int,
                  line: int | None) -> dict[str, Any] | None:
    """One row through the row model (None for a blank row); raises ``InputError`` at its first broken cell."""
    specs = _specs(model)
    raw: dict[str, Any] = {}
    original: dict[str, str] = {}
    for name, value in zip(names, cells):
        v = _cell(value)
        if v is _MISSING:
            continue
        spec = specs.get(name)
        if spec is not None and spec.kind == "bool" and isinstance(v, str):
            original[name] = v
            v = v.strip(_TRIM)  # booleans are trimmed like numbers
        raw[name] = v
    if not raw:
        return None
    order = {n: i for i, n in enumerate(model.model_fields)}
    spaced = [n for n in model.model_fields if n in raw and specs[n].kind in ("int", "float")
              and isinstance(raw[n], str) and "_" in raw[n]]

    def underscore() -> InputError:
        n = spaced[0]
        what = "integer" if specs[n].kind == "int" else "number"
        return InputError(file, f"Input should be a valid {what}, written without '_' between digits "
                                f"(got {raw[n]!r})", row=row_no, line=line, column=n)

    try:
        rec = model.model_validate(raw).model_dump()
    except ValidationError as exc:
        err = exc.errors()[0]
        column = str(err["loc"][0]) if err.get("loc") else None
        if spaced and (column not in order or order[spaced[0]] <= order[column]):
            raise underscore() from None
        if err.get("type") == "missing":
            raise InputError(file, "value is required", row=row_no, line=line, column=column) from None
        raise InputError(file, _describe(err, original.get(column or "")), row=row_no, line=line,
                         column=column) from None
    if spaced:
        raise underscore()
    for name, value in rec.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(file, "must be a finite number", row=row_no, line=line, column=name)
    return rec


def _first_duplicate(cols: list[np.ndarray]) -> tuple[int, int] | None:
    """(position of the first row whose key repeats an earlier one, position of that earlier row), or None.

    By a stable sort of the key columns (text as fixed-width bytes): about 20 bytes a row, where hashing the text
    (pandas' ``duplicated``) took over 70."""
    if not len(cols) or not len(cols[0]):
        return None
    keys = []
    for c in cols:
        if c.dtype.kind == "O":
            try:
                c = c.astype("S") if all(map(str.isascii, c)) else c.astype("U")
            except (TypeError, ValueError, UnicodeEncodeError):
                dup = pd.DataFrame({str(i): c for i, c in enumerate(cols)}, copy=False).duplicated().to_numpy()
                return _earliest(cols, int(dup.argmax())) if dup.any() else None
        keys.append(c)
    order = np.lexsort(keys[::-1])  # stable: equal keys keep their rows' order
    n = len(order)
    same = np.zeros(n - 1, dtype=bool)
    step = 1 << 16
    for a in range(0, n - 1, step):  # in blocks: no sorted copy of the keys
        idx = order[a:a + step + 1]
        eq = np.ones(len(idx) - 1, dtype=bool)
        for c in keys:
            eq &= c[idx[1:]] == c[idx[:-1]]
        same[a:a + len(eq)] = eq
    second = same & ~np.concatenate(([False], same[:-1]))  # the second row of each group of equal keys
    if not second.any():
        return None
    t = np.flatnonzero(second)
    k = int(t[np.argmin(order[t + 1])])
    return int(order[k + 1]), int(order[k])


def _earliest(cols: list[np.ndarray], j: int) -> tuple[int, int]:
    same = np.ones(j, dtype=bool)
    for c in cols:
        same &= c[:j] == c[j]
    return j, int(same.argmax())


def _frame_chunks(frame: pd.DataFrame, positions: list[int],
                  size: int) -> Iterator[tuple[list[np.ndarray], np.ndarray, np.ndarray | None]]:
    n = len(frame)
    rows = frame["_row"].to_numpy() if "_row" in frame.columns else np.arange(1, n + 1)
    lines = frame["_line"].to_numpy() if "_line" in frame.columns else None
    for a in range(0, max(n, 1), size):
        part = frame.iloc[a:a + size]
        cols = []
        for j in positions:
            col = part.iloc[:, j]
            arr = col.to_numpy() if isinstance(col.dtype, np.dtype) else col.to_numpy(dtype=object)
            cols.append(arr)
        yield (cols, np.asarray(rows[a:a + size]).astype(np.int64),
               None if lines is None else np.asarray(lines[a:a + size]).astype(np.int64))


#: False sends every row through the row model, as before the vectorised checks (tests compare the two).
FAST_CHECKS = True


def validate_frame(frame: pd.DataFrame | CsvTable, model: type[_Row], file: str | Path,
                   key: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Validate every cell of one table and return the typed frame (see ``_frame``).

    ``frame`` is a DataFrame (any importer) or a ``CsvTable`` from ``scan_csv`` (read a chunk at a time).
    Columns are the CSV file's column names (any order; optional ones may be left out, and then take
    their defaults; a ``filled_when_given`` column the table has needs every cell filled). Missing
    values are None, NaN, NA or blank text. ``key`` names the columns whose values must be unique.
    Rows are named by the ``_row`` column if the frame has one (else position from 1) and by
    ``_line`` if present (a CSV's physical line). Raises ``InputError`` at the first broken cell,
    naming ``file``, row, line and column, with the same rules and words as the CSV reader.
    """
    if isinstance(frame, CsvTable):
        header = list(frame.header)
        chunks: Iterator[tuple[list[np.ndarray], np.ndarray, np.ndarray | None]] = frame.chunks()
        has_line = True
    else:
        positions = [j for j, c in enumerate(frame.columns) if c not in BOOKKEEPING]
        header = [str(frame.columns[j]).strip() for j in positions]
        has_line = "_line" in frame.columns
        check_header(file, header, model, line=None)
        chunks = _frame_chunks(frame, positions, CHUNK_ROWS)
    model = as_given(model, header)  # a column the table has needs its cells filled (``filled_when_given``)
    specs = _specs(model)
    fields = list(model.model_fields)
    total = frame.rows if isinstance(frame, CsvTable) else len(frame)
    # the typed table, allocated once and filled a chunk at a time (no concatenation, no fragments)
    columns = {f: _empty(specs[f].out, total) for f in fields}
    all_rows = np.zeros(total, dtype=np.int64)
    all_lines = np.zeros(total if has_line else 0, dtype=np.int64)
    key_idx = list(key) if key else []
    at = 0
    try:
        for cols, rows, lines in chunks:
            miss = [_missing(c) for c in cols]
            if len(rows):
                blank = np.logical_and.reduce(miss) if miss else np.ones(len(rows), dtype=bool)
                if blank.any():  # a blank row, as a blank CSV line
                    keep = ~blank
                    cols = [c[keep] for c in cols]
                    miss = [m[keep] for m in miss]
                    rows = rows[keep]
                    lines = None if lines is None else lines[keep]
            n = len(rows)
            if at + n > total:  # the file grew since it was scanned
                raise InputError(file, "changed while it was read")
            by_name = dict(zip(header, range(len(header))))
            out: dict[str, np.ndarray] = {}
            certain = np.ones(n, dtype=bool)
            for f in fields:
                spec = specs[f]
                if f in by_name:
                    j = by_name[f]
                    vals, ok = _fast(spec, cols[j], miss[j])
                    if not FAST_CHECKS:
                        ok = np.zeros(n, dtype=bool)
                else:
                    vals, ok = _fast(spec, np.empty(n, dtype=object), np.ones(n, dtype=bool))
                columns[f][at:at + n] = vals
                out[f] = columns[f][at:at + n]  # a view: the row model's values land in the table
                certain &= ok
            all_rows[at:at + n] = rows
            if has_line and lines is not None:
                all_lines[at:at + n] = lines
            for i in np.flatnonzero(~certain):
                line = None if lines is None else int(lines[i])
                try:
                    rec = _validate_row(model, header, [c[i] for c in cols], file, int(rows[i]), line)
                except InputError:
                    earlier = _first_duplicate([columns[k][:at + i] for k in key_idx]) if key_idx else None
                    if earlier is None:
                        raise
                    raise _duplicate_error(earlier, key_idx, [columns[k][:at + i] for k in key_idx], all_rows,
                                           all_lines if has_line else None, file) from None
                assert rec is not None
                for f in fields:
                    v = rec[f]
                    out[f][i] = (math.nan if v is None else float(v)) if specs[f].out == "float" else v
            at += n
    finally:
        if isinstance(chunks, Iterator) and hasattr(chunks, "close"):
            chunks.close()  # ends the reading at once (and its pause of the garbage collector)
    if at < total:  # blank rows of a frame left out
        columns = {f: c[:at].copy() for f, c in columns.items()}
        all_rows = all_rows[:at].copy()
        all_lines = all_lines[:at].copy() if has_line else all_lines
    if key_idx:
        found = _first_duplicate([columns[k] for k in key_idx])
        if found is not None:
            raise _duplicate_error(found, key_idx, [columns[k] for k in key_idx], all_rows,
                                   all_lines if has_line else None, file)
    # text stays object (str or None, never NaN): pandas would infer its string dtype
    data: dict[str, pd.Series] = {f: pd.Series(columns.pop(f), dtype=object if specs[f].out == "text" else None,
                                               copy=False) for f in fields}
    data["_row"] = pd.Series(all_rows, copy=False)
    if has_line:
        data["_line"] = pd.Series(all_lines, copy=False)
    return pd.DataFrame(data, copy=False)


def _empty(kind: str, n: int) -> np.ndarray:
    """An output column of ``n`` rows: text (object), bool, int64 or float64 (as ``_frame``)."""
    if kind == "text":
        return np.full(n, None, dtype=object)
    return np.zeros(n, dtype=bool if kind == "bool" else np.int64 if kind == "int" else np.float64)


def _duplicate_error(found: tuple[int, int], key: list[str], cols: list[np.ndarray], rows: np.ndarray,
                     lines: np.ndarray | None, file: str | Path) -> InputError:
    j, first = found
    k = [c[j].item() if isinstance(c[j], np.generic) else c[j] for c in cols]
    return InputError(
        file,
        f"duplicate {' + '.join(key)} {'/'.join(map(str, k))} (first at row {int(rows[first])})",
        row=int(rows[j]), line=None if lines is None else int(lines[j]), column=key[0],
    )


def _is_text(kind: Any) -> bool:
    """True for str, Annotated[str, ...] and their optional forms."""
    if kind is str:
        return True
    if get_origin(kind) is Annotated:
        return _is_text(get_args(kind)[0])
    return any(_is_text(a) for a in get_args(kind) if a is not type(None))
