"""Importers: public benchmark files as Envelope instances, with the scenarios and policy models that make
Envelope's objective the benchmark's own (docs/importing.md gives the mappings and why they are exact).

- ``read_pb``: a Pabulib participatory-budgeting file (``.pb``, or ``.pb.gz``) → a one-year instance: one
  system, one project per PB project (benefit = its votes or score, capital cost = its cost), the ballots,
  the budget as the year's capital envelope; scenarios ``greedy.toml`` and ``equal-shares.toml``.
- ``read_mkp``: one problem of an OR-Library multidimensional knapsack file (``mknap1.txt``,
  ``mknapcb1.txt`` …) → one project per item (benefit = profit), one envelope year per constraint
  (capital = capacity), each item's cost profile its weights; scenario ``scenario.toml``.

Parsing only: each returns an ``Imported`` (the tables as text frames, ``instance.toml`` and the other files
as text); nothing is written and no solver is touched. A malformed file is an ``InputError`` naming the file,
the line and what is wrong.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import unicodedata
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pandas as pd

from solver.data.instance import Instance, validate_tables
from solver.data.readers import MAX_FILE_BYTES, safe_text
from solver.errors import InputError

#: The money cells' limit (``Money``: at most 1e6 units, 3 decimals).
MAX_UNITS = Decimal(1_000_000)
#: The longest text cell (``Text``).
MAX_TEXT = 300
_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
#: First year of an imported instance when the file names none (an MKP has no calendar: years are labels).
DEFAULT_YEAR = 2026


@dataclass(frozen=True)
class Imported:
    """An imported instance folder: ``instance.toml`` (``meta``), the tables as frames of text cells with the CSV
    files' column names (``tables``: validated by ``validate``, written by ``files``), and the other files as text
    (``extra``: scenarios, policy models, side tables). ``scenarios`` names the scenario files among them."""

    meta: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    extra: dict[str, str] = field(default_factory=dict)
    scenarios: tuple[str, ...] = ()
    source: str = ""

    def validate(self) -> Instance:
        """The instance the folder will hold, through the one validation path (``validate_tables``)."""
        return validate_tables(self.tables, self.source, self.meta)

    def files(self) -> dict[str, str]:
        """Every file of the folder as text: ``instance.toml``, one CSV per table, then ``extra``."""
        out = {"instance.toml": instance_toml(self.meta)}
        for name, frame in self.tables.items():
            out[f"{name}.csv"] = csv_text(frame)
        out.update(self.extra)
        return out


def _error(path: Path, rule: str, line: int | None) -> InputError:
    """``InputError`` naming the file and, when known, the line (a benchmark file has lines, not rows)."""
    return InputError(path, f"line {line}: {rule}" if line is not None else rule, line=line)


# --------------------------------------------------------------------------- text helpers


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string: quotes, backslashes and control characters escaped, the rest as is."""
    out = ['"']
    for ch in text:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def instance_toml(meta: dict[str, Any]) -> str:
    """``instance.toml`` for ``meta`` (name, description, currency, years, synthetic, sources)."""
    lines = [f"name = {toml_string(meta['name'])}",
             f"description = {toml_string(meta.get('description', ''))}",
             f"currency = {toml_string(meta.get('currency', 'GBPm'))}",
             f"years = [{', '.join(str(int(y)) for y in meta['years'])}]",
             f"synthetic = {toml_string(meta.get('synthetic', ''))}",
             "", "[sources]"]
    lines += [f"{toml_string(k)} = {toml_string(v)}" for k, v in meta.get("sources", {}).items()]
    return "\n".join(lines) + "\n"


def csv_text(frame: pd.DataFrame) -> str:
    """A frame of text cells as a comma-separated file (LF line ends, minimal quoting, cells as they are)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(frame.columns))
    writer.writerows(frame.itertuples(index=False, name=None))
    return buf.getvalue()


def decimal_text(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros (``4000``, ``419.52``)."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def _clip(text: str) -> str:
    """Text for a ``Text`` cell: trimmed, at most ``MAX_TEXT`` characters (longer text ends with '…')."""
    text = text.strip()
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _slug(text: str, fallback: str) -> str:
    """An id made from ``text``: ASCII letters, digits, '_', '.', '-' (accents dropped, other runs as '-')."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9_.\-]+", "-", ascii_text).strip("-")[:64]
    return slug or fallback


