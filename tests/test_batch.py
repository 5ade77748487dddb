"""envelope batch: sweeps expand to the cross product with stable ids; every result is committed once to a
Parquet store that is readable while a batch runs; a bad scenario is a failed row and the others complete;
re-running resumes; serial, local-pool and Dask runs agree; SIGKILL of the batch, or of a worker, loses
nothing and duplicates nothing.

The fast tests use the tiny instance (hand-checkable: its need-first plan funds EPR-A1-EPIC, OPT-A2, ...
as ``envelope solve`` does). The slow ones solve 50 generated scenarios on every engine (Dask: a real
LocalCluster of 2 single-threaded worker processes on loopback) and kill processes; every wait is bounded
and whatever a test started is stopped at its end.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from solver.analyses.cut_ladder import ladder
from solver.batch import engine_context, expand, open_results, read_results, run_batch
from solver.batch.runner import BatchLines
from solver.batch.store import PLANS, PLANS_SCHEMA, RUNS, RUNS_SCHEMA, merge, open_store, table_of
from solver.cli import main
from solver.data.scenario import load_scenario
from solver.errors import BackendError, InputError
from solver.pipeline.core import solve_scenario

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "instances" / "tiny"
LINUX = sys.platform.startswith("linux")


def scenario_file(folder: Path, name: str = "tiny.toml", extra: str = "") -> Path:
    """A scenario on the tiny instance (exact optimum: gap 0)."""
    path = folder / name
    path.write_text(f'instance = "{TINY.as_posix()}"\nmodel = "need-first"\n{extra}\n[solver]\nmip_gap = 0\n')
    return path


def rows(folder: Path) -> dict[str, dict[str, Any]]:
    """The store's runs, by id (every committed result, merged or not)."""
    runs, _ = read_results(folder)
    out: dict[str, dict[str, Any]] = {}
    for row in runs.to_pylist():
        assert row["id"] not in out, f"{row['id']} recorded twice"
        out[row["id"]] = row
    return out


def plans(folder: Path) -> dict[str, set[tuple[str, int]]]:
    """Funded (project, start) pairs of every plan, by id."""
    _, table = read_results(folder)
    out: dict[str, set[tuple[str, int]]] = {}
    for r in table.to_pylist():
        assert (r["project_id"], r["start"]) not in out.setdefault(r["id"], set())
        out[r["id"]].add((r["project_id"], r["start"]))
    return out


FIGURES = ("status", "termination", "objective", "bound", "gap", "identity", "need_first_value", "gini",
           "national_funding", "message")


def same_results(a: Path, b: Path, *, part: bool = False) -> None:
    """Two stores hold the same scenarios (``part``: ``b`` holds some of ``a``'s) with the same figures and plans
    (times and workers aside)."""
    ra, rb = rows(a), rows(b)
    assert rb.keys() <= ra.keys() if part else ra.keys() == rb.keys()
    for key in rb:
        assert {f: ra[key].get(f) for f in FIGURES} == {f: rb[key].get(f) for f in FIGURES}, ra[key]["label"]
    pa, pb = plans(a), plans(b)
    assert {k: pa.get(k) for k in rb} == {k: pb.get(k) for k in rb}


# --------------------------------------------------------------------------- sweeps


def test_a_sweep_is_the_cross_product_with_stable_ids(tmp_path: Path) -> None:
    base = scenario_file(tmp_path)
    sweep = tmp_path / "sweep.toml"
    sweep.write_text('scenarios = ["tiny.toml"]\n[solver]\ntime_limit = 30\n'
                     '[sweep]\nmodels = ["need-first", "fair-share"]\nscale = { from = 0.5, to = 1.0, step = 0.25 }\n'
                     'cut = [0, { amount = 1, year = 2026, pot = "capital" }]\n'
                     '[sweep.policy]\nfee.rate = [0, 0.035]\n')
    e = expand([], sweep)
    assert len(e.points) == 2 * 2 * 3 * 2            # models × fee.rate × scale × cut
    assert len({p.id for p in e.points}) == len(e.points)
    first = e.points[0]
    assert first.label == "model=need-first,fee.rate=0,scale=0.5,cut=0"
    assert dict(first.params) == {"base": "tiny", "source": str(base), "model": "need-first", "fee.rate": 0.0,
                                  "scale": 0.5, "cut": 0.0,
                                  "cut.year": None, "cut.pot": None}
    assert e.solver == {"time_limit": 30, "threads": 1}   # one single-threaded solve per worker
    assert [p.id for p in expand([], sweep).points] == [p.id for p in e.points]        # same command, same ids
    assert [p.id for p in expand([], sweep, {"mip_gap": 0.01}).points] != [p.id for p in e.points]
    base.write_text(base.read_text().replace("mip_gap = 0", "mip_gap = 0.0001"))      # the content changed
    assert not {p.id for p in expand([], sweep).points} & {p.id for p in e.points}


