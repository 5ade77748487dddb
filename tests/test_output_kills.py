"""Output folders against real processes: a run killed (SIGKILL) at any step of writing its output
leaves the previous or the new complete folder at the path, and the next run removes what the
killed one left; two runs writing to one folder at once take turns.

The kill points come from the write's test hook: with ``ENVELOPE_TEST_WRITE_PAUSE`` set, each write
step is printed on stderr and followed by a pause, and the test kills the process at a random moment
of the pause after step k, for every k. Every subprocess has a timeout and is reaped."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from solver.cli import main
from solver.present.outputs import MARKER, check_output_folder, read_decisions

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals and flock")

TINY = Path(__file__).resolve().parent.parent / "instances" / "tiny"
NEW = {"plan.csv", "systems.csv", "misses.csv", "trusts.csv", "budget.csv", "summary.json", "timing.json", MARKER}
SENTINEL = "from-the-previous-run.txt"
OLD = NEW | {SENTINEL}
COMPARED = ["plan.csv", "budget.csv", "systems.csv", "misses.csv"]  # equal between equal runs
STEP = "envelope-write-step: "
PAUSE = 0.15
TIMEOUT = 180.0


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A private tiny instance and a reference output of it, marked as the previous run's."""
    root = tmp_path_factory.mktemp("kills")
    shutil.copytree(TINY, root / "tiny")
    ref = root / "ref"
    result = CliRunner().invoke(main, ["solve", str(root / "tiny" / "baseline.toml"), "-o", str(ref)])
    assert result.exit_code == 0, result.output
    (ref / SENTINEL).write_text("the output of an earlier run\n")
    with open(ref / MARKER, "a", encoding="utf-8") as marker:    # as if that run had written it: listed
        marker.write(f"{SENTINEL}\n")
    return {"scenario": root / "tiny" / "baseline.toml", "ref": ref}


def command(scenario: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "solver.cli", "solve", str(scenario), "-o", str(out)]


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVELOPE_TEST_")}
    return {**env, **extra}


def state(out: Path, ref: Path) -> str:
    """'old' or 'new' if ``out`` holds that complete folder (file list, table bytes, plan parses),
    'missing' if nothing is there; anything else fails the test."""
    if not os.path.lexists(out):
        return "missing"
    names = {p.name for p in out.iterdir()}
    assert names in (OLD, NEW), sorted(names)
    for name in COMPARED:
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    assert read_decisions(out) == read_decisions(ref)
    return "old" if names == OLD else "new"