def _policy_toml(name: str, description: str, allocation: dict[str, Any] | None) -> str:
    """A policy model whose objective is the plain sum of benefit points of the funded projects: no access fee,
    no match funding, run costs ignored, no standardisation, every need weight 1, one year at no discount."""
    lines = [
        f"# {description}",
        "# Every value of a funded project is its benefit: need weights 1 (category weights 1, need index",
        "# ignored), one appraisal year at no discount, nothing else in the objective; no fee, no match, no",
        "# run costs, no standardisation, so the only rules that bind are the budgets.",
        f"name = {toml_string(name)}",
        f"description = {toml_string(description)}",
        "",
        "[objective]",
        "benefit_weight = 1.0",
        "spend_weight = 0.0",
        "horizon_years = 1",
        "discount_rate = 0.0",
        "",
        "[need]",
        'category_weights = { "0" = 1.0, "1" = 1.0, "2" = 1.0, "3" = 1.0 }',
        "need_index_power = 0.0",
        "",
        "[budget]",
        "carry_over = 0.0",
        "capital_to_revenue = 0.0",
        "",
        "[revenue_consequences]",
        'payer = "ignore"',
        "",
        "[match_funding]",
        "enabled = false",
        "",
        "[fee]",
        "rate = 0.0",
        "",
        "[fair_share]",
        'mode = "off"',
        "",
        "[standardisation]",
        'mode = "off"',
    ]
    if allocation:
        lines += ["", "[allocation]"]
        for key, value in allocation.items():
            lines.append(f"{key} = {toml_string(value) if isinstance(value, str) else repr(value)}")
    return "\n".join(lines) + "\n"


def _scenario_toml(description: str, model: str, solver: str = "") -> str:
    return (f"description = {toml_string(description)}\n"
            'instance = "."\n'
            f"model = {toml_string(model)}\n"
            f"\n[solver]\nmip_gap = 0.0\n{solver}")


# --------------------------------------------------------------------------- reading files


