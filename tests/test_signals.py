"""Signals and child processes, at the process level: ``envelope`` is started in its own process
group with a private ``TMPDIR``, its descendants (solver children, pool workers, the multiprocessing
resource tracker) are recorded from ``/proc`` while alive, then it is sent SIGINT (to the group, as
a terminal does), SIGTERM (to the main process, as a supervisor does) or SIGKILL (to the main
process). Afterwards, within a few seconds, none of the recorded processes may be alive and the
temporary folder must be empty; Ctrl-C and SIGTERM during a CBC solve still write the plan.

Every wait is bounded, and whatever a test started is killed at the end even when it fails.
Cleanup times are printed (``pytest -s``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from solver.backends import available_backends

ROOT = Path(__file__).resolve().parent.parent
ENGLAND = ROOT / "instances" / "england" / "cut-350m.toml"
TINY = ROOT / "instances" / "tiny" / "baseline.toml"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; POSIX signals")

#: Seconds after the signal within which every recorded process must be gone.
CLEANUP_LIMIT = {signal.SIGKILL: 5.0, signal.SIGTERM: 15.0, signal.SIGINT: 15.0}


# --------------------------------------------------------------------------- /proc helpers


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of ``pid`` from /proc, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), fields[0], int(fields[19])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _descendants(root: int) -> dict[int, tuple[int, str]]:
    """Every live descendant of ``root``: pid -> (start time, command line)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and st[1] != "Z":
                children.setdefault(st[0], []).append(int(entry))
                starts[int(entry)] = st[2]
    out: dict[int, tuple[int, str]] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        out[pid] = (starts[pid], _cmdline(pid))
        todo.extend(children.get(pid, []))
    return out


def _alive(pid: int, start: int) -> bool:
    """True if the process recorded as (pid, start) still runs (zombies and reused pids do not count)."""
    st = _stat(pid)
    return st is not None and st[2] == start and st[1] != "Z"


@dataclass
class Run:
    """One ``envelope`` run in its own process group, and everything recorded about it."""

    proc: subprocess.Popen[bytes]
    tmp: Path
    out: Path
    seen: dict[int, tuple[int, str]] = field(default_factory=dict)

    def record(self) -> dict[int, tuple[int, str]]:
        """Record the live descendants (adds to ``seen``) and return them."""
        now = _descendants(self.proc.pid)
        self.seen.update(now)
        return now

    def wait_for(self, ready: Callable[[list[str]], bool], timeout: float) -> None:
        """Poll descendants until ``ready(command lines)``; fail after ``timeout`` s or if envelope ends."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready([cmd for _, cmd in self.record().values()]):
                return
            if self.proc.poll() is not None:
                pytest.fail(f"envelope ended early (exit {self.proc.returncode}): {self.output()}")
            time.sleep(0.05)
        pytest.fail(f"children did not appear within {timeout} s: {[c for _, c in self.seen.values()]}")

    def survivors(self) -> list[str]:
        return [f"{pid} {cmd[:100]}" for pid, (start, cmd) in self.seen.items() if _alive(pid, start)]

    def output(self) -> str:
        return (self.out.parent / "stderr.txt").read_text(errors="replace")[-2000:]


@pytest.fixture
def envelope(tmp_path: Path) -> Iterator[Callable[..., Run]]:
    """Start ``python -m solver.cli ARGS`` (own process group, TMPDIR private); kill all it left at the end."""
    runs: list[Run] = []

    def start(*args: str) -> Run:
        tmp = tmp_path / "tmp"
        tmp.mkdir()
        out = tmp_path / "out"
        env = {**os.environ, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}
        with open(tmp_path / "stderr.txt", "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "solver.cli", *args, "-o", str(out)], cwd=ROOT, env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                    start_new_session=True)
        run = Run(proc, tmp, out)
        runs.append(run)
        return run

    yield start
    for run in runs:
        for pid, (st, _) in run.seen.items():
            if _alive(pid, st):
                os.kill(pid, signal.SIGKILL)
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
        run.proc.wait(timeout=10)


def _send(run: Run, sig: signal.Signals) -> float:
    """Send ``sig`` (SIGINT to the process group, as a terminal does; others to the main process)."""
    run.record()
    if sig == signal.SIGINT:
        os.killpg(run.proc.pid, sig)
    else:
        os.kill(run.proc.pid, sig)
    return time.monotonic()


def _assert_cleaned_up(run: Run, sig: signal.Signals, sent: float, label: str) -> int | None:
    """Wait (bounded) for envelope and every recorded descendant to end; assert TMPDIR is empty.
    Returns envelope's exit code (None after SIGKILL)."""
    limit = CLEANUP_LIMIT[sig]
    code = run.proc.wait(timeout=limit + 60.0)       # SIGINT/SIGTERM: the plan is still written
    deadline = time.monotonic() + limit
    while run.survivors() and time.monotonic() < deadline:
        time.sleep(0.05)
    took = time.monotonic() - sent
    survivors = run.survivors()
    print(f"\n[signals] {label} {sig.name}: exit {code}, {len(run.seen)} descendants, all gone after "
          f"{took:.2f} s, survivors {len(survivors)}")
    assert not survivors, (survivors, run.output())
    assert took <= limit + (60.0 if sig != signal.SIGKILL else 0.0)
    assert sorted(os.listdir(run.tmp)) == [], run.output()
    return None if sig == signal.SIGKILL else code