def test_generated_instances_and_globs(tmp_path: Path) -> None:
    scenario_file(tmp_path, "a.toml")
    scenario_file(tmp_path, "b.toml", extra="[envelope]\nscale = 0.9")
    sweep = tmp_path / "gen.toml"
    sweep.write_text("[[generate]]\nsystems = 2\norgs_per_system = 1\nprojects_per_org = 2\nseed = [1, 2, 3]\n")
    e = expand([str(tmp_path / "*.toml")], sweep)
    # the glob also matches gen.toml itself: a file that is not a scenario is a failed row, not an abort
    assert sorted(b.name for b in e.bases.values()) == ["a", "b", "generated-2x1x2-y3-t0.3-s1",
                                                        "generated-2x1x2-y3-t0.3-s2", "generated-2x1x2-y3-t0.3-s3"]
    assert [r["base"] for r in e.failed] == ["gen"]
    assert "key 'instance': required key is missing" in str(e.failed[0]["message"])


@pytest.mark.parametrize(("text", "message"), [
    ("[sweep]\nscale = [2000]\n", "key 'sweep.scale': an envelope scale must be a number in [0, 100]"),
    ("[sweep]\nscales = [1]\n", "key 'sweep.scales': unknown key"),
    ("[sweep.policy]\nfee.rate = [2.0]\n", "key 'sweep.policy.fee.rate'"),
    ("[sweep.policy]\nfee.rat = [0.0]\n", "key 'sweep.policy.fee.rat'"),
    ("[sweep]\nscale = { from = 1, to = 0 }\n", "a range needs step > 0 and to >= from"),
    ("[[generate]]\nsystems = 0\norgs_per_system = 1\nprojects_per_org = 1\n", "option --systems"),
])
def test_a_bad_sweep_exits_2_naming_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    scenario_file(tmp_path)
    sweep = tmp_path / "sweep.toml"
    sweep.write_text('scenarios = ["tiny.toml"]\n' + text)
    res = CliRunner().invoke(main, ["batch", "--sweep", str(sweep), "-o", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "sweep.toml" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_nothing_to_run_and_missing_files_exit_2(tmp_path: Path) -> None:
    for args in (["batch", str(tmp_path / "nope.toml")], ["batch", str(tmp_path / "*.toml")], ["batch"]):
        res = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "out")])
        assert res.exit_code == 2, res.output
    res = CliRunner().invoke(main, ["batch", str(scenario_file(tmp_path)), "-o", str(tmp_path / "out"),
                                    "--scheduler", "tcp://127.0.0.1:1"])
    assert res.exit_code == 2
    assert "--scheduler: needs --engine dask" in res.output


# --------------------------------------------------------------------------- the store


