"""A plan as decisions in the user's terms (which project starts when, what was withdrawn, how
money moved between pots and years), decoded from a solver point. Plain data."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Decisions:
    """The decisions that define a plan; everything else is recomputed from the tables."""

    starts: dict[str, int]
    withdrawn: list[str] = field(default_factory=list)
    flex: dict[int, float] = field(default_factory=dict)
    carry: dict[tuple[str, int], float] = field(default_factory=dict)

    def funded(self) -> list[str]:
        """Funded project ids, sorted."""
        return sorted(self.starts)
