"""An instance: the validated tables (systems, organisations, projects, costs, dependencies,
envelope, and the optional ballots) plus its metadata (``instance.toml``). ``validate_tables`` builds
one from DataFrames (any importer: CSV folder, spreadsheet, generated instances) and ``load_instance``
from a folder of CSV files through it, so both take one validation path: every cell, then the
documented defaults of columns left out, then every cross-table reference. Downstream code always
sees every column of every table. Nothing here touches a solver. The result is plain, picklable data.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from solver.data.readers import (
    BallotRow,
    CostRow,
    CsvTable,
    DependencyRow,
    EnvelopeRow,
    OrganisationRow,
    ProjectRow,
    SystemRow,
    _Row,
    scan_csv,
    validate_frame,
)
from solver.errors import InputError


class InstanceMeta(BaseModel):
    """``instance.toml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    currency: str = Field("GBPm", pattern=r"^GBPm$")
    years: list[int] = Field(min_length=1, max_length=30)
    sources: dict[str, str] = Field(default_factory=dict)
    synthetic: str = ""


#: The tables of an instance, in validation order: name -> (row model, unique key columns).
TABLE_MODELS: dict[str, tuple[type[_Row], tuple[str, ...]]] = {
    "systems": (SystemRow, ("system_id",)),
    "organisations": (OrganisationRow, ("org_id",)),
    "projects": (ProjectRow, ("project_id",)),
    "costs": (CostRow, ("project_id", "year_offset")),
    "dependencies": (DependencyRow, ("project_id", "requires")),
    "envelope": (EnvelopeRow, ("year",)),
}
#: Tables an instance may have besides those (read as empty when left out), with their row models and keys.
EXTRA_TABLE_MODELS: dict[str, tuple[type[_Row], tuple[str, ...]]] = {
    "ballots": (BallotRow, ("voter_id", "project_id")),
}
ALL_TABLE_MODELS = {**TABLE_MODELS, **EXTRA_TABLE_MODELS}
#: Tables that may be left out of ``validate_tables`` (read as empty). An instance folder may leave out
#: ``organisations.csv`` (then no project may name an org_id) and ``ballots.csv``; ``dependencies.csv`` must be
#: there (a header-only file is an empty table).
OPTIONAL_TABLES = ("organisations", "dependencies", "ballots")
OPTIONAL_FILES = ("organisations", "ballots")


def _empty_ballots() -> pd.DataFrame:
    return pd.DataFrame({"voter_id": pd.Series(dtype=object), "project_id": pd.Series(dtype=object),
                         "utility": pd.Series(dtype=np.float64), "_row": pd.Series(dtype=np.int64)})


@dataclass
class Instance:
    """Validated instance tables, every column present (defaults filled); frames keep ``_row`` (and, from a
    CSV, ``_line``) so later checks can point at a row. ``files`` names where each table came from, for
    messages (default: the CSV file in ``root``). ``ballots`` (voter_id, project_id, utility) is empty unless
    the instance has participatory-budgeting ballots."""

    name: str
    root: str
    years: list[int]
    systems: pd.DataFrame
    organisations: pd.DataFrame
    projects: pd.DataFrame
    costs: pd.DataFrame
    dependencies: pd.DataFrame
    envelope: pd.DataFrame
    description: str = ""
    sources: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    ballots: pd.DataFrame = field(default_factory=_empty_ballots)

    def file(self, table: str) -> str:
        """Where one of the instance's tables came from (``projects`` or ``projects.csv``), for messages."""
        name = table.removesuffix(".csv")
        return self.files.get(name, str(Path(self.root) / f"{name}.csv"))

    def profile_length(self) -> pd.Series:
        """Years in each project's cost profile (max year_offset + 1), indexed by project_id."""
        return self.costs.groupby("project_id")["year_offset"].max() + 1


#: The largest TOML file read (scenarios, models and ``instance.toml`` are a few KiB), and the most keys it may
#: hold: bounds the memory of parsing it and of listing its problems (800k unknown keys once took 1.2 GB).
MAX_TOML_BYTES = 1024 * 1024
MAX_TOML_KEYS = 10_000


