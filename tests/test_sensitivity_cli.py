"""The six sensitivity commands run end to end on the tiny instance: exit 0, a ranked summary,
their tables, summary.json and timing.json written, byte-identical between runs apart from
timing.json; bad options exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from solver.cli import main

TINY = Path(__file__).resolve().parent.parent / "instances" / "tiny" / "baseline.toml"

COMMANDS = {
    "ladder": (["--step", "0.25"], "Who misses out first"),
    "value": ([], "Where the next £1m does most good"),
    "rules": ([], "What each rule costs"),
    "robust": (["--samples", "4"], "Core index"),
    "alternatives": (["--k", "2", "--samples", "2"], "funds instead"),
    "thresholds": (["--k", "1"], "closest to dropping out"),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_runs_and_writes(tmp_path: Path, command: str) -> None:
    args, phrase = COMMANDS[command]
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [command, str(TINY), "-o", str(out), "--gap", "0", *args])
    assert result.exit_code == 0, result.output
    assert phrase in result.output
    assert (out / "summary.json").is_file()
    assert json.loads((out / "summary.json").read_text())
    assert list(out.glob("*.csv"))
    assert "wall_seconds" in json.loads((out / "timing.json").read_text())
    # a second run writes byte-identical files, wall-clock timings (timing.json) apart
    again = tmp_path / "again"
    result = CliRunner().invoke(main, [command, str(TINY), "-o", str(again), "--gap", "0", *args])
    assert result.exit_code == 0, result.output
    names = sorted(f.name for f in out.iterdir())
    assert names == sorted(f.name for f in again.iterdir())
    for name in names:
        if name != "timing.json":
            assert (out / name).read_bytes() == (again / name).read_bytes(), name


@pytest.mark.parametrize(("option", "value"), [("--within", "abc"), ("--mga-gap", "150%"), ("--mga-gap", "x")])
def test_bad_fraction_exits_2(tmp_path: Path, option: str, value: str) -> None:
    result = CliRunner().invoke(main, ["alternatives", str(TINY), option, value, "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert option in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["value", "robust", "thresholds"])
def test_ctrl_c_stops_the_whole_analysis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    """A solve interrupted by Ctrl-C (HiGHS keeps its incumbent and returns) ends the analysis with
    exit 130 and writes nothing, instead of carrying on with the next re-solve."""
    import dataclasses

    from solver.backends.highs import HighsBackend
    from solver.backends.result import Termination

    real = HighsBackend.solve
    calls = {"n": 0, "interrupted_at": 0}

    def interrupted_later(self, model, options, start=None):
        result = real(self, model, options, start)
        calls["n"] += 1
        if calls["n"] >= 3 and result.has_solution and not calls["interrupted_at"]:
            calls["interrupted_at"] = calls["n"]     # HiGHS returns its incumbent on Ctrl-C
        if calls["interrupted_at"] and result.has_solution:
            return dataclasses.replace(result, termination=Termination.INTERRUPTED)
        return result

    monkeypatch.setattr(HighsBackend, "solve", interrupted_later)
    args, _ = COMMANDS[command]
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [command, str(TINY), "-o", str(out), "--gap", "0", *args])
    assert result.exit_code == 130, result.output
    assert not out.exists()
    assert calls["interrupted_at"]
    assert calls["n"] == calls["interrupted_at"]     # no solve after the interrupted one


@pytest.mark.slow
def test_an_analysis_on_dask_gives_the_local_result(tmp_path: Path) -> None:
    """--engine dask (a LocalCluster of --workers) runs the same re-solves: byte-identical tables; --scheduler
    without --engine dask is bad input."""
    outs = {}
    for engine in ("local", "dask"):
        out = tmp_path / engine
        result = CliRunner().invoke(main, ["value", str(TINY), "-o", str(out), "--workers", "2", "--engine", engine])
        assert result.exit_code == 0, result.output
        outs[engine] = out
    for table in outs["local"].glob("*.csv"):
        assert (outs["dask"] / table.name).read_bytes() == table.read_bytes(), table.name
    result = CliRunner().invoke(main, ["rules", str(TINY), "-o", str(tmp_path / "x"), "--scheduler", "tcp://h:1"])
    assert result.exit_code == 2
    assert "needs --engine dask" in result.output
