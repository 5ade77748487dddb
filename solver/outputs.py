"""Writing an output folder atomically: everything goes to a temporary sibling folder that is
renamed into place, so a run killed mid-write leaves the previous complete output or none."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from .plan import Decisions

FLOAT_FORMAT = "%.6f"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula get a leading apostrophe; floats are
    rounded to the written precision with negative zeros removed."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(6) + 0.0
        elif out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v
            )
    return out


def write_folder(target: str | Path, files: dict[str, pd.DataFrame | dict | str]) -> Path:
    """Write ``files`` (CSV frames, JSON dicts, text) into ``target`` atomically; returns the path.

    Rows are written in the order given and floats with a fixed format, so equal results give
    byte-identical files.
    """
    target = Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        for name, content in files.items():
            path = tmp / name
            if isinstance(content, pd.DataFrame):
                spreadsheet_safe(content).to_csv(path, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
            elif isinstance(content, dict):
                path.write_text(json.dumps(content, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
            else:
                path.write_text(str(content), encoding="utf-8")
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def read_decisions(folder: str | Path) -> Decisions:
    """The decisions of a written plan (``plan.csv`` + ``budget.csv`` + ``misses.csv``), so a plan on
    disk can be audited again without the solver."""
    folder = Path(folder)
    plan = pd.read_csv(folder / "plan.csv", dtype={"project_id": str})
    starts = {str(p): int(s) for p, s in plan.groupby("project_id")["start"].first().items()}
    budget = pd.read_csv(folder / "budget.csv")
    flex = {int(r.year): float(r.capital_to_revenue) for r in budget[budget["pot"] == "capital"].itertuples()
            if r.capital_to_revenue}
    carry = {(str(r.pot), int(r.year)): float(r.carried_out) for r in budget.itertuples() if r.carried_out}
    misses = pd.read_csv(folder / "misses.csv", dtype={"id": str})
    withdrawn = sorted(misses.loc[(misses["type"] == "project") & misses["withdrawn"].astype(bool), "id"])
    return Decisions(starts=dict(sorted(starts.items())), withdrawn=withdrawn, flex=flex, carry=carry)
