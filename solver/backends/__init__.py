"""Solver backends behind one protocol; imported lazily so that a missing or conflicting
solver never breaks the others (OR-Tools 9.15 and highspy 1.15 cannot share a process, so the
OR-Tools backends run in a child process)."""

from __future__ import annotations

from importlib import import_module

from solver.backends.base import Backend, SolveOptions
from solver.errors import BackendError

_REGISTRY: dict[str, tuple[str, str]] = {
    "highs": ("solver.backends.highs", "HighsBackend"),
    "cbc": ("solver.backends.cbc", "CbcBackend"),
    "scip": ("solver.backends.ortools", "ScipBackend"),
    "cpsat": ("solver.backends.ortools", "CpSatBackend"),
}

DEFAULT_BACKEND = "highs"


def backend_names() -> list[str]:
    """Every backend Envelope knows, installed or not."""
    return list(_REGISTRY)


def get_backend(name: str) -> Backend:
    """The backend called ``name``; ``BackendError`` if unknown or not installed."""
    if name not in _REGISTRY:
        raise BackendError(f"unknown backend '{name}'; choose one of: {', '.join(_REGISTRY)}")
    module, cls = _REGISTRY[name]
    backend: Backend = getattr(import_module(module), cls)()
    if not backend.available():
        raise BackendError(f"backend '{name}' is not available here; install it with: {backend.install_hint}")
    return backend


def backends_with(capability: str) -> list[str]:
    """Installed backends that declare ``capability`` (a ``Capabilities`` field), default first."""
    out = []
    for name in [DEFAULT_BACKEND] + [n for n in _REGISTRY if n != DEFAULT_BACKEND]:
        try:
            engine = get_backend(name)
        except BackendError:
            continue
        if getattr(engine.capabilities, capability):
            out.append(name)
    return out


def available_backends() -> list[str]:
    """Names of the backends usable in this environment."""
    names = []
    for name in _REGISTRY:
        try:
            get_backend(name)
        except BackendError:
            continue
        names.append(name)
    return names


__all__ = ["Backend", "SolveOptions", "DEFAULT_BACKEND", "backend_names", "backends_with", "get_backend",
           "available_backends"]
