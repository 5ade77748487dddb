"""Writing an output folder atomically: everything goes to a temporary sibling folder that is
renamed into place, so a run killed mid-write leaves the previous complete output or none.

Only a folder Envelope wrote (it carries the ``.envelope-output`` marker) or an empty one is ever
replaced; any other existing path is refused with an ``InputError`` before anything is written."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from pathlib import Path

import pandas as pd

from solver.errors import InputError
from solver.solve.decisions import Decisions

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


MARKER = ".envelope-output"
"""File in every output folder Envelope writes; a folder carrying it may be replaced by a later run."""
MARKER_TEXT = "Written by Envelope. A later run with this folder as its output replaces the whole folder.\n"


class OutputFolderError(InputError, OSError):
    """The output folder cannot be used or written (exit 2). Also an ``OSError``, so code that
    caught the operating system's error from ``write_folder`` still catches it."""

    def __init__(self, file: str | Path | None, rule: str) -> None:
        super().__init__(file, rule)
        self.args = (file, rule)


def check_output_folder(target: str | Path) -> Path:
    """The resolved ``target`` if ``write_folder`` may write there: it does not exist, or it is an
    empty folder, or an earlier Envelope output (it carries ``MARKER``). Otherwise
    ``OutputFolderError``; cheap enough to call before a long solve."""
    target = Path(target).resolve()
    try:
        if not target.exists():
            return target
        if not target.is_dir():
            raise OutputFolderError(target, "exists and is a file, not a folder; choose another output folder (-o)")
        if (target / MARKER).is_file():
            return target
        with os.scandir(target) as entries:
            empty = next(entries, None) is None
    except OSError as exc:
        raise OutputFolderError(target, f"cannot use this output folder: {_reason(exc, target)}") from None
    if not empty:
        raise OutputFolderError(target, f"exists and is not an Envelope output folder (no {MARKER} file); "
                                        "choose another output folder (-o) or empty it")
    return target


def write_folder(target: str | Path, files: dict[str, pd.DataFrame | dict | str]) -> Path:
    """Write ``files`` (CSV frames, JSON dicts, text) into ``target`` atomically; returns the path.

    ``target`` must not exist, be empty or be an earlier Envelope output (see
    ``check_output_folder``); it is then replaced whole, never merged, and gets the ``MARKER`` file.
    The folder and files get the usual permissions for the umask. Rows are written in the order
    given and floats with a fixed format, so equal results give byte-identical files. An operating
    system error (no permission, read-only, no space) is an ``OutputFolderError`` naming the path,
    with nothing left behind.
    """
    if MARKER in files:
        raise ValueError(f"{MARKER} is written by write_folder itself")
    target = check_output_folder(target)
    tmp: Path | None = None
    old: Path | None = None
    doing = f"creating {target.parent}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        doing = f"creating a temporary folder in {target.parent}"
        tmp = _new_folder(target.parent, f".{target.name}.tmp-")
        for name, content in {**files, MARKER: MARKER_TEXT}.items():
            doing = f"writing {name}"
            path = tmp / name
            if isinstance(content, pd.DataFrame):
                spreadsheet_safe(content).to_csv(path, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
            elif isinstance(content, dict):
                path.write_text(json.dumps(content, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
            else:
                path.write_text(str(content), encoding="utf-8")
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
        check_output_folder(target)  # still ours or empty after the writing (someone may have put files there)
        doing = "moving it into place"
        if target.is_dir() and (target / MARKER).is_file():
            old = target.with_name(f".{target.name}.old-{secrets.token_hex(4)}")
            os.replace(target, old)
        elif target.is_dir() and os.name == "nt":  # POSIX renames onto an empty folder, Windows cannot
            os.rmdir(target)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        if isinstance(exc, OutputFolderError):
            raise
        raise OutputFolderError(target, f"cannot write the output folder ({doing}): {_reason(exc, target)}") from exc
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            if old is not None:  # failed between the two renames: put the previous output back
                with contextlib.suppress(OSError):
                    os.replace(old, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def _new_folder(parent: Path, prefix: str) -> Path:
    """A new uniquely named folder in ``parent``, created like ``mkdir`` (its mode follows the
    umask, unlike ``tempfile.mkdtemp``'s 0700)."""
    while True:
        path = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def _reason(exc: OSError, target: Path) -> str:
    """The operating system's reason for ``exc``; when a parent of ``target`` is a file, says so."""
    for parent in target.parents:  # the nearest existing ancestor
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is a file, not a folder"
            break
    return exc.strerror or str(exc)


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


def output_files(result: object) -> dict[str, object]:
    """The files of a result folder: for a solve ``Outcome`` plan/budget/systems/misses CSVs,
    summary.json and timing.json (as ``envelope solve`` writes them); for an analysis its
    ``files()`` (tables, summary.json, timing.json)."""
    from solver.solve.outcome import Outcome

    if isinstance(result, Outcome):
        from solver.present.report import summary, tables, timings

        files: dict[str, object] = {f"{k}.csv": v for k, v in tables(result).items()}
        files["summary.json"] = summary(result)
        files["timing.json"] = timings(result)
        return files
    files_of = getattr(result, "files", None)
    if files_of is None:
        raise TypeError(f"cannot write a {type(result).__name__}: expected an Outcome or an Analysis")
    return dict(files_of())


def write_outputs(folder: str | Path, result: object) -> Path:
    """Write any result — a solve ``Outcome`` or an analysis — to ``folder`` atomically (see
    ``write_folder``); returns the folder written."""
    return write_folder(folder, output_files(result))  # type: ignore[arg-type]