def read_toml(path: Path) -> dict:
    """Parse a TOML file safely (tomllib: data only, nothing executed), at most ``MAX_TOML_BYTES`` and
    ``MAX_TOML_KEYS`` keys."""
    try:
        found = path.is_file()
    except OSError as exc:  # e.g. a name too long
        raise InputError(path, f"cannot read file ({exc.strerror})") from None
    if not found:
        raise InputError(path, "file not found")
    size = path.stat().st_size
    if size > MAX_TOML_BYTES:
        raise InputError(path, f"file is larger than {MAX_TOML_BYTES // 1024} KiB ({size / 1024:,.0f} KiB); "
                               "a scenario, model or instance.toml is a few KiB")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, f"invalid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise InputError(path, "not UTF-8 text") from None
    except RecursionError:
        raise InputError(path, "invalid TOML: tables or arrays nested too deeply") from None
    except ValueError as exc:  # tomllib lets some through: an integer of over 4300 digits, a day that does not exist
        raise InputError(path, f"invalid TOML: {exc}") from None
    keys = _count_keys(data, MAX_TOML_KEYS + 1)
    if keys > MAX_TOML_KEYS:
        raise InputError(path, f"has more than {MAX_TOML_KEYS:,} keys; a scenario, model or instance.toml has a few "
                               "dozen")
    return data


def _count_keys(data: object, stop: int) -> int:
    """Keys in nested tables and arrays of tables (iterative; counting stops at ``stop``)."""
    count = 0
    stack = [data]
    while stack and count < stop:
        item = stack.pop()
        if isinstance(item, dict):
            count += len(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def pydantic_error(path: str | Path, exc: ValidationError) -> InputError:
    """One-line ``InputError`` for the first problem pydantic found in a TOML document."""
    err = exc.errors()[0]
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".") or "(top level)"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required key is missing"
    got = err.get("input")
    if err["type"] not in ("extra_forbidden", "missing") and not isinstance(got, dict):
        msg += f" (got {got!r})"
    return InputError(path, f"key '{loc}': {msg}")


def load_instance(folder: str | Path) -> Instance:
    """Load and validate the instance in ``folder``; raises ``InputError`` on the first problem.

    Every CSV file is checked first (file, encoding, syntax and header checks, ``scan_csv``; no cell is kept),
    then the tables are validated by ``validate_tables``, which reads each file's cells a chunk at a time, with
    the physical line of every row, so messages say "row N (line M)".
    """
    root = Path(folder)
    try:
        found = root.is_dir()
    except OSError as exc:  # e.g. a name too long
        raise InputError(root, f"instance folder not usable ({exc.strerror})") from None
    if not found:
        raise InputError(root, "instance folder not found")
    meta_path = root / "instance.toml"
    try:
        meta = InstanceMeta.model_validate(read_toml(meta_path), strict=True)  # TOML has types: no coercion
    except ValidationError as exc:
        raise pydantic_error(meta_path, exc) from None
    files = {name: root / f"{name}.csv" for name in ALL_TABLE_MODELS}
    frames = {name: scan_csv(files[name], model) for name, (model, _) in ALL_TABLE_MODELS.items()
              if name not in OPTIONAL_FILES or _exists(files[name])}
    return validate_tables(frames, root, meta, files=files, meta_file=meta_path)


def _exists(path: Path) -> bool:
    """Whether anything is at ``path`` (an unusable path counts as there: reading it reports the problem)."""
    try:
        return os.path.lexists(path)
    except (OSError, ValueError):
        return True


