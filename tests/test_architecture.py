"""The house rules of the package, checked from the import statements (no module is run).

- Only ``solver/backends/`` imports a solver library (highspy, pulp, ortools).
- An analysis module imports no other analysis module but the shared engine (and sampling).
- Data loading never imports the formulation, the solve pipeline, the analyses or presentation;
  the formulation and the rule families never read files.
- Presentation reads results: it never imports a backend.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "solver"
SOLVER_LIBRARIES = ("highspy", "pulp", "ortools")
SHARED_ANALYSIS_MODULES = ("solver.analyses.engine", "solver.analyses.sampling", "solver.analyses.metrics")


def modules() -> list[Path]:
    """Every module of the package."""
    return sorted(PACKAGE.rglob("*.py"))


def imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    package = ".".join(("solver", *path.relative_to(PACKAGE).parent.parts))
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def name(path: Path) -> str:
    """Dotted module name."""
    return ".".join(("solver", *path.relative_to(PACKAGE).with_suffix("").parts))


def wing(path: Path) -> str:
    """The sub-package a module belongs to ('' for top-level modules)."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else ""


def test_only_backends_import_a_solver_library() -> None:
    bad = [(name(p), m) for p in modules() if wing(p) != "backends" for m in imports(p)
           if m.split(".")[0] in SOLVER_LIBRARIES]
    assert not bad


def test_analyses_share_only_the_engine() -> None:
    bad = []
    for p in modules():
        if wing(p) != "analyses" or p.name == "__init__.py" or name(p) in SHARED_ANALYSIS_MODULES:
            continue
        for m in imports(p):
            if m.startswith("solver.analyses") and not m.startswith(SHARED_ANALYSIS_MODULES) and m != "solver.analyses":
                bad.append((name(p), m))
    assert not bad


@pytest.mark.parametrize(("source", "forbidden"), [
    ("data", ("solver.mip", "solver.pipeline", "solver.analyses", "solver.present", "solver.run", "solver.rules")),
    ("present", ("solver.backends.highs", "solver.backends.cbc", "solver.backends.ortools")),
    ("mip", ("solver.analyses", "solver.present", "solver.run")),
])
def test_wings_depend_only_downwards(source: str, forbidden: tuple[str, ...]) -> None:
    bad = [(name(p), m) for p in modules() if wing(p) == source for m in imports(p) if m.startswith(forbidden)]
    assert not bad


@pytest.mark.parametrize("source", ["mip", "rules"])
def test_the_formulation_never_reads_files(source: str) -> None:
    bad = []
    for p in modules():
        if wing(p) != source:
            continue
        text = p.read_text()
        bad += [(name(p), call) for call in ("open(", "read_csv", "read_text", "tomllib") if call in text]
    assert not bad


def test_no_module_is_shadowed_by_a_name_of_its_package() -> None:
    """``solver.x`` is the module ``x`` wherever ``solver/x.py`` or ``solver/x/`` exists (e.g. the
    function ``solver.solve`` must not hide a package of that name)."""
    import importlib
    import pkgutil
    import types

    shadowed = []
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="solver."):
        parent_name, _, child = info.name.rpartition(".")
        importlib.import_module(info.name)
        parent = importlib.import_module(parent_name)
        if not isinstance(getattr(parent, child), types.ModuleType):
            shadowed.append(info.name)
    assert not shadowed
