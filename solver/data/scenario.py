"""Scenarios: an instance + a policy model + overrides + solver options, from one TOML file.

Paths resolve relative to the scenario file; unknown keys anywhere are errors; the policy is
validated after overrides are merged in, so an override can only set a key the model has.
The resolved ``Scenario`` is plain data (picklable) for batch and cluster runs.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import errno
import math
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from solver.backends import DEFAULT_BACKEND, SolveOptions, backend_names
from solver.data.instance import Instance, load_instance, pydantic_error, read_toml
from solver.data.policy import Policy
from solver.data.readers import _money
from solver.errors import InputError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnvelopeCut(_Strict):
    """Take ``amount`` £m from one year's pot ('both' splits it pro rata between the pots)."""

    year: int
    pot: Literal["capital", "revenue", "both"] = "capital"
    amount: Annotated[float, Field(ge=0, allow_inf_nan=False), AfterValidator(_money)]


class EnvelopeChange(_Strict):
    """Scale the whole envelope, then apply cuts."""

    scale: float = Field(1.0, ge=0, le=100, allow_inf_nan=False)
    cuts: list[EnvelopeCut] = Field(default_factory=list)


class SolverSettings(_Strict):
    """Solver options as written in a scenario."""

    backend: str = DEFAULT_BACKEND
    time_limit: float = Field(60.0, gt=0, le=86400, allow_inf_nan=False)
    mip_gap: float = Field(1e-3, ge=0, le=1, allow_inf_nan=False)
    threads: int = Field(0, ge=0, le=256)
    seed: int = Field(0, ge=0, le=2**31 - 1)


class ScenarioFile(_Strict):
    """The TOML document of a scenario."""

    description: str = ""
    instance: str
    model: str = "need-first"
    baseline: str = Field("", description="another scenario file this one is compared with (e.g. before a cut)")
    envelope: EnvelopeChange = EnvelopeChange()
    overrides: dict[str, Any] = Field(default_factory=dict)
    solver: SolverSettings = SolverSettings()


