"""Progress is never silent when stderr is not a terminal: plain lines every few seconds with
done, remaining and ETA, and one at each stage's end; a terminal gets a bar instead."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from solver.analyses.engine import clear_base_cache
from solver.cli import main
from solver.run.context import Context
from solver.run.progress import BarProgress, LineProgress, default_progress

TINY = Path(__file__).resolve().parent.parent / "instances" / "tiny" / "baseline.toml"


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_lines_every_few_seconds_and_at_the_end() -> None:
    out, clock = io.StringIO(), Clock()
    p = LineProgress(out, interval=5.0, clock=clock)
    p.start("ladder", 11)
    for _ in range(7):
        clock.t += 1.0
        p.advance()
    p.finish()
    lines = out.getvalue().splitlines()
    assert lines[0] == "ladder: 5/11 solves, 6 remaining, ETA 6 s"        # 5 s in: 1 s a solve
    assert lines[-1] == "ladder: 7/11 solves done in 7 s"
    assert len(lines) == 2


def test_a_terminal_gets_a_bar_and_anything_else_lines() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(default_progress(Tty()), BarProgress)
    assert isinstance(default_progress(io.StringIO()), LineProgress)


def test_a_context_reports_each_stage_that_takes_a_while() -> None:
    out = io.StringIO()
    with Context(progress=LineProgress(out, interval=0)) as ctx:
        assert ctx.map(abs, [-1], label="demo") == [1]
    assert re.fullmatch(r"demo: 1/1 solves done in \d+ s\n", out.getvalue())


def test_a_quick_stage_stays_quiet() -> None:
    out = io.StringIO()
    with Context(progress=LineProgress(out)) as ctx:
        assert ctx.map(abs, [-1, -2, -3], label="demo") == [1, 2, 3]
    assert out.getvalue() == ""


def test_one_long_solve_is_not_silent() -> None:
    out = io.StringIO()
    p = LineProgress(out, interval=0.05)
    p.start("base solve", 1)
    time.sleep(0.3)                       # one solve still running: the heartbeat speaks
    p.advance()
    p.finish()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("base solve: 0/1 solves, running for ")
    assert lines[-1].startswith("base solve: 1/1 solves done in ")


def test_a_redirected_analysis_prints_progress_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import solver.run.progress

    monkeypatch.setattr(solver.run.progress, "LINE_INTERVAL", 0.0)   # every stage counts as long
    clear_base_cache()
    result = CliRunner().invoke(main, ["value", str(TINY), "-o", str(tmp_path / "o"), "--gap", "0"])
    assert result.exit_code == 0, result.output
    assert re.search(r"^value of money: 12/12 solves done in \d+ s$", result.stderr, re.M)
    assert "base solve: 1/1 solves" in result.stderr
    assert "value of money" not in result.stdout.split("Value of money")[0]   # progress is on stderr only
