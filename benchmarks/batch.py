"""Batch throughput (envelope batch), written into benchmarks/RESULTS.md between its own markers:

- 200 small generated scenarios (3 systems × 2 organisations × 3 projects, seeds 0-199, need-first) and
  20 England variants (baseline, need-first, envelope 52.5-100% in steps of 2.5%), each on the serial engine,
  a local pool of 2 workers and a Dask LocalCluster of 2 single-threaded workers (loopback): wall time of
  the whole ``run_batch`` call (engine start-up, store, consolidation included) and scenarios per second;
  the results of every engine are checked equal to the serial ones;
- the per-task overhead of each engine: no-op tasks shaped like a real chunk (a point in, a results row
  out) pushed through the engine's execution context;
- the small batch on the local pool with one point per task (no chunking), to show what chunking saves;
- what else was running on the machine (load average, other processes using CPU), since 2 shared cores
  make every figure depend on it.

Usage: python benchmarks/batch.py [--small 200] [--england 20] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.results import write_section  # noqa: E402
from solver.batch import expand, read_results, run_batch  # noqa: E402
from solver.batch.runner import make_engine  # noqa: E402
from solver.batch.work import BaseRef, ChunkResult  # noqa: E402

BEGIN, END = "<!-- batch:begin -->", "<!-- batch:end -->"
ENGINES = (("serial", 1), ("local", 2), ("dask", 2))


def _noop(task: object) -> ChunkResult:
    """A task doing no work: one results row back, as a chunk of one point returns."""
    _, points = task   # type: ignore[misc]
    point = points[0][1]
    row = {f"figure_{i}": float(i) for i in range(60)}
    row.update(id=point.id, label=point.label, status="optimal")
    return ChunkResult(runs=[row])


def small_sweep(folder: Path, n: int) -> Path:
    path = folder / "small.toml"
    path.write_text("[[generate]]\nsystems = 3\norgs_per_system = 2\nprojects_per_org = 3\n"
                    f"seed = {{ from = 0, to = {n - 1} }}\n")
    return path


def england_sweep(folder: Path, n: int) -> Path:
    """England's baseline (need-first) at ``n`` envelope levels, 2.5% apart up to 100%, on a copy of the
    instance taken now (so that edits to the repository during the run change nothing)."""
    copy = folder / "england"
    copy.mkdir()
    for f in (ROOT / "instances" / "england").iterdir():
        if f.is_file() and f.suffix in (".csv", ".toml"):
            shutil.copy(f, copy / f.name)
    path = folder / "england.toml"
    path.write_text('scenarios = ["england/baseline.toml"]\n'
                    f"[sweep]\nscale = {{ from = {1.0 - 0.025 * (n - 1):.3f}, to = 1.0, step = 0.025 }}\n")
    return path


class Clocked:
    """A progress sink that notes when each result came in."""

    def __init__(self) -> None:
        self.failed, self.times, self.counts = 0, [], []

    def start(self, label: str, total: int) -> None: ...
    def fail(self, n: int = 1) -> None: ...
    def finish(self) -> None: ...

    def advance(self, n: int = 1) -> None:
        self.times.append(time.perf_counter())
        self.counts.append(n)

    def steady(self) -> float:
        """Scenarios per second from the first result to the last (engine start-up excluded)."""
        if len(self.times) < 2 or self.times[-1] <= self.times[0]:
            return float("nan")
        return sum(self.counts[1:]) / (self.times[-1] - self.times[0])


def _busy() -> float:
    """CPU seconds the whole machine has spent busy (all cores, from /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _ours() -> float:
    """CPU seconds of this process and its children that have ended (pool and cluster workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(sweep: Path, folder: Path, engine: str, workers: int,
          chunk: int | None = None) -> tuple[float, int, int, float, float]:
    """One whole batch into a new store: (wall seconds, solved, failed, steady scenarios/s, cores used by
    other processes meanwhile)."""
    shutil.rmtree(folder, ignore_errors=True)
    sink = Clocked()
    busy, ours = _busy(), _ours()
    t0 = time.perf_counter()
    report = run_batch(expand([], sweep), folder, engine=engine, workers=workers, progress=sink, chunk=chunk)
    wall = time.perf_counter() - t0
    others = max(0.0, (_busy() - busy) - (_ours() - ours)) / wall
    return wall, report.done, report.failed, sink.steady(), others


def same(a: Path, b: Path) -> bool:
    """Equal status, objective and plan for every scenario."""
    ra, pa = read_results(a)
    rb, pb = read_results(b)
    key = ("id", "status", "objective", "identity")
    rows_a = sorted(tuple(r[k] for k in key) for r in ra.select(list(key)).to_pylist())
    rows_b = sorted(tuple(r[k] for k in key) for r in rb.select(list(key)).to_pylist())
    plan_a = sorted((r["id"], r["project_id"], r["start"]) for r in pa.to_pylist())
    plan_b = sorted((r["id"], r["project_id"], r["start"]) for r in pb.to_pylist())
    return rows_a == rows_b and plan_a == plan_b


def overhead(engine: str, workers: int, tasks: int, folder: Path) -> tuple[float, float]:
    """(seconds to start the engine, wall seconds per no-op task once it runs)."""
    folder.mkdir(parents=True, exist_ok=True)
    expansion = expand([], small_sweep(folder, tasks))
    base = next(iter(expansion.bases.values()))
    ref = BaseRef(base.key, base=base)
    items = [((ref,), ((0, p),)) for p in expansion.points]
    t0 = time.perf_counter()
    eng = make_engine(engine, workers, None, folder)
    try:
        list(eng.context.stream(_noop, items[: 4 * workers]))      # start the workers (spawn, import)
        started = time.perf_counter() - t0
        t1 = time.perf_counter()
        for _, res in eng.context.stream(_noop, items):
            assert isinstance(res, ChunkResult)
        per = (time.perf_counter() - t1) / len(items)
    finally:
        eng.close()
    return started, per


def other_processes() -> list[str]:
    """Other processes using CPU now (not this one or its children), from ps."""
    out = subprocess.run(["ps", "-eo", "pid,ppid,pcpu,etime,args", "--sort=-pcpu"], capture_output=True, text=True)
    mine = {os.getpid()}
    lines = []
    for line in out.stdout.splitlines()[1:]:
        parts = line.split(None, 4)
        if len(parts) < 5 or int(parts[0]) in mine or int(parts[1]) in mine:
            continue
        if float(parts[2]) >= 5.0:
            lines.append(f"{parts[2]}% CPU (running {parts[3]}): {parts[4][:90]}")
    return lines[:8]


def main() -> None:
    """Measure, print and record."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--england", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each batch (the least disturbed is kept)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="envelope-batch-bench-"))
    load0, seen0 = os.getloadavg(), other_processes()
    t_start = time.perf_counter()
    try:
        figures: dict[tuple[str, str], tuple[float, int, int, float, float]] = {}
        equal: dict[tuple[str, str], bool] = {}
        sweeps = {"small": small_sweep(work, args.small), "england": england_sweep(work, args.england)}
        for name, sweep in sweeps.items():
            for engine, workers in ENGINES:
                runs = [timed(sweep, work / f"{name}-{engine}", engine, workers) for _ in range(args.repeat)]
                figures[(name, engine)] = min(runs, key=lambda r: r[4])   # the least disturbed run (shared machine)
                s, done, failed, steady, load = figures[(name, engine)]
                print(f"{name} {engine} × {workers}: {done} solved ({failed} failed) in {s:.1f} s = "
                      f"{done / s:.2f} scenarios/s; {steady:.2f}/s after start-up; other processes used "
                      f"{load:.2f} cores (runs: {', '.join(f'{r[0]:.1f} s / {r[4]:.2f}' for r in runs)})", flush=True)
                if engine != "serial":
                    equal[(name, engine)] = same(work / f"{name}-serial", work / f"{name}-{engine}")
        unchunked = timed(sweeps["small"], work / "small-local-chunk1", "local", 2, chunk=1)
        print(f"small local × 2, one point per task: {unchunked[0]:.1f} s", flush=True)
        over = {engine: overhead(engine, workers, 200, work / f"overhead-{engine}") for engine, workers in ENGINES}
        for engine, (start, per) in over.items():
            print(f"overhead {engine}: start {start:.2f} s, {per * 1000:.2f} ms per no-op task", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load1, seen1 = os.getloadavg(), other_processes()
    total = time.perf_counter() - t_start

    def rate(name: str, engine: str) -> float:
        s, done, *_ = figures[(name, engine)]
        return done / s

    def steady(name: str, engine: str) -> float:
        return figures[(name, engine)][3]

    rows = []
    for name, label in (("small", f"{args.small} small generated (3×2×3, need-first)"),
                        ("england", f"{args.england} England variants (baseline, need-first, envelope × 0.525-1)")):
        for engine, workers in ENGINES:
            s, done, failed, st, load = figures[(name, engine)]
            ok = "reference" if engine == "serial" else ("equal" if equal[(name, engine)] else "**DIFFERENT**")
            rows.append(f"| {label} | {engine} × {workers} | {s:.1f} | {done / s:.2f} | "
                        f"{rate(name, engine) / rate(name, 'serial'):.2f}× | {st:.2f} | "
                        f"{st / steady(name, 'serial'):.2f}× | {load:.2f} | {failed} | {ok} |")
    speedup = steady("small", "local") / steady("small", "serial")
    dask_vs = steady("small", "dask") / steady("small", "local")
    speedup_wall = rate("small", "local") / rate("small", "serial")
    dask_wall = rate("small", "dask") / rate("small", "local")
    eng_speedup = steady("england", "local") / steady("england", "serial")
    eng_dask = steady("england", "dask") / steady("england", "local")
    verdict = {True: "**PASS**", False: "**FAIL**"}
    text = [
        BEGIN,
        "## Batch runs (`envelope batch`: throughput, engines, per-task overhead)",
        "",
        f"Generated by `python benchmarks/batch.py --small {args.small} --england {args.england} --repeat "
        f"{args.repeat}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} ({total / 60:.1f} min); "
        f"{args.repeat} runs of each batch on each engine (wall time of the whole `run_batch` call into a new "
        "results folder: engine start-up, store and consolidation included). "
        "Every solve single-threaded (threads = 1), HiGHS, default gap 0.1%.",
        "",
        f"**Machine load** (2 shared cores): load average {load0[0]:.2f} / {load0[1]:.2f} / {load0[2]:.2f} at the "
        f"start and {load1[0]:.2f} / {load1[1]:.2f} / {load1[2]:.2f} at the end. Other processes using CPU "
        "(other engineers' work on this machine; a snapshot, short runs in between are seen only in *other load* "
        "above), at the start: "
        + ("; ".join(f"`{p}`" for p in seen0) or "none") + "; at the end: "
        + ("; ".join(f"`{p}`" for p in seen1) or "none") + ".",
        "",
        "*Wall* is the whole command as a user sees it; *after start-up* is the throughput from the first result "
        "to the last (the engine's one-off start-up — spawning and importing the workers, starting the cluster — "
        "left out), the rate a longer batch runs at.",
        "",
        "*Other load* is the CPU (in cores) that processes other than the benchmark used during that run, from "
        "/proc/stat; of the repeated runs, the one with the least is reported.",
        "",
        "| batch | engine | wall s | scenarios/s (wall) | vs serial | scenarios/s after start-up | vs serial "
        "| other load (cores) | failed | results vs serial |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "| target | threshold | measured (after start-up) | measured (wall) | verdict |",
        "|---|---|---|---|---|",
        f"| small batch, 1 → 2 local workers | ≥ 1.8× | {speedup:.2f}× | {speedup_wall:.2f}× "
        f"| {verdict[speedup >= 1.8]} |",
        f"| small batch, Dask LocalCluster (2) vs local pool (2) | within 15% | {dask_vs:.2f}× | {dask_wall:.2f}× "
        f"| {verdict[dask_vs >= 0.85]} |",
        f"| England variants, 1 → 2 local workers (no target) | — | {eng_speedup:.2f}× | "
        f"{rate('england', 'local') / rate('england', 'serial'):.2f}× | — |",
        f"| England variants, Dask vs local pool (no target) | — | {eng_dask:.2f}× | "
        f"{rate('england', 'dask') / rate('england', 'local'):.2f}× | — |",
        "",
        f"Chunking: the small batch on the local pool with one point per task took {unchunked[0]:.1f} s "
        f"({unchunked[1] / unchunked[0]:.2f} scenarios/s; other load {unchunked[4]:.2f} cores) against "
        f"{figures[('small', 'local')][0]:.1f} s chunked "
        "(points are grouped into tasks of about 1 s of solving once the first solves are timed).",
        "",
        "Per-task overhead (no-op tasks shaped like a chunk of one point: a point in, a 60-column results row "
        "out, 200 of them after the workers started; wall time per task, which bounds how many tiny tasks an "
        "engine can run per second):",
        "",
        "| engine | start-up s | overhead per task, ms |",
        "|---|---|---|",
        *[f"| {engine} × {workers} | {over[engine][0]:.2f} | {over[engine][1] * 1000:.2f} |"
          for engine, workers in ENGINES],
        "",
        "Not measured here: Dask on a real cluster (dask-jobqueue on Slurm, docs/batch.md) — no cluster is "
        "reachable from this machine.",
        END,
    ]
    write_section(BEGIN, END, "\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