def validate_tables(frames: Mapping[str, pd.DataFrame | CsvTable], source: str | Path,
                    meta: Mapping[str, Any] | InstanceMeta,
                    *, files: Mapping[str, str | Path] | None = None,
                    meta_file: str | Path | None = None) -> Instance:
    """A validated ``Instance`` from DataFrames, with every cell and cross-table check of the CSV loader.

    ``frames`` maps table names (systems, organisations, projects, costs, dependencies, envelope,
    ballots; organisations, dependencies and ballots may be left out or empty) to frames with the CSV
    files' column names (a column with a default may be left out: docs/scenario-format.md); missing
    values are None, NaN or blank text (a table may also be a ``CsvTable`` from ``scan_csv``, read in
    chunks: what ``load_instance`` passes). ``source`` names where the tables came from (a file or a
    generator); ``meta`` is the content of ``instance.toml`` (name, years, ...) as a dict or an
    ``InstanceMeta``. Messages name ``files[table]`` (default ``source/table``), the data row (from
    1, or the frame's ``_row`` column), the physical line when the frame has a ``_line`` column, and
    the column; problems with ``meta`` name ``meta_file`` (default ``source``).
    Raises ``InputError`` on the first problem.
    """
    meta_file = source if meta_file is None else meta_file
    if not isinstance(meta, InstanceMeta):
        try:
            meta = InstanceMeta.model_validate(dict(meta))
        except ValidationError as exc:
            raise pydantic_error(meta_file, exc) from None
    unknown = sorted(set(frames) - set(ALL_TABLE_MODELS))
    if unknown:
        raise InputError(source, f"unknown table '{unknown[0]}'; expected tables: {', '.join(ALL_TABLE_MODELS)}")
    labels = {name: str(files[name]) if files and name in files else f"{source}/{name}"
              for name in ALL_TABLE_MODELS}
    tables: dict[str, pd.DataFrame] = {}
    absent: set[str] = set()
    for name, (model, key) in ALL_TABLE_MODELS.items():
        frame = frames.get(name)
        if frame is None or (name in OPTIONAL_TABLES and isinstance(frame, pd.DataFrame) and frame.empty
                             and len(frame.columns) == 0):
            if name not in OPTIONAL_TABLES:
                raise InputError(labels[name], "required table is missing")
            if frame is None:
                absent.add(name)
            frame = pd.DataFrame({c: pd.Series(dtype=object) for c in model.model_fields})
        if not isinstance(frame, pd.DataFrame | CsvTable):
            raise InputError(labels[name], f"must be a pandas DataFrame (got {type(frame).__name__})")
        tables[name] = validate_frame(frame, model, labels[name], key)
    _fill_defaults(tables, list(meta.years))
    inst = Instance(
        name=meta.name,
        root=str(source),
        years=list(meta.years),
        description=meta.description,
        sources=dict(meta.sources),
        files=labels,
        **tables,
    )
    check_instance(inst, meta_file, absent=absent)
    return inst


def _fill_defaults(tables: dict[str, pd.DataFrame], years: list[int]) -> None:
    """The defaults that depend on other cells or on the instance (the constant ones come from the row models):
    a system's ``population`` is its ``weighted_population``; a project's ``name`` its ``project_id``, its
    ``earliest_start`` and ``latest_start`` the first and last envelope years. Start years become integers."""
    sy = tables["systems"]
    if sy["population"].isna().any():
        sy["population"] = sy["population"].fillna(sy["weighted_population"]).astype(np.float64)
    pr = tables["projects"]
    if pr["name"].isna().any():
        pr["name"] = pr["name"].where(pr["name"].notna(), pr["project_id"])
    for column, year in (("earliest_start", years[0]), ("latest_start", years[-1])):
        if pr[column].dtype != np.int64:
            pr[column] = pr[column].fillna(year).astype(np.int64)


def _err(inst: Instance, table: str, frame: pd.DataFrame, idx: int, column: str, rule: str) -> InputError:
    row = frame.loc[idx]
    line = int(row["_line"]) if "_line" in frame.columns and not pd.isna(row["_line"]) else None
    return InputError(inst.file(table), rule, row=int(row["_row"]), line=line, column=column)


