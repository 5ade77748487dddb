"""``envelope export``: the exact MIP of a scenario as an MPS or LP file for any external solver
(docs/export.md).

The model written is ``formulate(scenario).model`` — the arrays every backend solves — unchanged:
maximisation, its objective offset, every bound and integrality, with its labels turned into names
that MPS and LP readers accept (``safe_names``) and a name map next to the file (``FILE.names.csv``:
kind, position, safe name, the model's own label, rule family, meaning). The file itself is written
by a backend that declares the format in ``Capabilities.writes`` (asked here, never by name).

Writing is atomic: the model and the name map are written to hidden temporary files in the target's
folder and moved into place with ``os.replace`` (the name map first, then the model), so each path
holds its previous or its new complete content, never a part. A temporary file left by a killed run
is removed by the next export to the same file. An input of the scenario is never overwritten, and an
existing file only if an earlier export wrote it (its first line says so).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from solver import __version__
from solver.backends import backends_with, get_backend
from solver.backends.base import MODEL_FORMATS
from solver.data.scenario import Scenario
from solver.errors import BackendError, InputError
from solver.mip.arrays import MILP
from solver.present.outputs import OutputFolderError, process_alive, spreadsheet_safe

#: Longest name written (MPS and LP readers accept 255 characters).
NAME_LIMIT = 255
#: Characters kept in a name; every other character (brackets, commas, spaces, '-', '@', '<', accents ...)
#: becomes '_'. Names start with a letter (the rule family's label does; otherwise 'c_' or 'r_' is put first).
_UNSAFE = re.compile(r"[^A-Za-z0-9_.]")
SAFE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,254}")
#: Words an LP reader may take for a keyword (compared in lower case); a name equal to one gets a '_' appended.
RESERVED = frozenset({
    "obj", "max", "maximize", "maximise", "maximum", "min", "minimize", "minimise", "minimum", "st", "s.t.", "st.",
    "subject", "to", "such", "that", "bound", "bounds", "bin", "binary", "binaries", "gen", "general", "generals",
    "int", "integer", "integers", "semi", "semis", "sos", "end", "free", "inf", "infinity", "e",
})
#: The objective row's name in each format (HiGHS's writer).
OBJECTIVE_NAME = {"mps": "Obj", "lp": "obj"}
#: First line of the name map; an existing file with this header may be replaced.
NAME_MAP_COLUMNS = ("kind", "index", "name", "original", "family", "meaning")
MARK = "Envelope export"
_COMMENT = {"mps": "*", "lp": "\\"}
_TMP = re.compile(r"\.envelope-export-([0-9a-f]{12})-(\d+)-[0-9a-f]{8}(\.names\.csv|\.highs\.\w+|\.\w+)")

#: What a column or row is, by the label's prefix (the text before '['); fields are the key's parts.
COLUMN_MEANING = {
    "x": "1 if project {0} is funded, starting in {1}",
    "withdraw": "1 if committed project {0} is withdrawn",
    "platform": "1 if system {0} uses platform {1}",
    "flex": "capital moved to revenue in {0} (£m)",
    "carry": "{0} carried from {1} into the next year (£m)",
    "short": "system {0}'s shortfall below its fair-share floor (£m)",
    "excess": "system {0}'s excess above its fair-share cap (£m)",
    "below": "system {0}'s allocation below its fair share (£m)",
    "above": "system {0}'s allocation above its fair share (£m)",
}
ROW_MEANING = {
    "capital": "national capital spent in {0} within the envelope (£m)",
    "revenue": "national revenue spent in {0} within the envelope (£m)",
    "carry_limit": "{0} carried from {1} at most the allowed share of what is unspent (£m)",
    "local_capital": "system {0}'s local match capital in {1} within local_capital (£m)",
    "headroom": "system {0}'s local revenue (match, run costs, fees) in {1} within revenue_headroom (£m)",
    "once": "project {0} funded at most once",
    "mandatory": "mandatory project {0} funded",
    "commitment": "committed project {0} kept at its committed start (or withdrawn)",
    "group": "at most one project of alternatives group {0}",
    "dependency": "dependency {0}: a start by {1} only after what it requires has started",
    "fair_floor": "system {0}'s allocation at least its fair-share floor (less the shortfall)",
    "fair_cap": "system {0}'s allocation at most its fair-share cap (plus the excess)",
    "fair_dev": "system {0}'s allocation equals its fair share plus the excess less the shortfall",
    "platform_link": "project {0} funded only with its platform in use in its system",
    "one_platform": "system {0} uses at most one platform",
}


@dataclass(frozen=True)
class ExportResult:
    """What ``export_model`` wrote."""

    path: Path
    names_path: Path
    fmt: str
    backend: str
    columns: int
    integer_columns: int
    rows: int
    offset: float
    adjusted: int         # names changed beyond the character rewriting (made unique, shortened, not a keyword)


def _base(label: str, fallback: str) -> str:
    """A label as a safe name before de-duplication: unsafe characters to '_', a letter first, at most
    ``NAME_LIMIT`` characters (a long one ends in a hash of the label), not a keyword."""
    name = _UNSAFE.sub("_", label).rstrip("_")
    if not name or not name[0].isalpha():
        name = f"{fallback}_{name}"
    if len(name) > NAME_LIMIT:
        name = f"{name[:NAME_LIMIT - 9]}_{hashlib.sha1(label.encode()).hexdigest()[:8]}"
    if name.lower() in RESERVED:
        name += "_"
    return name


def safe_names(col_labels: Sequence[str], row_labels: Sequence[str]) -> tuple[list[str], list[str]]:
    """Names MPS and LP readers accept, unique over columns and rows together (ignoring case, and never an
    objective row's name): each label with every character outside ``[A-Za-z0-9_.]`` replaced by '_'
    (``x[EPR-A1@2026]`` -> ``x_EPR_A1_2026``, ``capital[2026]`` -> ``capital_2026``), at most 255
    characters, starting with a letter; a name already taken gets ``_2``, ``_3`` ... (first come, in column
    then row order)."""
    taken = {"obj"}
    out: list[list[str]] = [[], []]
    for which, labels, fallback in ((0, col_labels, "c"), (1, row_labels, "r")):
        for label in labels:
            base = _base(str(label), fallback)
            name, k = base, 2
            while name.lower() in taken:
                suffix = f"_{k}"
                name = base[: NAME_LIMIT - len(suffix)] + suffix
                k += 1
            taken.add(name.lower())
            out[which].append(name)
    return out[0], out[1]


def _meaning(label: str, family: str, templates: dict[str, str], what: str) -> str:
    prefix, _, rest = label.partition("[")
    key = rest[:-1] if rest.endswith("]") else rest
    template = templates.get(prefix)
    if template is not None:
        n = template.count("{")
        parts = key.replace("@", ",", 1).split(",", n - 1) if prefix == "x" else key.split(",", n - 1)
        if len(parts) == n:
            return template.format(*parts)
    return f"{family} {what} {key}".strip() if key else f"{family} {what}"


def name_map(model: MILP, col_names: Sequence[str], row_names: Sequence[str], fmt: str) -> pd.DataFrame:
    """One row for the objective, then one per column and per row: kind (objective / col / row), position
    in the model, safe name, the model's label, rule family and what it is."""
    sense = f"maximise; constant offset {model.offset:.12g}"
    records = [("objective", "", OBJECTIVE_NAME[fmt], "objective", "objective", sense)]
    for j, (name, label) in enumerate(zip(col_names, model.col_names)):
        family = str(model.col_kind[j])
        records.append(("col", j, name, label, family, _meaning(label, family, COLUMN_MEANING, "variable")))
    for i, (name, label) in enumerate(zip(row_names, model.row_names)):
        family = str(model.row_family[i])
        records.append(("row", i, name, label, family, _meaning(label, family, ROW_MEANING, "row")))
    return pd.DataFrame.from_records(records, columns=list(NAME_MAP_COLUMNS))


def writer_for(fmt: str) -> str:
    """The installed backend that writes ``fmt`` (the default backend first), asked by capability."""
    writers = [name for name in backends_with("writes") if fmt in get_backend(name).capabilities.writes]
    if not writers:
        raise BackendError(f"no installed backend writes {fmt.upper()} files; install highspy (pip install highspy)")
    return writers[0]


def check_format(fmt: str) -> str:
    """``fmt`` in lower case, or ``InputError`` naming the option and the formats."""
    if fmt.lower() not in MODEL_FORMATS:
        raise InputError(None, f"option --format: unknown format '{fmt}'; choose one of: {', '.join(MODEL_FORMATS)}")
    return fmt.lower()


def _first_line(path: Path) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.readline().rstrip("\r\n")
    except OSError:
        return ""


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.realpath(a) == os.path.realpath(b) or (os.path.exists(a) and os.path.samefile(a, b))
    except OSError:
        return False


def check_output_file(path: str | Path, fmt: str, inputs: Iterable[str | Path] = ()) -> tuple[Path, Path]:
    """(model file, name map) for ``path`` if ``export_model`` may write them: neither is an input of the run
    (``inputs``) nor a folder, and each is missing or was written by an earlier export. Otherwise
    ``OutputFolderError`` (exit 2)."""
    target = Path(os.path.abspath(path))
    names = target.with_name(f"{target.name}.names.csv")
    header = ",".join(NAME_MAP_COLUMNS)
    for out, ours in ((target, lambda line: line.startswith(f"{_COMMENT[fmt]} {MARK}")),
                      (names, lambda line: line == header)):
        for given in inputs:
            if _same(out, Path(given)):
                raise OutputFolderError(out, "is an input of this run, which the export would overwrite; choose "
                                             "another file (-o)")
        try:
            if os.path.isdir(out):
                raise OutputFolderError(out, "is a folder; give a file name (-o FILE)")
            if os.path.lexists(out) and not ours(_first_line(out)):
                raise OutputFolderError(out, "exists and was not written by envelope export (its first line is "
                                             "not the export's); choose another file (-o) or remove it")
        except OSError as exc:
            if isinstance(exc, OutputFolderError):
                raise
            raise OutputFolderError(out, f"cannot use this output file ({exc.strerror or exc})") from None
    return target, names


def _tag(target: Path) -> str:
    return hashlib.sha1(target.name.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def _tidy(target: Path) -> None:
    """Remove temporary files of exports to ``target`` whose process has ended."""
    tag = _tag(target)
    with contextlib.suppress(OSError):
        for name in os.listdir(target.parent):
            m = _TMP.fullmatch(name)
            if m and m[1] == tag and not process_alive(int(m[2])):
                with contextlib.suppress(OSError):
                    os.remove(target.parent / name)


def _ascii(text: str) -> str:
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def _lexicographic(tiers: int) -> str:
    return (f"a tiered objective ({tiers} tiers solved in turn, each kept within its tolerance while the next is "
            "optimised) is a sequence of MIPs, and one MPS or LP file holds one objective; export a model with one "
            "objective")


def write_export(model: MILP, path: str | Path, fmt: str, *, title: str = "",
                 inputs: Iterable[str | Path] = ()) -> ExportResult:
    """Write ``model`` to ``path`` in ``fmt`` with safe names, and its name map to ``path.names.csv``,
    atomically (see the module notes); ``title`` says what the model is (first comment line). A model
    with lexicographic tiers (``MILP.stages``) is a sequence of MIPs, which one file cannot hold:
    ``InputError``."""
    fmt = check_format(fmt)
    stages = getattr(model, "stages", ())
    if stages:
        raise InputError(None, _lexicographic(len(stages) + 1))
    target, names_path = check_output_file(path, fmt, inputs)
    backend = writer_for(fmt)
    cols, rows = safe_names(model.col_names, model.row_names)
    named = dataclasses.replace(model, col_names=cols, row_names=rows)
    table = name_map(model, cols, rows, fmt)
    adjusted = sum(n != _UNSAFE.sub("_", str(label)).rstrip("_")
                  for n, label in zip([*cols, *rows], [*model.col_names, *model.row_names]))
    comment = "\n".join([
        f"{MARK}: {_ascii(title) or 'a model'} (Envelope {__version__})",
        f"maximise; objective offset {model.offset:.17g}"
        + (" (written as the objective row's RHS, minus the offset by the MPS convention)" if fmt == "mps" else ""),
        f"{model.n_cols} columns ({model.n_integer} integer), {model.n_rows} rows; names: "
        f"{_ascii(names_path.name)} (kind, index, name, original, family, meaning)",
    ])
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFolderError(target.parent, f"cannot create the output folder ({exc.strerror or exc})") from None
    _tidy(target)
    stem = f".envelope-export-{_tag(target)}-{os.getpid()}-{secrets.token_hex(4)}"
    tmp_model, tmp_names = target.with_name(f"{stem}.{fmt}"), target.with_name(f"{stem}.names.csv")
    try:
        get_backend(backend).write_model(named, str(tmp_model), fmt, comment)
        spreadsheet_safe(table).to_csv(tmp_names, index=False, lineterminator="\n")
        with open(tmp_names, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_names, names_path)
        os.replace(tmp_model, target)
        with contextlib.suppress(OSError):
            fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    except OSError as exc:
        raise OutputFolderError(target, f"cannot write the export ({exc.strerror or exc})") from exc
    finally:
        for tmp in (tmp_model, tmp_names):
            with contextlib.suppress(OSError):
                if os.path.lexists(tmp):
                    os.remove(tmp)
    return ExportResult(path=target, names_path=names_path, fmt=fmt, backend=backend, columns=model.n_cols,
                        integer_columns=model.n_integer, rows=model.n_rows, offset=float(model.offset),
                        adjusted=int(adjusted))


def export_model(scenario: Scenario, path: str | Path, fmt: str, inputs: Iterable[str | Path] = ()) -> ExportResult:
    """Formulate ``scenario`` and write its exact MIP to ``path`` (``fmt``: mps or lp) with the name map;
    ``inputs`` (the scenario's files) are never overwritten."""
    from solver.mip.formulation import formulate

    fmt = check_format(fmt)
    method = getattr(getattr(scenario.policy, "allocation", None), "method", "optimise")
    if method != "optimise":
        raise InputError(scenario.path, f"model {scenario.policy.name} makes its plan by a rule (allocation.method = "
                                        f"'{method}'), not by solving a MIP; to export the MIP of its rules and "
                                        "objective, set allocation = { method = \"optimise\" } in [overrides]")
    inputs = list(inputs)
    check_output_file(path, fmt, inputs)     # refuse before building the model
    form = formulate(scenario)
    if getattr(form.model, "stages", ()):
        raise InputError(scenario.path, f"model {scenario.policy.name}: {_lexicographic(len(form.model.stages) + 1)}")
    title = f"scenario {scenario.name} (instance {scenario.instance.name}, model {scenario.policy.name})"
    return write_export(form.model, path, fmt, title=title, inputs=inputs)
