"""A result folder as one workbook (``results.xlsx``): a ``summary`` sheet, then one sheet per table.

The summary sheet holds ``summary.json`` (a batch: ``manifest.json``) as key/value rows: nested objects
flattened to dotted keys (``solver.options.mip_gap``), lists as compact JSON text. Each table sheet has a bold,
frozen header row, an autofilter and column widths from its contents; number formats follow the column's name
(``column_format``): money in £m as ``#,##0.000``, a share (a fraction) as a percentage, a ``_pct`` column
(already in percent) with a % sign. Text stays text (a name ``=1+1`` is never a formula), and equal results give
equal bytes. Built from a ``Result`` (``read_result``), never from solver objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from solver.data.workbook import (
    MONEY_FORMAT,
    SHARE_FORMAT,
    add_sheet,
    excel_value,
    new_workbook,
    sheet_rows,
    sheet_title,
    to_bytes,
)
from solver.present.results import Result

#: A column already in percent (``fair_share_pct`` = 60.0 is 60%).
PERCENT_POINTS_FORMAT = '0.00"%"'
#: Words that make a column money (£m) when the column name has one of them as a ``_``-separated part ...
MONEY_WORDS = frozenset({
    "capital", "revenue", "fee", "allocation", "cost", "envelope", "spent", "spend", "unspent", "asked", "money",
    "headroom", "overspend", "draw", "cut", "withdrawal", "funding", "national", "local", "carried", "plus",
    "minus",
})
#: ... and none of these (counts, points, ratios, years, factors).
NOT_MONEY_WORDS = frozenset({
    "pct", "ratio", "rank", "index", "per", "factor", "count", "samples", "sample", "seq", "benefit", "value",
    "objective", "gain", "loss", "regret", "bound", "gap", "start", "year", "level", "systems", "projects",
    "trusts", "bids", "weight", "dual", "seconds", "density", "violation", "payer",
})
#: Money columns the words miss.
MONEY_NAMES = frozenset({"fair_share", "funded_total"})
#: Columns that are money when their table compares a before and an after (``envelope diff``'s by_* tables).
DIFF_MONEY = ("before", "after", "change")
#: The tables of a solve first, in the order a reader wants them; the others follow by name.
ORDER = ("plan", "budget", "systems", "trusts", "misses", "changes")


def column_format(name: str, columns: Iterable[str] = ()) -> str | None:
    """The number format of a numeric column, by its name: money, a share (a fraction), percent points or none."""
    n = str(name).lower()
    if n.endswith("_pct") or n.startswith("pct_") or "_pct_" in n:
        return PERCENT_POINTS_FORMAT
    if n.endswith(("_share", "_rate")) and not n.endswith("fair_share"):
        return SHARE_FORMAT
    if n.endswith("_to_fair_share"):
        return None
    if n in DIFF_MONEY:
        return MONEY_FORMAT if {"before", "after"} <= set(columns) else None
    words = set(n.split("_"))
    if n in MONEY_NAMES or (words & MONEY_WORDS and not words & NOT_MONEY_WORDS):
        return MONEY_FORMAT
    return None


def flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``summary.json`` as (key, value) rows: objects flattened to dotted keys, lists as compact JSON text."""
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows += flatten(value, f"{name}.")
        else:
            rows.append((name, excel_value(value)))
    return rows


def _formats(frame: pd.DataFrame) -> dict[int, str]:
    columns = [str(c) for c in frame.columns]
    out = {}
    for j, c in enumerate(columns):
        if pd.api.types.is_numeric_dtype(frame.iloc[:, j]) and not pd.api.types.is_bool_dtype(frame.iloc[:, j]):
            fmt = column_format(c, columns)
            if fmt:
                out[j] = fmt
    return out


def _ordered(names: Sequence[str]) -> list[str]:
    first = [n for n in ORDER if n in names]
    return first + sorted(n for n in names if n not in first)


def result_workbook(result: Result) -> bytes:
    """Every table of a result folder, and its summary, as one ``.xlsx`` workbook (bytes)."""
    wb = new_workbook()
    taken = {"summary"}
    summary = flatten(result.summary) if result.summary else [("kind", result.kind), ("name", result.name)]
    add_sheet(wb, "summary", ["key", "value"], [list(r) for r in summary], autofilter=False, strict=False)
    for name in _ordered(list(result.tables)):
        frame = result.tables[name]
        add_sheet(wb, sheet_title(name, taken), [str(c) for c in frame.columns], sheet_rows(frame),
                  _formats(frame), strict=False)
    return to_bytes(wb)


__all__ = ["column_format", "flatten", "result_workbook"]
