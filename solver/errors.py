"""Errors a user can act on, each mapped to one CLI exit code.

``InputError`` (exit 2) names the file, row, column and rule broken; ``InfeasibleError`` (exit 3)
carries what was found about the cause; ``BackendError`` (exit 4) names the backend and how to
install or fix it; ``AuditError`` (exit 5) means a returned plan broke a rule, which is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class EnvelopeError(Exception):
    """Base class for every error Envelope reports to a user."""

    exit_code = 1


@dataclass
class InputError(EnvelopeError):
    """Bad input: one message naming where it is and which rule it breaks."""

    file: str | Path | None
    rule: str
    row: int | None = None
    column: str | None = None
    line: int | None = None

    exit_code = 2

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(str(self.file))
        if self.row is not None:
            loc = f"row {self.row}"
            if self.line is not None:
                loc += f" (line {self.line})"
            where.append(loc)
        if self.column is not None:
            where.append(f"column {self.column}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.rule}" if prefix else self.rule


class InfeasibleError(EnvelopeError):
    """No plan satisfies every rule; ``causes`` lists what pre-solve checks found."""

    exit_code = 3

    def __init__(self, message: str, causes: list[str] | None = None) -> None:
        super().__init__(message)
        self.causes = list(causes or [])

    def __str__(self) -> str:
        text = self.args[0]
        if self.causes:
            text += "\n" + "\n".join(f"  {c}" for c in self.causes)
        return text


class BackendError(EnvelopeError):
    """A solver backend is missing, crashed, or returned nothing usable."""

    exit_code = 4


class AuditError(EnvelopeError):
    """A plan returned by a solver breaks a rule when re-checked from the tables."""

    exit_code = 5

    def __init__(self, violations: list[str]) -> None:
        super().__init__("plan audit failed")
        self.violations = violations

    def __str__(self) -> str:
        return "plan audit failed:\n" + "\n".join(f"  - {v}" for v in self.violations)


class NoSolutionError(EnvelopeError):
    """The solver stopped (time limit, interrupt) before finding any plan."""

    exit_code = 6