def test_serial_batch_matches_solve_and_resumes(tmp_path: Path) -> None:
    sc_path = scenario_file(tmp_path)
    sweep = tmp_path / "sweep.toml"
    sweep.write_text("[sweep]\nscale = [0.5, 1.0]\n")
    out = tmp_path / "results"
    res = CliRunner().invoke(main, ["batch", str(sc_path), "--sweep", str(sweep), "-o", str(out), "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "2 scenarios: 0 already" in res.output
    assert "2 solved now" in res.output
    assert "0 of them failed" in res.output
    got = rows(out)
    full = next(r for r in got.values() if r["scale"] == 1.0)
    expected = solve_scenario(load_scenario(sc_path).with_solver(threads=1))
    assert full["status"] == "optimal"
    assert full["objective"] == pytest.approx(expected.objective, abs=1e-9)
    assert full["need_first_value"] == pytest.approx(expected.objective, abs=1e-9)   # need-first is its own yardstick
    assert plans(out)[full["id"]] == set(expected.decisions.starts.items())
    assert {"EPR-A1-EPIC", "OPT-A2"} <= {p for p, _ in plans(out)[full["id"]]}
    half = next(r for r in got.values() if r["scale"] == 0.5)
    assert half["objective"] < full["objective"]
    assert half["label"] == "scale=0.5"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runs"][0]["state"] == "complete"
    assert manifest["runs"][0]["command"][:2] == ["envelope", "batch"]
    assert manifest["runs"][0]["versions"]["envelope-solver"]
    assert not list((out / "parts").iterdir())       # merged into runs.parquet at the end
    before = (out / RUNS).read_bytes()

    again = CliRunner().invoke(main, ["batch", str(sc_path), "--sweep", str(sweep), "-o", str(out), "--workers", "1"])
    assert again.exit_code == 0
    assert "2 already in" in again.output
    assert "0 solved now" in again.output
    assert (out / RUNS).read_bytes() == before
    assert len(json.loads((out / "manifest.json").read_text())["runs"]) == 2
    assert open_results(out).sql("select count(*) from runs where status = 'optimal'").fetchall() == [(2,)]


def test_a_bad_scenario_is_recorded_failed_and_the_others_complete(tmp_path: Path) -> None:
    good = scenario_file(tmp_path, "good.toml")
    bad = scenario_file(tmp_path, "bad.toml", extra="colour = 'red'")
    infeasible = scenario_file(tmp_path, "tight.toml", extra="[[envelope.cuts]]\nyear = 2025\npot = 'capital'\n"
                                                             "amount = 6.5")
    sweep = tmp_path / "sweep.toml"
    sweep.write_text("[sweep]\ncut = [0, 1000]\n")    # £1,000m is more than the tiny envelope: a failed variant
    out = tmp_path / "results"
    report = run_batch(expand([good, bad, infeasible], sweep), out, engine="serial", progress=False)
    assert report.done == 5
    assert report.failed == 4     # bad.toml, good with the cut, tight (infeasible) and tight with the cut
    got = {(r["base"], r.get("cut")): r for r in rows(out).values()}
    assert got[("good", 0.0)]["status"] == "optimal"
    assert got[("bad", None)]["status"] == "error"
    assert "bad.toml: key 'colour': unknown key" in got[("bad", None)]["message"]
    assert got[("good", 1000.0)]["status"] == "error"
    assert "a cut of £1,000.000m exceeds" in got[("good", 1000.0)]["message"]
    assert got[("tight", 0.0)]["status"] == "infeasible"
    assert "mandatory and committed projects need" in got[("tight", 0.0)]["message"]
    assert not any(r["has_plan"] for r in got.values() if r["status"] != "optimal")
    assert report.failures
    assert any("bad" in label for label, _ in report.failures)
    # failed scenarios are results: a re-run skips them, --retry-failed runs them again (and they fail again)
    assert run_batch(expand([good, bad, infeasible], sweep), out, engine="serial", progress=False).done == 0
    retried = run_batch(expand([good, bad, infeasible], sweep), out, engine="serial", progress=False,
                        retry_failed=True)
    assert retried.done == 4
    assert retried.failed == 4
    after = rows(out)
    assert len(after) == 5                           # each scenario once: the newer commit replaced the older
    assert {k for k, r in after.items() if r["seq"] > max(r["seq"] for r in got.values())} == \
        {k for k, r in after.items() if r["status"] != "optimal"}


def test_results_are_readable_while_a_batch_runs_and_merging_never_duplicates(tmp_path: Path) -> None:
    out = tmp_path / "store"
    with open_store(out) as store:
        assert read_results(out)[0].num_rows == 0               # a new store is a valid, empty one
        store.commit([{"id": "a", "status": "optimal", "objective": 1.0}], [{"id": "a", "project_id": "P"}])
        store.commit([{"id": "b", "status": "error", "message": "boom"}], [])
        assert sorted(rows(out)) == ["a", "b"]                   # committed: visible before any merge
        assert pq.read_table(out / RUNS).num_rows == 0
        store.commit([{"id": "b", "status": "optimal", "objective": 2.0}], [{"id": "b", "project_id": "Q"}])
        assert rows(out)["b"]["objective"] == 2.0               # a newer commit of an id replaces the older
        parts = sorted((out / "parts").iterdir())
        store.consolidate()
    assert {k: r["objective"] for k, r in rows(out).items()} == {"a": 1.0, "b": 2.0}
    assert plans(out) == {"a": {("P", None)}, "b": {("Q", None)}}
    # a merge killed after plans.parquet was replaced but before the parts were removed: merged again, once
    again = {"id": "a", "status": "optimal", "objective": 1.0}
    runs = [pq.read_table(out / RUNS)] + [table_of([again], RUNS_SCHEMA, 1)]
    plan = [pq.read_table(out / PLANS)] + [table_of([{"id": "a", "project_id": "P"}], PLANS_SCHEMA, 1)]
    r, p = merge(runs, plan)
    assert r.column("id").to_pylist() == ["a", "b"]
    assert p.num_rows == 2
    assert len(parts) == 3


def test_a_second_batch_into_the_same_folder_and_a_foreign_folder_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "store"
    with open_store(out):
        with pytest.raises(InputError, match="another envelope batch .* is writing to this results folder"):
            open_store(out)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.docx").write_text("keep me")
    with pytest.raises(InputError, match="not an Envelope output folder"):
        open_store(mine)
    assert (mine / "thesis.docx").read_text() == "keep me"


def test_a_results_folder_lists_its_entries_so_added_files_are_never_deleted(tmp_path: Path) -> None:
    """A batch may reuse a solve's folder and be resumed there; a file someone adds to a results folder makes the
    next run into it (a batch or a solve) refuse the folder, and the file is kept."""
    out = tmp_path / "store"
    assert CliRunner().invoke(main, ["solve", str(TINY / "baseline.toml"), "-o", str(out)]).exit_code == 0
    with open_store(out):
        pass
    with open_store(out):                         # resumed: the marker lists the store's entries
        pass
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="notes.txt"):
        open_store(out)
    result = CliRunner().invoke(main, ["solve", str(TINY / "baseline.toml"), "-o", str(out)])
    assert result.exit_code == 2
    assert (out / "notes.txt").read_text() == "mine"


def test_ctrl_c_keeps_what_finished_and_a_rerun_completes(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep.toml"
    sweep.write_text("[sweep]\nscale = [0.6, 0.7, 0.8, 0.9]\n")
    expansion = expand([scenario_file(tmp_path)], sweep)

    class StopAfterTwo:
        failed = 0

        def start(self, label: str, total: int) -> None: ...
        def fail(self, n: int = 1) -> None: ...
        def finish(self) -> None: ...

        def advance(self, n: int = 1) -> None:
            self.failed += n
            if self.failed == 2:
                raise KeyboardInterrupt

    out = tmp_path / "results"
    with pytest.raises(KeyboardInterrupt):
        run_batch(expansion, out, engine="serial", progress=StopAfterTwo(), chunk=1)
    assert len(rows(out)) == 2
    assert json.loads((out / "manifest.json").read_text())["runs"][0]["state"] == "interrupted"
    report = run_batch(expansion, out, engine="serial", progress=False)
    assert (report.skipped, report.done) == (2, 2)
    assert sorted(r["scale"] for r in rows(out).values()) == [0.6, 0.7, 0.8, 0.9]


def test_progress_lines_count_done_failed_and_remaining() -> None:
    class Clock:
        t = 0.0

        def __call__(self) -> float:
            return self.t

    out, clock = io.StringIO(), Clock()
    p = BatchLines(out, interval=5.0, clock=clock, heartbeat=False)
    p.start("batch", 10)
    for i in range(6):
        clock.t += 1.0
        p.advance()
        if i == 2:
            p.fail()
    p.finish()
    assert out.getvalue().splitlines() == ["batch: 5/10 done (1 failed), 5 remaining, ETA 5 s",
                                           "batch: 6/10 done (1 failed) in 6 s"]


def test_dask_engine_without_dask_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(BackendError, match=r"pip install 'envelope-solver\[dask\]'"):
        run_batch(expand([scenario_file(tmp_path)]), tmp_path / "out", engine="dask", progress=False)


# --------------------------------------------------------------------------- engines (slow)


GENERATED = ("[[generate]]\nsystems = 3\norgs_per_system = 2\nprojects_per_org = 3\nseed = { from = 0, to = %d }\n"
             '[sweep]\nmodels = ["need-first", "fair-share"]\n')


@pytest.fixture(scope="module")
def fifty(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """50 small generated scenarios (25 instances × 2 policies), solved serially: the clean reference."""
    folder = tmp_path_factory.mktemp("fifty")
    sweep = folder / "sweep.toml"
    sweep.write_text(GENERATED % 24)
    (folder / "some.toml").write_text(GENERATED % 11)     # 24 of the 50: for the tests that kill workers
    report = run_batch(expand([], sweep), folder / "serial", engine="serial", progress=False)
    assert (report.done, report.failed) == (50, 0)
    return {"sweep": sweep, "some": folder / "some.toml", "serial": folder / "serial", "folder": folder}


@pytest.mark.slow
def test_local_pool_and_dask_give_the_serial_results(fifty: dict[str, Path]) -> None:
    local = fifty["folder"] / "local"
    report = run_batch(expand([], fifty["sweep"]), local, engine="local", workers=2, progress=False)
    assert (report.done, report.engine, report.workers) == (50, "local", 2)
    same_results(fifty["serial"], local)
    assert len({r["worker"] for r in rows(local).values()}) == 2          # both workers solved

    dask = fifty["folder"] / "dask"
    report = run_batch(expand([], fifty["sweep"]), dask, engine="dask", workers=2, progress=False)
    assert (report.done, report.engine, report.workers) == (50, "dask", 2)
    same_results(fifty["serial"], dask)

    # the sensitivity analyses run on the same engines
    tiny = load_scenario(TINY / "baseline.toml")
    with engine_context("dask", 2, progress=False) as ctx:
        on_dask = ladder(tiny, [1.0, 0.7], context=ctx).tables["levels"]
    assert on_dask.equals(ladder(tiny, [1.0, 0.7]).tables["levels"])


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                text = Path(f"/proc/{entry}/stat").read_text()
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2:].split()
            if int(fields[1]) == pid and fields[0] != "Z" and b"spawn_main" in cmd:
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2:].split()[0] != "Z"


class KillOneWorker:
    """A progress sink that SIGKILLs one worker process of this process when the first results are in."""

    def __init__(self) -> None:
        self.failed, self.killed = 0, []

    def start(self, label: str, total: int) -> None: ...
    def fail(self, n: int = 1) -> None: ...
    def finish(self) -> None: ...

    def advance(self, n: int = 1) -> None:
        if not self.killed:
            workers = _children(os.getpid())
            if workers:
                os.kill(workers[0], signal.SIGKILL)
                self.killed.append(workers[0])


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="reads /proc")
@pytest.mark.parametrize("engine", ["dask", "local"])
def test_killing_one_worker_loses_nothing(fifty: dict[str, Path], engine: str) -> None:
    out = fifty["folder"] / f"kill-{engine}"
    sink = KillOneWorker()
    report = run_batch(expand([], fifty["some"]), out, engine=engine, workers=2, progress=sink)
    assert sink.killed, "no worker was killed"
    assert (report.done, report.failed) == (24, 0)
    same_results(fifty["serial"], out, part=True)
    assert len(rows(out)) == 24


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="POSIX signals, reads /proc")
def test_sigkill_mid_batch_then_rerun_gives_each_scenario_once(fifty: dict[str, Path], tmp_path: Path,
                                                               started: list[subprocess.Popen[bytes]]) -> None:
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "solver.cli", "batch", "--sweep", str(fifty["some"]), "-o", str(out),
           "--workers", "2"]
    log = open(tmp_path / "stderr.txt", "wb")   # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    started.append(proc)
    deadline = time.monotonic() + 60
    workers: list[int] = []
    while time.monotonic() < deadline:       # kill it once some chunks are committed, well before the end
        workers = _children(proc.pid) or workers
        if (out / "parts").is_dir() and len(list((out / "parts").glob("0*"))) >= 2:
            break
        assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
        time.sleep(0.02)
    else:
        pytest.fail("no results were committed within 60 s")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    log.close()
    partial = rows(out)
    assert 0 < len(partial) < 24
    assert workers, "no pool worker was seen"
    gone = time.monotonic() + 5
    while any(_alive(w) for w in workers) and time.monotonic() < gone:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), "pool workers outlived the killed batch"

    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr
    assert f"{len(partial)} already in" in res.stdout
    assert f"{24 - len(partial)} solved now" in res.stdout
    same_results(fifty["serial"], out, part=True)
    runs = pq.read_table(out / RUNS).column("id").to_pylist()
    assert len(runs) == len(set(runs)) == 24
    states = [r["state"] for r in json.loads((out / "manifest.json").read_text())["runs"]]
    assert states[0].startswith("stopped")
    assert states[1] == "complete"


def test_the_shipped_sweeps_expand() -> None:
    england = expand([], ROOT / "instances" / "sweeps" / "england-policies.toml")
    assert len(england.points) == 9 * 6
    assert not england.failed
    generated = expand([], ROOT / "instances" / "sweeps" / "generated.toml")
    assert len(generated.points) == 50