def check_instance(inst: Instance, meta_path: str | Path, absent: set[str] | frozenset[str] = frozenset()) -> None:
    """Cross-table rules: years, references, profiles, start windows, groups, dependency cycles, ballots.
    ``absent`` names the optional tables the instance left out (an organisations table left out is an error
    only if a project names an organisation)."""
    years = inst.years
    if years != list(range(years[0], years[0] + len(years))):
        raise InputError(meta_path, f"key 'years': must be consecutive years in order (got {years})")
    env = inst.envelope
    if env.empty:
        raise InputError(inst.file("envelope.csv"), "needs one row per year; the table is empty")
    for i, r in env.iterrows():
        if r["year"] not in years:
            raise _err(inst, "envelope.csv", env, i, "year", f"year {int(r['year'])} is not in instance years {years}")
    missing = sorted(set(years) - set(env["year"]))
    if missing:
        raise InputError(inst.file("envelope.csv"), f"no row for year(s) {missing} of the instance years")
    if inst.systems.empty:
        raise InputError(inst.file("systems.csv"), "needs at least one system; the table is empty")
    if inst.projects.empty:
        raise InputError(inst.file("projects.csv"), "needs at least one project; the table is empty")

    systems = set(inst.systems["system_id"])
    orgs = inst.organisations
    for i, r in orgs.iterrows():
        if r["system_id"] not in systems:
            raise _err(inst, "organisations.csv", orgs, i, "system_id", f"unknown system '{r['system_id']}'")
    org_system = dict(zip(orgs["org_id"], orgs["system_id"]))

    pr = inst.projects
    first, last = years[0], years[-1]
    plen = inst.profile_length()
    groups = set(pr["group"].dropna())
    ids = set(pr["project_id"])
    clash = sorted(groups & ids)
    if clash:
        i = pr.index[pr["group"] == clash[0]][0]
        raise _err(inst, "projects.csv", pr, i, "group", f"group '{clash[0]}' has the same id as a project")
    for i, r in pr.iterrows():
        pid = r["project_id"]
        org, sysid = r["org_id"], r["system_id"]
        if org is None and sysid is None:
            raise _err(inst, "projects.csv", pr, i, "org_id",
                       "needs an org_id, or a system_id for a system-wide project")
        if org is not None and org not in org_system:
            if "organisations" in absent:
                line = f" (line {int(r['_line'])})" if "_line" in pr.columns and not pd.isna(r["_line"]) else ""
                raise InputError(inst.file("organisations.csv"),
                                 f"required file is missing: {Path(inst.file('projects.csv')).name} row "
                                 f"{int(r['_row'])}{line} names organisation '{org}' (leave the organisations out "
                                 "only when every project names its system_id and no org_id)")
            raise _err(inst, "projects.csv", pr, i, "org_id", f"unknown organisation '{org}'")
        if sysid is not None and sysid not in systems:
            raise _err(inst, "projects.csv", pr, i, "system_id", f"unknown system '{sysid}'")
        if org is not None and sysid is not None and org_system[org] != sysid:
            raise _err(inst, "projects.csv", pr, i, "system_id",
                       f"organisation '{org}' belongs to system '{org_system[org]}', not '{sysid}'")
        e, l_ = r["earliest_start"], r["latest_start"]
        if e > l_:
            raise _err(inst, "projects.csv", pr, i, "earliest_start", f"earliest_start {e} is after latest_start {l_}")
        for col, y in (("earliest_start", e), ("latest_start", l_)):
            if not first <= y <= last:
                raise _err(inst, "projects.csv", pr, i, col, f"start {y} is outside the envelope years {first}-{last}")
        if pid not in plen.index:
            raise _err(inst, "projects.csv", pr, i, "project_id", "has no cost profile in costs.csv")
        n = int(plen[pid])
        if e + n - 1 > last:
            raise _err(inst, "projects.csv", pr, i, "earliest_start",
                       f"a {n}-year cost profile starting {e} runs past the last envelope year {last}; "
                       "no start year lets the project fit")
        c = r["committed_start"]
        if c is not None and not pd.isna(c):
            c = int(c)
            if not e <= c <= l_:
                raise _err(inst, "projects.csv", pr, i, "committed_start",
                           f"committed_start {c} is outside [earliest_start, latest_start] = [{e}, {l_}]")
            if c + n - 1 > last:
                raise _err(inst, "projects.csv", pr, i, "committed_start",
                           f"a {n}-year cost profile starting {c} runs past the last envelope year {last}")

    co = inst.costs
    for i, r in co.iterrows():
        if r["project_id"] not in ids:
            raise _err(inst, "costs.csv", co, i, "project_id", f"unknown project '{r['project_id']}'")

    dep = inst.dependencies
    members: dict[str, list[str]] = pr.dropna(subset=["group"]).groupby("group")["project_id"].apply(list).to_dict()
    edges: dict[str, set[str]] = {}
    for i, r in dep.iterrows():
        p, q = r["project_id"], r["requires"]
        if p not in ids:
            raise _err(inst, "dependencies.csv", dep, i, "project_id", f"unknown project '{p}'")
        if q not in ids and q not in members:
            raise _err(inst, "dependencies.csv", dep, i, "requires", f"unknown project or group '{q}'")
        targets = members.get(q, [q])
        if p in targets:
            raise _err(inst, "dependencies.csv", dep, i, "requires", f"project '{p}' cannot require itself")
        edges.setdefault(p, set()).update(targets)
    cycle = _find_cycle(edges)
    if cycle:
        i = dep.index[dep["project_id"] == cycle[0]][0]
        raise _err(inst, "dependencies.csv", dep, i, "requires", "dependency cycle: " + " -> ".join(cycle))

    ba = inst.ballots
    unknown = ~ba["project_id"].isin(ids)
    if unknown.any():
        i = ba.index[unknown.to_numpy()][0]
        raise _err(inst, "ballots.csv", ba, i, "project_id", f"unknown project '{ba.at[i, 'project_id']}'")


def _find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A dependency cycle as a path p -> ... -> p, or None (iterative DFS)."""
    state: dict[str, int] = {}
    for start in sorted(edges):
        if state.get(start):
            continue
        stack = [(start, iter(sorted(edges.get(start, ()))))]
        path = [start]
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, iter(sorted(edges.get(nxt, ())))))
                path.append(nxt)
    return None