def _has(word: str) -> Callable[[list[str]], bool]:
    return lambda cmds: any(word in c for c in cmds)


def _workers(n: int) -> Callable[[list[str]], bool]:
    return lambda cmds: sum("spawn_main" in c for c in cmds) >= n


def _solve_args(backend: str) -> list[str]:
    return ["solve", str(ENGLAND), "--backend", backend, "--gap", "0", "--time-limit", "60"]


def _require(backend: str) -> None:
    if backend not in available_backends():
        pytest.skip(f"{backend} not installed")


# --------------------------------------------------------------------------- quick representative


def test_sigkill_during_a_cbc_solve_leaves_no_child_and_no_file(envelope: Callable[..., Run]) -> None:
    """kill -9 of envelope mid-solve: CBC dies with it (PR_SET_PDEATHSIG) and its MPS, solution and
    log files were anonymous, so nothing stays behind."""
    _require("cbc")
    run = envelope(*_solve_args("cbc"))
    run.wait_for(_has("solverdir/cbc"), timeout=60)
    sent = _send(run, signal.SIGKILL)
    _assert_cleaned_up(run, signal.SIGKILL, sent, "solve cbc")
    assert not run.out.exists()


# --------------------------------------------------------------------------- solve: CBC


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_cbc_solve_writes_the_incumbent(envelope: Callable[..., Run], sig: signal.Signals) -> None:
    """Ctrl-C (exit 130) or SIGTERM (exit 143) while CBC searches: CBC is asked to stop, its
    incumbent is written as the plan (termination interrupted), and no child or file remains."""
    _require("cbc")
    run = envelope(*_solve_args("cbc"))
    run.wait_for(_has("solverdir/cbc"), timeout=60)
    time.sleep(3.0)                        # into the branch and bound, with an incumbent
    sent = _send(run, sig)
    code = _assert_cleaned_up(run, sig, sent, "solve cbc")
    assert code == (130 if sig == signal.SIGINT else 143), run.output()
    assert (run.out / "plan.csv").is_file(), run.output()
    summary = json.loads((run.out / "summary.json").read_text())
    assert summary["termination"] == "interrupted"
    assert summary["status"] == "feasible"
    assert "the best plan found so far was written" in run.output()


# --------------------------------------------------------------------------- solve: HiGHS (in process)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_highs_solve_writes_the_incumbent(envelope: Callable[..., Run], sig: signal.Signals) -> None:
    """Ctrl-C (exit 130) or SIGTERM (exit 143) while HiGHS searches on its solver thread: it is told to
    stop, keeps its incumbent, and the plan is written (termination interrupted)."""
    run = envelope(*_solve_args("highs"))
    time.sleep(4.0)                        # loaded, built, and into the search
    sent = _send(run, sig)
    code = _assert_cleaned_up(run, sig, sent, "solve highs")
    assert code == (130 if sig == signal.SIGINT else 143), run.output()
    assert (run.out / "plan.csv").is_file(), run.output()
    summary = json.loads((run.out / "summary.json").read_text())
    assert summary["termination"] == "interrupted"
    assert summary["status"] == "feasible"


# --------------------------------------------------------------------------- solve: OR-Tools


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["scip", "cpsat"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_ortools_worker_never_outlives_envelope(envelope: Callable[..., Run], backend: str,
                                                sig: signal.Signals) -> None:
    """The OR-Tools worker (a child interpreter) is stopped with envelope and its exchange files
    (anonymous) leave nothing; after Ctrl-C/SIGTERM envelope exits 130/143 (with the incumbent
    written if the solver had one)."""
    _require(backend)
    run = envelope(*_solve_args(backend))
    run.wait_for(_has("_ortools_worker.py"), timeout=60)
    time.sleep(1.0)
    sent = _send(run, sig)
    code = _assert_cleaned_up(run, sig, sent, f"solve {backend}")
    if sig != signal.SIGKILL:
        assert code == (130 if sig == signal.SIGINT else 143), run.output()


# --------------------------------------------------------------------------- analyses: the pool


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_pool_workers_and_resource_tracker_never_outlive_envelope(envelope: Callable[..., Run],
                                                                  sig: signal.Signals) -> None:
    """``robust --workers 2``: both pool workers and multiprocessing's resource tracker end with
    envelope (SIGKILL included: PR_SET_PDEATHSIG, then the tracker's pipe closes); an analysis
    stopped by Ctrl-C/SIGTERM writes nothing and exits 130/143."""
    run = envelope("robust", str(TINY), "--samples", "400", "--workers", "2")
    run.wait_for(_workers(2), timeout=60)
    run.wait_for(_has("resource_tracker"), timeout=10)
    time.sleep(1.0)
    sent = _send(run, sig)
    code = _assert_cleaned_up(run, sig, sent, "robust --workers 2")
    assert any("resource_tracker" in cmd for _, cmd in run.seen.values())
    if sig != signal.SIGKILL:
        assert code == (130 if sig == signal.SIGINT else 143), run.output()
        assert not run.out.exists()