@dataclass
class Scenario:
    """A resolved scenario, ready to formulate."""

    name: str
    path: str
    description: str
    instance: Instance
    policy: Policy
    model_path: str
    envelope: pd.DataFrame
    solver: SolverSettings
    excluded: frozenset[str] = frozenset()   # projects that may not be funded (``variants.ForceOut``)
    baseline: str = ""
    """The scenario file this one names as its ``baseline`` (resolved path; empty when none): ``solve`` then
    states the change against it and writes ``changes.csv``; fair shares are then on its envelope."""
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The scenario's own ``[overrides]`` (already in ``policy``): applied again on top of another model when
    policies are compared (``variants.SetPolicy``)."""

    @property
    def identity(self) -> str:
        """Content identity (see ``solver.data.variants.identity``)."""
        from solver.data.variants import identity

        return identity(self)

    @property
    def backend(self) -> str:
        """Backend named by the scenario (or a CLI override)."""
        return self.solver.backend

    def solve_options(self) -> SolveOptions:
        """Options for the backend."""
        s = self.solver
        return SolveOptions(time_limit=s.time_limit, mip_gap=s.mip_gap, threads=s.threads, seed=s.seed)

    def with_solver(self, **changes: Any) -> Scenario:
        """A copy with some solver settings replaced (None values ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if "backend" in changes and changes["backend"] not in backend_names():
            raise InputError(None, f"unknown backend '{changes['backend']}'; "
                                   f"choose one of: {', '.join(backend_names())}")
        try:
            solver = SolverSettings.model_validate({**self.solver.model_dump(), **changes})
        except ValidationError as exc:
            raise pydantic_error(Path(self.path), exc) from None
        return dataclasses.replace(self, solver=solver)

    def with_policy(self, policy: Policy, model_path: str = "") -> Scenario:
        """A copy under another policy model, the scenario's own ``[overrides]`` applied on top of it (as when
        the scenario names that model) — except ``[overrides.objective]`` keys the model's objective kind does
        not have (a tier tolerance given for a lexicographic model means nothing to need-first)."""
        sc = dataclasses.replace(self, policy=policy, model_path=model_path or self.model_path)
        if not self.overrides:
            return sc
        over = copy.deepcopy(self.overrides)
        objective = over.get("objective")
        if isinstance(objective, dict) and "kind" not in objective:
            fields = type(policy.objective).model_fields
            over["objective"] = {k: v for k, v in objective.items() if k in fields}
            if not over["objective"]:
                del over["objective"]
        return sc.with_overrides(over) if over else sc

    def with_overrides(self, overrides: dict[str, Any]) -> Scenario:
        """A copy with policy parameters changed (deep-merged and validated like scenario overrides)."""
        _check_finite(overrides, Path(self.path), "overrides.")
        try:
            policy = Policy.model_validate(_merge_policy(self.policy.model_dump(), overrides))
        except ValidationError as exc:
            err = pydantic_error(Path(self.path), exc)
            err.rule = err.rule.replace("key '", "key 'overrides.", 1)
            raise err from None
        return dataclasses.replace(self, policy=policy)

    def with_envelope(self, envelope: pd.DataFrame) -> Scenario:
        """A copy with another envelope (used by cut ladders and value-of-money re-solves)."""
        return dataclasses.replace(self, envelope=envelope.copy())


def builtin_models_dir() -> Path:
    """Folder of the shipped policy models (in the wheel, or the repository's ``models/``)."""
    packaged = Path(str(resources.files("solver"))) / "_models"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "models"


def list_models() -> list[str]:
    """Names of the built-in policy models."""
    return sorted(p.stem for p in builtin_models_dir().glob("*.toml"))


def _merge_policy(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """A policy document with overrides deep-merged, except that an ``[objective]`` override naming another
    ``kind`` replaces the objective table (one kind's keys mean nothing to another)."""
    objective = over.get("objective")
    if isinstance(objective, dict) and isinstance(base.get("objective"), dict):
        kind = base["objective"].get("kind", "benefit")
        if objective.get("kind", kind) != kind:
            base = {**base, "objective": {}}
    return _deep_merge(base, over)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _check_finite(data: Any, source: Path | None, prefix: str = "") -> None:
    """``InputError`` naming the first key of a TOML document whose number is NaN or infinite."""
    if isinstance(data, dict):
        for k, v in data.items():
            _check_finite(v, source, f"{prefix}{k}.")
    elif isinstance(data, list):
        for i, v in enumerate(data):
            _check_finite(v, source, f"{prefix.removesuffix('.')}[{i}].")
    elif isinstance(data, float) and not math.isfinite(data):
        raise InputError(source, f"key '{prefix.removesuffix('.')}': must be a finite number (got {data})")


def load_policy(ref: str, base_dir: Path, overrides: dict[str, Any] | None = None,
                source: Path | None = None) -> tuple[Policy, Path]:
    """A policy model by built-in name or by path (relative to ``base_dir``), with overrides merged."""
    is_path = ref.endswith(".toml") or "/" in ref or "\\" in ref
    try:
        path = _resolve(base_dir / ref) if is_path else builtin_models_dir() / f"{ref}.toml"
        found = path.is_file()
    except (OSError, ValueError) as exc:  # a NUL byte, a name too long, a symbolic link loop
        raise _path_error(source or base_dir, "model", exc) from None
    if is_path and not found:
        raise InputError(source or path, f"key 'model': policy model file not found: {path}")
    if not found:
        raise InputError(source, f"key 'model': unknown policy model '{ref}'; built-in models: "
                                 f"{', '.join(list_models())} (or give a path to a .toml file)")
    with _not_too_deep(path):
        data = read_toml(path)
        _check_finite(data, path)
    with _not_too_deep(source or path):
        _check_finite(overrides, source or path, "overrides.")
    try:
        with _not_too_deep(path):
            Policy.model_validate(data, strict=True)  # TOML has types: no coercion of "1" or true to a number
    except ValidationError as exc:
        raise pydantic_error(path, exc) from None
    if overrides:
        try:
            with _not_too_deep(source or path):
                return Policy.model_validate(_merge_policy(data, overrides), strict=True), path
        except ValidationError as exc:
            err = pydantic_error(source or path, exc)
            err.rule = err.rule.replace("key '", "key 'overrides.", 1)
            raise err from None
    return Policy.model_validate(data), path


def _path_error(source: Path | None, key: str, exc: OSError | ValueError) -> InputError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return InputError(source, f"key '{key}': not a usable path ({reason})")


class _LinkLoop(OSError):
    """A path runs into a symbolic link loop (``Path.resolve`` raises RuntimeError for it on 3.11)."""

    def __init__(self, path: Path) -> None:
        super().__init__(errno.ELOOP, "symbolic link loop", str(path))


def _resolve(path: Path) -> Path:
    """``path`` absolute with symbolic links resolved; a link loop is an ``OSError`` like any other
    unusable path (not Python 3.11's RuntimeError), so callers report it as bad input."""
    try:
        return path.resolve()
    except RuntimeError:
        raise _LinkLoop(path) from None


@contextlib.contextmanager
def _not_too_deep(source: Path | None) -> Iterator[None]:
    """Turn a RecursionError while reading or checking a TOML document (tables or arrays nested
    hundreds deep) into an ``InputError`` naming ``source``."""
    try:
        yield
    except RecursionError:
        raise InputError(source, "invalid TOML: tables or arrays nested too deeply") from None


def apply_envelope_change(instance: Instance, change: EnvelopeChange, source: Path | None) -> pd.DataFrame:
    """The instance's envelope scaled and cut, one row per year (year, capital, revenue)."""
    env = instance.envelope[["year", "capital", "revenue"]].copy().reset_index(drop=True)
    env[["capital", "revenue"]] = env[["capital", "revenue"]] * change.scale
    for k, cut in enumerate(change.cuts):
        where = f"envelope.cuts[{k}]"
        if cut.year not in set(env["year"]):
            raise InputError(source, f"key '{where}.year': year {cut.year} is not an envelope year "
                                     f"{list(env['year'])}")
        i = env.index[env["year"] == cut.year][0]
        cap, rev = env.at[i, "capital"], env.at[i, "revenue"]
        if cut.pot == "both":
            total = cap + rev
            if cut.amount > total + 1e-9:
                raise InputError(source, f"key '{where}.amount': cut of £{cut.amount:,.3f}m exceeds the "
                                         f"{cut.year} envelope of £{total:,.3f}m")
            share = cap / total if total > 0 else 0.5
            env.at[i, "capital"] = cap - cut.amount * share
            env.at[i, "revenue"] = rev - cut.amount * (1 - share)
        else:
            have = env.at[i, cut.pot]
            if cut.amount > have + 1e-9:
                raise InputError(source, f"key '{where}.amount': cut of £{cut.amount:,.3f}m exceeds the "
                                         f"{cut.year} {cut.pot} envelope of £{have:,.3f}m")
            env.at[i, cut.pot] = have - cut.amount
    env[["capital", "revenue"]] = env[["capital", "revenue"]].clip(lower=0).round(6)
    return env


def load_scenario(path: str | Path) -> Scenario:
    """Read, validate and resolve a scenario file; raises ``InputError`` on the first problem."""
    path = Path(path)
    try:
        _resolve(path)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(path, f"cannot read file ({reason})") from None
    with _not_too_deep(path):
        data = read_toml(path)
    if "instance" not in data and "name" in data and "model" not in data:
        raise InputError(path, "is a policy model (it has a name and no instance), not a scenario; a scenario names "
                               "an instance and a model (docs/scenario-format.md)")
    try:
        with _not_too_deep(path):
            doc = ScenarioFile.model_validate(data, strict=True)  # TOML has types: no coercion
    except ValidationError as exc:
        raise pydantic_error(path, exc) from None
    if doc.solver.backend not in backend_names():
        raise InputError(path, f"key 'solver.backend': unknown backend '{doc.solver.backend}'; "
                               f"choose one of: {', '.join(backend_names())}")
    base = _resolve(path).parent
    try:
        root = _resolve(base / doc.instance)
    except (OSError, ValueError) as exc:  # a NUL byte, a name too long, a symbolic link loop
        raise _path_error(path, "instance", exc) from None
    with _not_too_deep(root / "instance.toml"):
        instance = load_instance(root)
    policy, model_path = load_policy(doc.model, base, doc.overrides, source=path)
    envelope = apply_envelope_change(instance, doc.envelope, path)
    baseline = ""
    if doc.baseline:
        try:
            found = _resolve(base / doc.baseline)
            exists = found.is_file()
        except (OSError, ValueError) as exc:
            raise _path_error(path, "baseline", exc) from None
        if not exists:
            raise InputError(path, f"key 'baseline': scenario file not found: {found}")
        if found == _resolve(path):
            raise InputError(path, "key 'baseline': a scenario cannot be its own baseline")
        baseline = str(found)
    return Scenario(
        name=path.stem,
        path=str(path),
        description=doc.description,
        instance=instance,
        policy=policy,
        model_path=str(model_path),
        envelope=envelope,
        solver=doc.solver,
        baseline=baseline,
        overrides=doc.overrides,
    )