def work_folders(parent: Path) -> list[str]:
    """Temporary, set-aside and lock files of writes (none once a run has finished)."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(".envelope-"))


def reset(out: Path, ref: Path) -> None:
    if os.path.lexists(out):
        shutil.rmtree(out)
    shutil.copytree(ref, out)


def run_and_kill(args: list[str], env: dict[str, str], after_step: int | str | None, rng: random.Random) -> list[str]:
    """Run ``args``; kill it (SIGKILL) at a random moment of the pause after write step
    ``after_step`` (its index or name; None: let it finish). Returns the steps seen. Bounded by ``TIMEOUT``."""
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(TIMEOUT, proc.kill)
    watchdog.start()
    steps: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith(STEP):
                steps.append(line[len(STEP):].strip())
                if after_step in (len(steps) - 1, steps[-1]):
                    time.sleep(rng.uniform(0.0, PAUSE * 0.8))
                    proc.send_signal(signal.SIGKILL)
                    break
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()
    return steps


def distinct_steps(steps: list[str]) -> list[int]:
    """The indices of the write steps worth a kill: every step, except that of a run of steps of one kind
    (``wrote <file>``, ``removing <file>``: the same code for each file) only the first and the last."""
    def kind(k: int) -> str:
        return steps[k].split(" ", 1)[0] if steps[k].startswith(("wrote ", "removing ")) else steps[k]
    return [k for k in range(len(steps))
            if not (0 < k < len(steps) - 1 and kind(k - 1) == kind(k) == kind(k + 1) != steps[k])]


def kill_trials(setup: dict[str, Path], tmp_path: Path, **env_extra: str) -> dict[str, int]:
    """One kill after each distinct write step; returns how many trials ended in each state."""
    scenario, ref = setup["scenario"], setup["ref"]
    out = tmp_path / "out"
    env = environment(ENVELOPE_TEST_WRITE_PAUSE=str(PAUSE), **env_extra)
    rng = random.Random(8)
    reset(out, ref)
    steps = run_and_kill(command(scenario, out), environment(ENVELOPE_TEST_WRITE_PAUSE="0.001", **env_extra),
                         None, rng)
    assert "in place" in steps, steps
    assert len(steps) >= 10, steps
    assert state(out, ref) == "new"
    assert work_folders(tmp_path) == []
    seen: dict[str, int] = {}
    for k in distinct_steps(steps):
        reset(out, ref)
        run_and_kill(command(scenario, out), env, k, rng)
        after_kill = state(out, ref)
        if "NO_EXCHANGE" not in "".join(env_extra):
            assert after_kill in ("old", "new"), (k, steps[k])  # never missing, never partial
        check_output_folder(out)  # what the next run does first: recover, remove what the dead one left
        recovered = state(out, ref)
        assert recovered in ("old", "new"), (k, steps[k])
        assert after_kill in (recovered, "missing")
        assert work_folders(tmp_path) == [], (k, steps[k])
        expect = "old" if steps.index("in place") > k else "new"
        if "set aside" in steps and k == steps.index("set aside"):
            expect = "old"
        assert recovered == expect, (k, steps[k])
        seen[f"{after_kill}->{recovered}"] = seen.get(f"{after_kill}->{recovered}", 0) + 1
    # a following ordinary run writes the new output and leaves nothing behind
    reset(out, ref)
    done = subprocess.run(command(scenario, out), env=environment(), capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert state(out, ref) == "new"
    assert work_folders(tmp_path) == []
    print(f"kill trials: {len(steps)} ({seen})")
    return seen


@pytest.mark.slow
def test_kill_at_every_write_step_leaves_old_or_new(setup: dict[str, Path], tmp_path: Path) -> None:
    seen = kill_trials(setup, tmp_path)
    assert seen.get("old->old", 0) >= 4, seen  # killed before the exchange (locked, created, first and last write)
    assert seen.get("new->new", 0) >= 3, seen  # killed after it (in place, first and last removal, removed)


@pytest.mark.slow
def test_kill_at_every_step_of_the_portable_replacement_is_recovered(setup: dict[str, Path], tmp_path: Path) -> None:
    seen = kill_trials(setup, tmp_path, ENVELOPE_TEST_NO_EXCHANGE="1")
    assert seen.get("missing->old", 0) >= 1, seen  # killed between the two renames: the next run restores


def test_kill_while_writing_and_while_removing_the_previous_output(setup: dict[str, Path], tmp_path: Path) -> None:
    """The fast-lane version: kill once mid-write and once while the previous output is removed."""
    scenario, ref = setup["scenario"], setup["ref"]
    out = tmp_path / "out"
    env = environment(ENVELOPE_TEST_WRITE_PAUSE=str(PAUSE))
    for k, expect in (("wrote plan.csv", "old"), ("removing misses.csv", "new")):
        reset(out, ref)
        steps = run_and_kill(command(scenario, out), env, k, random.Random(1))
        assert state(out, ref) == expect, steps
        assert work_folders(tmp_path), "the killed run left its temporary folder"
        check_output_folder(out)
        assert state(out, ref) == expect
        assert work_folders(tmp_path) == []


@pytest.mark.slow
def test_two_runs_into_one_folder_take_turns(setup: dict[str, Path], tmp_path: Path) -> None:
    scenario, ref = setup["scenario"], setup["ref"]
    out = tmp_path / "out"
    reset(out, ref)
    slow = subprocess.Popen(command(scenario, out), env=environment(ENVELOPE_TEST_WRITE_PAUSE="0.4"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    second = None
    try:
        assert slow.stderr is not None
        watchdog = threading.Timer(TIMEOUT, slow.kill)
        watchdog.start()
        first_steps = []
        for line in slow.stderr:
            first_steps.append(line.strip())
            if line.startswith(STEP + "created"):  # the first run holds the lock and is writing
                second = subprocess.Popen(command(scenario, out), env=environment(), stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True)
        watchdog.cancel()
        assert slow.wait(timeout=TIMEOUT) == 0, first_steps
        assert second is not None
        stdout, stderr = second.communicate(timeout=TIMEOUT)
        assert second.returncode == 0, stderr
    finally:
        for proc in (slow, second):
            if proc is not None:
                proc.kill()
                proc.wait(timeout=30)
        if slow.stderr is not None:
            slow.stderr.close()
    waits = [line for line in stderr.splitlines() if "waiting" in line]
    assert waits == [f"waiting for another Envelope run writing to {out.resolve()}"], stderr
    assert "Wrote plan.csv" in stdout
    assert state(out, ref) == "new"
    assert work_folders(tmp_path) == []  # no temporary folders and no lock file left
