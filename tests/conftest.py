"""Shared fixtures: the tiny instance, scenario builders and the installed backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from solver.backends import available_backends
from solver.data.scenario import Scenario, load_scenario

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "instances" / "tiny"


def tiny_scenario(tmp_path: Path, overrides: str = "", model: str = "need-first", extra: str = "") -> Scenario:
    """A scenario on the tiny instance with a TOML overrides block."""
    text = f'instance = "{TINY.as_posix()}"\nmodel = "{model}"\n{extra}\n[solver]\nmip_gap = 0\n'
    if overrides:
        text += f"\n[overrides]\n{overrides}\n"
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return load_scenario(path)


@pytest.fixture(scope="session")
def backends() -> list[str]:
    """Backends installed here."""
    return available_backends()


@pytest.fixture(autouse=True)
def _fresh_base_solves() -> None:
    """Each test starts without base solves cached by an earlier one (a monkeypatched backend must
    not receive another test's plan)."""
    from solver.analyses.engine import clear_base_cache

    clear_base_cache()
