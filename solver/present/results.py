"""A result folder read back as plain data, for the report and the workbook.

Every command that writes a folder (``solve``, the six analyses, ``compare``, ``diff``, ``batch``) is
read the same way: its CSV tables (with ``read_table``, so text comes back exactly as written) with
their number columns made numbers, its ``summary.json`` and, for a batch, its Parquet tables. A
result still in memory (``solve --report`` before its folder is written) goes through the same CSV
text, so a report made at solve time and one made later from the folder are the same.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from solver.errors import InputError
from solver.present.outputs import FLOAT_FORMAT, MARKER, read_table, spreadsheet_safe

#: ``summary.json``'s ``analysis`` value → the result kind (a solve's summary has no ``analysis``).
KINDS = {"ladder": "ladder", "value_of_money": "value", "rule_prices": "rules", "robust": "robust",
         "alternatives": "alternatives", "thresholds": "thresholds", "compare": "compare", "diff": "diff"}

#: Columns that hold identifiers or names, kept as text even when every cell looks like a number (``007``).
_TEXT = frozenset({"id", "scenario", "policy", "name", "label", "plan", "project", "trust", "system", "group",
                   "requires", "against", "base", "source"})


#: A number as Envelope writes one (``12``, ``-3.500000``, ``nan``/``inf`` aside): no exponent, no redundant leading
#: zero, so that ``007``, ``1e3`` or ``001;007`` stay the text they are.
_NUMBER = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?|-?inf"


@dataclass(frozen=True)
class Result:
    """One result folder: what wrote it (``kind``), its name and path, tables and summary."""

    kind: str
    name: str
    path: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    def table(self, name: str) -> pd.DataFrame | None:
        """The table ``name`` (without ``.csv``), or None when the folder has none."""
        return self.tables.get(name)


def _is_text(column: str) -> bool:
    return column in _TEXT or column.endswith(("_id", "_name"))


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """A table read as text with its number columns as numbers (an empty cell becomes NaN) and its
    True/False columns as booleans; identifier and word columns stay text."""
    out = frame.copy()
    for column in out.columns:
        if _is_text(str(column)):
            continue
        cells = out[column].astype(str)
        filled = cells[cells != ""]
        if len(filled) and filled.isin(["True", "False"]).all():
            out[column] = cells.map({"True": True, "False": False, "": None})
            continue
        if len(filled) and filled.str.fullmatch(_NUMBER).all():
            out[column] = pd.to_numeric(cells.where(cells != "", None), errors="coerce")
    return out


def csv_text(frame: pd.DataFrame) -> str:
    """A table as the CSV text ``write_folder`` writes for it."""
    return spreadsheet_safe(frame).to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n")


def _kind(summary: dict[str, Any], where: Path) -> str:
    analysis = summary.get("analysis")
    if analysis is None:
        return "solve"
    if analysis not in KINDS:
        raise InputError(where, f"summary.json: analysis '{analysis}' is not one Envelope writes ({', '.join(KINDS)})")
    return KINDS[str(analysis)]


def result_from_files(files: dict[str, Any], path: str | Path) -> Result:
    """A result still in memory — the ``files`` about to be written to ``path`` — read as it will be
    read back from the folder."""
    path = Path(path)
    summary = files.get("summary.json") or {}
    tables = {name[:-4]: typed(read_table(io.StringIO(csv_text(frame))))
              for name, frame in files.items() if name.endswith(".csv") and isinstance(frame, pd.DataFrame)}
    summary = json.loads(json.dumps(summary, default=str))
    return Result(kind=_kind(summary, path / "summary.json"), name=path.name, path=str(path), tables=tables,
                  summary=summary)


def read_result(folder: str | Path) -> Result:
    """The result folder ``folder`` (of any command that writes one); InputError when it is not one."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "is not a folder: give a result folder written by an envelope command")
    manifest = folder / "manifest.json"
    if manifest.is_file() and (folder / "runs.parquet").exists():
        return _read_batch(folder)
    summary_file = folder / "summary.json"
    if not summary_file.is_file():
        hint = "" if (folder / MARKER).exists() else " (and no .envelope-output marker)"
        raise InputError(folder, f"has no summary.json{hint}: give a result folder written by an envelope command")
    try:
        summary = json.loads(summary_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(summary_file, f"is not valid JSON: {exc}") from None
    if not isinstance(summary, dict):
        raise InputError(summary_file, "is not a JSON object")
    tables: dict[str, pd.DataFrame] = {}
    for csv in sorted(folder.glob("*.csv")):
        try:
            tables[csv.stem] = typed(read_table(csv))
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise InputError(csv, f"cannot be read as CSV: {exc}") from None
    return Result(kind=_kind(summary, summary_file), name=folder.resolve().name, path=str(folder),
                  tables=tables, summary=summary)


def _read_batch(folder: Path) -> Result:
    from solver.batch.store import read_results

    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        runs, plans = read_results(folder)
    except (ValueError, OSError) as exc:
        raise InputError(folder, f"cannot read the batch results: {exc}") from None
    return Result(kind="batch", name=folder.resolve().name, path=str(folder),
                  tables={"runs": runs.to_pandas(), "plans": plans.to_pandas()}, summary=manifest)