def read_text(path: str | Path) -> str:
    """A benchmark file as text: at most ``MAX_FILE_BYTES`` (also once decompressed: ``.gz`` files, or any file
    starting with gzip's magic bytes, are read through gzip), UTF-8 (a BOM is dropped), no NUL bytes."""
    path = Path(path)
    try:
        if not path.is_file():
            raise InputError(path, "file not found")
        with path.open("rb") as f:
            head = f.read(2)
            f.seek(0)
            if head == b"\x1f\x8b":
                data = _gunzip(path, f)
            else:
                data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(path, f"cannot read file ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(path, f"is larger than {MAX_FILE_BYTES // 2**20} MiB")
    if b"\x00" in data:
        raise _error(path, "contains NUL bytes; not a text file", data[: data.index(b"\x00")].count(b"\n") + 1)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _error(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                     data[: exc.start].count(b"\n") + 1) from None


def _gunzip(path: Path, f: Any) -> bytes:
    try:
        with gzip.GzipFile(fileobj=f) as z:
            return z.read(MAX_FILE_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(path, f"not a readable gzip file ({exc})") from None


def _number(path: Path, text: str, what: str, line: int | None) -> Decimal:
    """A finite decimal number (``Decimal``: exact), or an ``InputError``."""
    t = text.strip()
    try:
        value = Decimal(t)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", t):
        raise _error(path, f"{what} must be a number (got {safe_text(t)[:40]!r})", line)
    return value


# --------------------------------------------------------------------------- Pabulib


@dataclass
class _Section:
    name: str
    line: int
    header: list[str] | None = None
    header_line: int = 0
    rows: list[tuple[int, list[str]]] = field(default_factory=list)


def _pb_sections(path: Path, text: str) -> dict[str, _Section]:
    """The META, PROJECTS and VOTES sections (each: its header and rows with their physical lines)."""
    sections: dict[str, _Section] = {}
    current: _Section | None = None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";", strict=True)
    start = 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if reader.line_num > line:      # a quoted cell ran over a line end: a quote left open
                raise _error(path, f"a quoted cell runs from line {line} to line {reader.line_num}: an unterminated "
                                   "quote (\") in that cell?", line)
            if not row or all(not c.strip() for c in row):
                continue
            word = row[0].strip()
            if word.upper() in ("META", "PROJECTS", "VOTES") and not any(c.strip() for c in row[1:]):
                name = word.upper()
                if name in sections:
                    raise _error(path, f"section {name} appears twice", line)
                current = sections[name] = _Section(name, line)
                continue
            if current is None:
                raise _error(path, f"expected the section line META (got {safe_text(';'.join(row))[:40]!r})", line)
            cells = [c.strip() for c in row]
            if current.header is None:
                if len(set(cells)) != len(cells):
                    raise _error(path, f"{current.name} header repeats a column", line)
                current.header, current.header_line = cells, line
            else:
                current.rows.append((line, cells))
    except csv.Error as exc:
        raise _error(path, f"malformed line: {exc}", start) from None
    for name in ("META", "PROJECTS"):
        if name not in sections:
            raise InputError(path, f"has no {name} section; a Pabulib file has META, PROJECTS and VOTES")
    return sections


def _column(path: Path, sec: _Section, name: str, required: bool = True) -> int | None:
    assert sec.header is not None
    if name in sec.header:
        return sec.header.index(name)
    if required:
        raise _error(path, f"{sec.name} has no '{name}' column (columns: {', '.join(sec.header)})",
                     sec.header_line or sec.line)
    return None


def _records(path: Path, sec: _Section) -> Iterator[tuple[int, list[str]]]:
    assert sec.header is not None
    n = len(sec.header)
    for line, cells in sec.rows:
        if len(cells) > n and not any(cells[n:]):  # trailing empty cells
            cells = cells[:n]
        if len(cells) != n:
            raise _error(path, f"{sec.name} row has {len(cells)} cells, its header has {n}", line)
        yield line, cells


def _money_unit(path: Path, amounts: list[Decimal]) -> int:
    """The power of ten ``k`` (1 money unit of the instance = 10**k of the file's currency) that writes every
    amount exactly with at most 3 decimals and at most ``MAX_UNITS`` units: 3 (thousands) when it can, else the
    nearest that works."""
    top = max(amounts, default=Decimal(0))
    for k in (3, 2, 1, 0, -1, -2, -3, 4, 5, 6, 7, 8, 9, 10, 11, 12):
        scale = Decimal(10) ** k
        if top / scale <= MAX_UNITS and all((a * 1000 / scale) == (a * 1000 / scale).to_integral_value()
                                            for a in amounts):
            return k
    raise InputError(path, "the budget and costs cannot all be written exactly in one money unit with at most 3 "
                           f"decimals and at most {MAX_UNITS:,} units (largest amount {decimal_text(top)})")


def _unit_text(k: int, currency: str) -> str:
    scale = Decimal(10) ** k
    return f"{decimal_text(scale) if k < 0 else f'{10 ** k:,}'} {currency}"


def read_pb(path: str | Path) -> Imported:
    """A Pabulib ``.pb`` file (or ``.pb.gz``) as a one-year instance plus the scenarios ``greedy.toml`` (the
    utilitarian greedy rule by votes, with the file's ``min_project_score_threshold``) and ``equal-shares.toml``
    (the Method of Equal Shares), each with its policy model (``pb-greedy.toml``, ``pb-equal-shares.toml``), and,
    if the file has a ``selected`` column, ``pabulib_selected.csv`` (project_id, selected). See docs/importing.md."""
    path = Path(path)
    text = read_text(path)
    sections = _pb_sections(path, text)

    meta_sec = sections["META"]
    meta: dict[str, str] = {}
    meta_line: dict[str, int] = {}
    for line, cells in meta_sec.rows:
        key = cells[0]
        if key in meta:
            raise _error(path, f"META key '{safe_text(key)}' appears twice", line)
        meta[key] = ";".join(cells[1:]).strip()
        meta_line[key] = line
    if "budget" not in meta:
        raise _error(path, "META has no 'budget'", meta_sec.line)
    budget = _number(path, meta["budget"], "META budget", meta_line["budget"])
    if budget < 0:
        raise _error(path, "META budget must be >= 0", meta_line["budget"])
    vote_type = meta.get("vote_type", "approval").strip().lower()
    if vote_type not in ("approval", "cumulative", "scoring"):
        raise _error(path, f"META vote_type '{safe_text(vote_type)}' is not supported: approval, cumulative and "
                           "scoring ballots give utilities; ranked (ordinal) ballots do not",
                     meta_line.get("vote_type"))
    threshold = Decimal(0)
    if meta.get("min_project_score_threshold", "").strip():
        threshold = _number(path, meta["min_project_score_threshold"], "META min_project_score_threshold",
                            meta_line["min_project_score_threshold"])
        if threshold < 0:
            raise _error(path, "META min_project_score_threshold must be >= 0",
                         meta_line["min_project_score_threshold"])
    currency = meta.get("currency", "").strip() or "units of the file's currency"

    # projects
    psec = sections["PROJECTS"]
    if psec.header is None:
        raise _error(path, "PROJECTS has no header line", psec.line)
    i_id = _column(path, psec, "project_id")
    i_cost = _column(path, psec, "cost")
    i_score = _column(path, psec, "score", required=False)
    i_votes = _column(path, psec, "votes", required=False)
    i_name = _column(path, psec, "name", required=False)
    i_district = _column(path, psec, "district", required=False)
    i_category = _column(path, psec, "category", required=False)
    i_selected = _column(path, psec, "selected", required=False)
    i_benefit = i_score if i_score is not None else i_votes
    ids: list[str] = []
    costs: dict[str, Decimal] = {}
    benefit: dict[str, Decimal] = {}
    names: dict[str, str] = {}
    kinds: dict[str, str] = {}
    selected: dict[str, str] = {}
    line_of: dict[str, int] = {}
    for line, cells in _records(path, psec):
        pid = cells[i_id]  # type: ignore[index]
        if not _ID.fullmatch(pid):
            raise _error(path, f"project_id {safe_text(pid)[:70]!r} is not usable as an id (1-64 letters, digits, "
                                   "'_', '.', '-')", line)
        if pid in costs:
            raise _error(path, f"project_id '{pid}' appears twice (first at line {line_of[pid]})", line)
        line_of[pid] = line
        cost = _number(path, cells[i_cost], f"project {pid}: cost", line)  # type: ignore[index]
        if cost < 0:
            raise _error(path, f"project {pid}: cost must be >= 0", line)
        ids.append(pid)
        costs[pid] = cost
        if i_benefit is not None:
            label = psec.header[i_benefit]  # type: ignore[index]
            b = _number(path, cells[i_benefit], f"project {pid}: {label}", line)
            if b < 0:
                raise _error(path, f"project {pid}: {label} must be >= 0", line)
            benefit[pid] = b
        if i_name is not None:
            names[pid] = _clip(cells[i_name])
        kind = cells[i_district] if i_district is not None and cells[i_district] else \
            cells[i_category] if i_category is not None else ""
        kinds[pid] = _clip(kind)
        if i_selected is not None:
            selected[pid] = cells[i_selected]
    if not ids:
        raise _error(path, "PROJECTS has no project", psec.line)

    # ballots
    ballots: list[tuple[str, str, Decimal]] = []
    empty_ballots = 0
    n_ballots = 0
    vsec = sections.get("VOTES")
    if vsec is not None and vsec.header is not None:
        i_voter = _column(path, vsec, "voter_id")
        i_vote = _column(path, vsec, "vote")
        i_points = _column(path, vsec, "points", required=vote_type != "approval")
        seen: dict[str, int] = {}
        for line, cells in _records(path, vsec):
            voter = cells[i_voter]  # type: ignore[index]
            if not _ID.fullmatch(voter):
                raise _error(path, f"voter_id {safe_text(voter)[:70]!r} is not usable as an id (1-64 letters, "
                                       "digits, '_', '.', '-')", line)
            if voter in seen:
                raise _error(path, f"voter_id '{voter}' appears twice (first at line {seen[voter]})", line)
            seen[voter] = line
            n_ballots += 1
            vote = [v.strip() for v in cells[i_vote].split(",")] if cells[i_vote].strip() else []  # type: ignore[index]
            if not vote:
                empty_ballots += 1
                continue
            if i_points is not None:
                raw = [p.strip() for p in cells[i_points].split(",")] if cells[i_points].strip() else []
                if len(raw) != len(vote):
                    raise _error(path, f"voter {voter}: {len(vote)} projects but {len(raw)} points", line)
                points = [_number(path, p, f"voter {voter}: points", line) for p in raw]
            else:
                points = [Decimal(1)] * len(vote)
            done: set[str] = set()
            for pid, pts in zip(vote, points):
                if pid not in costs:
                    raise _error(path, f"voter {voter} votes for unknown project {safe_text(pid)[:70]!r}", line)
                if pid in done:
                    raise _error(path, f"voter {voter} votes for project {pid} twice", line)
                if pts < 0:
                    raise _error(path, f"voter {voter}: points must be >= 0", line)
                done.add(pid)
                ballots.append((voter, pid, pts))
    if i_benefit is None:  # no votes column: the ballots' counts (points)
        if vsec is None:
            raise InputError(path, "PROJECTS has no 'votes' or 'score' column and the file has no VOTES")
        for pid in ids:
            benefit[pid] = Decimal(0)
        for _, pid, pts in ballots:
            benefit[pid] += pts

    # money: one unit that keeps every amount exact
    k = _money_unit(path, [budget, *costs.values()])
    scale = Decimal(10) ** k
    unit = _unit_text(k, currency)
    stem = path.name.removesuffix(".gz").removesuffix(".pb") or "pabulib"
    name = _clip(stem)[:100]
    year = _pb_year(meta)
    unit_name = meta.get("unit", "").strip()
    system_id = _slug(unit_name, "city")

    systems = pd.DataFrame({"system_id": [system_id], "name": [_clip(unit_name or stem) or system_id],
                            "weighted_population": ["1"]})
    projects = pd.DataFrame({"project_id": ids, "system_id": [system_id] * len(ids)})
    if names:
        projects["name"] = [names[p] or p for p in ids]
    if any(kinds.values()):
        projects["kind"] = [kinds[p] for p in ids]
    projects["benefit"] = [decimal_text(benefit[p]) for p in ids]
    costs_frame = pd.DataFrame({"project_id": ids, "year_offset": ["0"] * len(ids),
                                "capital": [decimal_text(costs[p] / scale) for p in ids], "revenue": ["0"] * len(ids)})
    envelope = pd.DataFrame({"year": [str(year)], "capital": [decimal_text(budget / scale)], "revenue": ["0"]})
    dependencies = pd.DataFrame({"project_id": [], "requires": [], "lag_years": []}, dtype=object)
    ballot_frame = pd.DataFrame({"voter_id": [b[0] for b in ballots], "project_id": [b[1] for b in ballots]})
    if vote_type != "approval":
        ballot_frame["utility"] = [decimal_text(b[2]) for b in ballots]
    tables = {"systems": systems, "projects": projects, "costs": costs_frame, "dependencies": dependencies,
              "envelope": envelope, "ballots": ballot_frame}

    description = (f"{meta.get('description', '').strip() or 'Participatory budgeting'} ({unit_name or stem}, "
                   f"{meta.get('instance', '').strip() or year}), imported from the Pabulib file {path.name}. "
                   f"Money columns in units of {unit} (every amount exact); benefit = votes.")
    sources = {
        "pabulib": f"{path.name} (Pabulib, pabulib.org; cite Faliszewski et al., 'Participatory Budgeting: Data, "
                   "Tools and Analysis', IJCAI 2023); no data licence stated",
        "currency_note": f"the format's money columns (written as GBPm) carry {currency} here: 1 unit = {unit}; "
                         f"every amount is exact (budget {decimal_text(budget)} {currency} = "
                         f"{decimal_text(budget / scale)} units)",
        "money_unit_exponent": str(k),
        "benefit": f"each project's benefit is its '{psec.header[i_benefit]}' from the file" if i_benefit is not None
        else "each project's benefit is its number of approvals (sum of points) on the ballots",
        "ballots": f"{n_ballots} ballots ({vote_type}), {empty_ballots} empty (not in ballots.csv)",
    }
    if threshold:
        sources["min_project_score_threshold"] = decimal_text(threshold)
    meta_doc = {"name": name, "description": description, "currency": "GBPm", "years": [year],
                "synthetic": "", "sources": sources}

    min_benefit = float(threshold)
    extra = {
        "pb-greedy.toml": _policy_toml(
            "pb-greedy", f"Pabulib {stem}: utilitarian greedy by votes (projects below {decimal_text(threshold)} "
                         "votes are never funded)",
            {"method": "greedy", "order": "value", "min_benefit": min_benefit}),
        "pb-equal-shares.toml": _policy_toml(
            "pb-equal-shares", f"Pabulib {stem}: the Method of Equal Shares (Add1 completion, then utilitarian "
                               "greedy)", {"method": "equal-shares"}),
        "greedy.toml": _scenario_toml(f"{stem}: the utilitarian greedy rule by votes (what Pabulib's 'rule' field "
                                      f"says the city used: {meta.get('rule', 'not stated')})", "pb-greedy.toml"),
        "equal-shares.toml": _scenario_toml(f"{stem}: the Method of Equal Shares on the ballots",
                                            "pb-equal-shares.toml"),
    }
    if selected:
        extra["pabulib_selected.csv"] = csv_text(pd.DataFrame({"project_id": ids,
                                                               "selected": [selected[p] for p in ids]}))
    return Imported(meta=meta_doc, tables=tables, extra=extra, scenarios=("greedy.toml", "equal-shares.toml"),
                    source=str(path))


def _pb_year(meta: dict[str, str]) -> int:
    """The instance's year: META ``instance`` when it is a year, else the first year in ``instance``,
    ``date_begin`` or ``date_end``, else ``DEFAULT_YEAR``."""
    for key in ("instance", "date_begin", "date_end"):
        found = re.search(r"(?<!\d)(19\d\d|20\d\d|21\d\d)(?!\d)", meta.get(key, ""))
        if found:
            return int(found.group(1))
    return DEFAULT_YEAR


# --------------------------------------------------------------------------- OR-Library MKP


class _Tokens:
    """Whitespace-separated numbers of a file, with the line each is on."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.items = [(tok, n) for n, line in enumerate(text.splitlines(), start=1) for tok in line.split()]
        self.at = 0

    def next(self, what: str) -> tuple[Decimal, int]:
        if self.at >= len(self.items):
            last = self.items[-1][1] if self.items else 1
            raise _error(self.path, f"ends early: expected {what}", last)
        tok, line = self.items[self.at]
        self.at += 1
        return _number(self.path, tok, what, line), line

    def integer(self, what: str, low: int, high: int | None = None) -> tuple[int, int]:
        value, line = self.next(what)
        if value != value.to_integral_value() or value < low or (high is not None and value > high):
            bound = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
            raise _error(self.path, f"{what} must be {bound} (got {decimal_text(value)})", line)
        return int(value), line


def _money_cell(path: Path, value: Decimal, what: str, line: int) -> str:
    if value < 0 or value > MAX_UNITS or value * 1000 != (value * 1000).to_integral_value():
        raise _error(path, f"{what} must be an amount from 0 to {MAX_UNITS:,} with at most 3 decimals "
                               f"(got {decimal_text(value)})", line)
    return decimal_text(value)


def read_mkp(path: str | Path, index: int) -> Imported:
    """Problem ``index`` (from 0) of an OR-Library multidimensional knapsack file as an instance whose optimal
    objective is the problem's optimal total profit, plus ``mkp.toml`` (the model) and ``scenario.toml`` (gap 0).

    File format (whitespace-separated): the number of problems K; then per problem ``n m opt``, the n profits,
    the m × n constraint coefficients (row by row) and the m capacities (``opt`` is 0 when unknown)."""
    path = Path(path)
    toks = _Tokens(path, read_text(path))
    count, _ = toks.integer("the number of problems", 1)
    if not 0 <= index < count:
        raise InputError(path, f"--index {index} is out of range: the file has {count} problem"
                               f"{'s' if count != 1 else ''} (0-{count - 1})")
    for j in range(index + 1):
        n, _ = toks.integer(f"problem {j}: the number of items", 1, 100_000)
        m, line = toks.integer(f"problem {j}: the number of constraints", 1)
        opt, _ = toks.next(f"problem {j}: the optimum")
        if j < index:
            toks.at += n + m * n + m
            continue
        if m > 30:
            raise _error(path, f"problem {j} has {m} constraints; an instance has at most 30 years, one per "
                                   "constraint", line)
        profits = [toks.next(f"problem {j}: profit of item {i + 1}") for i in range(n)]
        weights = [[toks.next(f"problem {j}: constraint {r + 1}, item {i + 1}") for i in range(n)] for r in range(m)]
        caps = [toks.next(f"problem {j}: capacity of constraint {r + 1}") for r in range(m)]
    width = len(str(n))
    ids = [f"item{i + 1:0{width}d}" for i in range(n)]
    years = [DEFAULT_YEAR + r for r in range(m)]
    for i, (p, line) in enumerate(profits):
        if p < 0 or p > Decimal(10) ** 9:
            raise _error(path, f"problem {index}: profit of item {i + 1} must be from 0 to 1e9 "
                                   f"(got {decimal_text(p)})", line)
    rows = [(ids[i], str(r), _money_cell(path, weights[r][i][0], f"problem {index}: constraint {r + 1}, item {i + 1}",
                                         weights[r][i][1]))
            for i in range(n) for r in range(m)]
    stem = path.name.removesuffix(".gz").removesuffix(".txt")
    name = _slug(f"{stem}-{index}", "mkp")[:100]
    system = "all"
    tables = {
        "systems": pd.DataFrame({"system_id": [system], "name": ["all items"], "weighted_population": ["1"]}),
        "projects": pd.DataFrame({"project_id": ids, "system_id": [system] * n,
                                  "benefit": [decimal_text(p) for p, _ in profits],
                                  "earliest_start": [str(years[0])] * n, "latest_start": [str(years[0])] * n}),
        "costs": pd.DataFrame({"project_id": [r[0] for r in rows], "year_offset": [r[1] for r in rows],
                               "capital": [r[2] for r in rows], "revenue": ["0"] * len(rows)}),
        "dependencies": pd.DataFrame({"project_id": [], "requires": [], "lag_years": []}, dtype=object),
        "envelope": pd.DataFrame({"year": [str(y) for y in years],
                                  "capital": [_money_cell(path, c, f"problem {index}: capacity of constraint {r + 1}",
                                                          line) for r, (c, line) in enumerate(caps)],
                                  "revenue": ["0"] * m}),
    }
    known = decimal_text(opt) if opt > 0 else "not given in the file (0)"
    meta_doc = {
        "name": name,
        "description": f"OR-Library multidimensional knapsack {path.name}, problem {index} (from 0): {n} items, "
                       f"{m} constraints; optimum in the file: {known}. One project per item (benefit = profit), "
                       "one envelope year per constraint (capital = capacity), each item's cost profile its "
                       "weights (year offset r = constraint r + 1).",
        "currency": "GBPm", "years": years, "synthetic": "",
        "sources": {"or-library": f"{path.name} (J.E. Beasley, OR-Library; cite Beasley 1990, J. Oper. Res. Soc. "
                                  "41:1069-1072, and Chu & Beasley 1998, J. Heuristics 4:63-86)",
                    "optimum": known,
                    "units": "profits, weights and capacities as in the file (the money columns' unit is "
                             "the file's, not GBP)"},
    }
    extra = {
        "mkp.toml": _policy_toml("mkp", f"OR-Library MKP {stem} problem {index}: maximise the total profit of "
                                        "the items chosen within every capacity", None),
        "scenario.toml": _scenario_toml(f"OR-Library MKP {stem} problem {index}: the optimum is the maximum total "
                                        "profit", "mkp.toml"),
    }
    return Imported(meta=meta_doc, tables=tables, extra=extra, scenarios=("scenario.toml",), source=str(path))


__all__ = ["DEFAULT_YEAR", "Imported", "csv_text", "instance_toml", "read_mkp", "read_pb",
           "read_text", "toml_string"]
