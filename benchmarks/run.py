"""Envelope benchmarks: England solves per backend, build-time scaling, peak memory.

    python benchmarks/run.py            # full run (~10 min on 2 cores), writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick    # ~2 min: 10 s limit, no 20k size, no 1e-4 runs

Sections (see benchmarks/README.md for the definitions):

1. Each England scenario x each backend at the default settings (mip_gap 1e-3, 60 s), HiGHS
   also at 1e-4, plus time-to-0.1%-gap of the default backend (median of ``--reps`` runs).
2. Array build (``formulate``) against the term-by-term PuLP build of the same model
   (``build_pulp_problem``) at England size and on seeded synthetic copies (~5k, ~20k projects).
3. Peak memory of the England solve and of the largest build, each in a fresh child process.

Figures are printed as they come and written atomically (temp file + ``os.replace``) to the
output file as Markdown. This file is not a pytest module (pytest collects ``test_*.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import gc
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))  # synthetic.py, also when this file is imported rather than run

from pulp_reference import build_term_by_term  # noqa: E402
from synthetic import copies_for, scale_scenario  # noqa: E402

import solver.mip.formulation as formulation_module  # noqa: E402
from solver.api import solve  # noqa: E402
from solver.backends import DEFAULT_BACKEND, backend_names  # noqa: E402
from solver.backends.cbc import build_pulp_problem  # noqa: E402
from solver.data.scenario import Scenario, load_scenario  # noqa: E402
from solver.mip.arrays import ModelBuilder  # noqa: E402
from solver.mip.formulation import formulate  # noqa: E402

SCENARIOS = {
    "baseline": ROOT / "instances" / "england" / "baseline.toml",
    "cut-350m": ROOT / "instances" / "england" / "cut-350m.toml",
}
DEFAULT_GAP = 1e-3
TIGHT_GAP = 1e-4
TIME_LIMIT = 60.0
QUICK_TIME_LIMIT = 10.0
SIZES_FULL = (0, 5_000, 20_000)   # 0 = England itself
SIZES_QUICK = (0, 5_000)
TARGET_TIME_TO_GAP = 10.0         # s, default backend to 0.1% gap, 2 cores
TARGET_BUILD = 1.0                # s, England array build
TARGET_RATIO = 10.0               # PuLP / array build time at ~20k projects
RATIO_SIZE = 20_000
PACKAGES = ("envelope-solver", "highspy", "pulp", "ortools", "numpy", "scipy", "pandas", "pydantic")
MIB = 1024.0 * 1024.0


# --------------------------------------------------------------------------------------------
# records


@dataclass
class SolveRun:
    """One ``solve()`` call on one England scenario."""

    scenario: str
    backend: str
    mip_gap: float
    time_limit: float
    rep: int
    status: str = "error"
    termination: str = ""
    objective: float | None = None
    bound: float | None = None
    gap: float | None = None
    build_seconds: float | None = None
    solve_seconds: float | None = None
    wall_seconds: float = 0.0
    solver_version: str = ""
    message: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        """True when the call returned an audited plan."""
        return not self.error and self.objective is not None


@dataclass
class ScalePoint:
    """Build timings at one model size (paired reps: array build then PuLP build)."""

    label: str
    copies: int
    projects: int
    size: dict[str, int]
    array_seconds: list[float] = field(default_factory=list)
    pulp_seconds: list[float] = field(default_factory=list)
    term_seconds: list[float] = field(default_factory=list)
    mps_seconds: list[float] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def ratios(self) -> list[float]:
        """Bulk PuLP / array time per rep (both timed back to back in the same rep)."""
        return [p / a for p, a in zip(self.pulp_seconds, self.array_seconds) if a > 0]

    @property
    def term_ratios(self) -> list[float]:
        """Term-by-term PuLP / array time per rep (the target's comparison)."""
        return [p / a for p, a in zip(self.term_seconds, self.array_seconds) if a > 0]


@dataclass
class Report:
    """Everything one benchmark run measured, for printing and for RESULTS.md."""

    started: str
    command: str
    cwd: str
    quick: bool
    reps: int
    time_limit: float
    machine: dict[str, str]
    versions: dict[str, str]
    solves: list[SolveRun] = field(default_factory=list)
    scaling: list[ScalePoint] = field(default_factory=list)
    memory: list[dict[str, Any]] = field(default_factory=list)
    load_seconds: dict[str, float] = field(default_factory=dict)
    synth_seconds: dict[str, float] = field(default_factory=dict)
    load_after: str = ""
    total_seconds: float = 0.0


# --------------------------------------------------------------------------------------------
# environment


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def machine_info() -> dict[str, str]:
    """Cores, CPU model (from /proc/cpuinfo), memory, OS, Python and the load at the start."""
    models = []
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            name = line.split(":", 1)[1].strip()
            if name not in models:
                models.append(name)
    mem = ""
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem = f"{int(line.split()[1]) / MIB:.1f} GiB"
    try:
        usable = str(len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        usable = "?"
    return {
        "cores": f"{os.cpu_count()} logical ({usable} usable by this process)",
        "cpu": "; ".join(models) or platform.processor() or "unknown",
        "memory": mem or "unknown",
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        "load average at start (1/5/15 min)": _loadavg(),
    }


def _loadavg() -> str:
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover
        return "unknown"


def package_versions() -> dict[str, str]:
    """Installed versions of the solver stack, and the repository commit."""
    out: dict[str, str] = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True,
                               text=True, check=True, timeout=10).stdout.splitlines()
        out["repository"] = head + (f" + {len(dirty)} uncommitted path(s)" if dirty else " (clean)")
    except (OSError, subprocess.SubprocessError):
        out["repository"] = "unknown"
    return out


def maxrss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size in MiB (Linux reports KiB)."""
    return resource.getrusage(who).ru_maxrss / 1024.0


def _proc_status_mib(key: str) -> float | None:
    """A ``kB`` field of /proc/self/status in MiB, or None where /proc is missing."""
    for line in _read("/proc/self/status").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024.0
    return None


def current_rss_mib() -> float | None:
    """Current resident set size in MiB (``VmRSS``)."""
    return _proc_status_mib("VmRSS")


def peak_rss_mib() -> float:
    """This process's own peak RSS in MiB (``VmHWM``).

    Not ``ru_maxrss``: in a child started by fork + exec, Linux folds the parent's peak at the
    fork into the child's ``ru_maxrss``, so a child of a large parent would report the parent's
    size. ``VmHWM`` belongs to the process's own address space and is reset by ``reset_peak_rss``.
    """
    hwm = _proc_status_mib("VmHWM")
    return hwm if hwm is not None else maxrss_mib()


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (``VmHWM``) to its current RSS (Linux >= 4.0:
    ``echo 5 > /proc/self/clear_refs``), so a later ``peak_rss_mib()`` is the peak of what ran in
    between. Returns False where that is not possible (the peak then includes the earlier work)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def _peak_of(fn: Callable[[], Any]) -> tuple[float, float, bool, Any]:
    """(RSS before, peak RSS while ``fn`` ran, reset worked, result), in MiB."""
    gc.collect()
    reset = reset_peak_rss()
    before = current_rss_mib() or peak_rss_mib()
    value = fn()
    return before, peak_rss_mib(), reset, value


# --------------------------------------------------------------------------------------------
# 1. solves


def run_solve(scenario: Scenario, label: str, backend: str, mip_gap: float, time_limit: float,
              rep: int) -> SolveRun:
    """One ``solve()`` call; failures are recorded, not raised."""
    run = SolveRun(scenario=label, backend=backend, mip_gap=mip_gap, time_limit=time_limit, rep=rep)
    gc.collect()
    t0 = time.perf_counter()
    try:
        out = solve(scenario, backend=backend, time_limit=time_limit, mip_gap=mip_gap)
    except Exception as exc:  # a failing backend is a result to report, not a crash
        run.wall_seconds = time.perf_counter() - t0
        run.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        return run
    run.wall_seconds = time.perf_counter() - t0
    run.status = str(out.status)
    run.termination = str(out.termination)
    run.objective = out.objective
    run.bound = out.bound
    run.gap = out.gap
    run.build_seconds = out.build_seconds
    run.solve_seconds = out.solve_seconds
    run.solver_version = out.solver_version
    run.message = out.message
    return run


def measure_solves(report: Report, scenarios: dict[str, Scenario], *, tight: bool) -> None:
    """Section 1: every scenario x backend at the defaults; the default backend ``reps`` times;
    HiGHS at 1e-4 when ``tight``."""
    for label, scen in scenarios.items():
        for backend in backend_names():
            reps = report.reps if backend == DEFAULT_BACKEND else 1
            for rep in range(reps):
                _record(report, run_solve(scen, label, backend, DEFAULT_GAP, report.time_limit, rep))
        if tight:
            _record(report, run_solve(scen, label, "highs", TIGHT_GAP, report.time_limit, 0))


def _record(report: Report, run: SolveRun) -> None:
    report.solves.append(run)
    if run.ok:
        print(f"  {run.scenario:9s} {run.backend:6s} gap<={run.mip_gap:g} rep {run.rep}: {run.status:9s} "
              f"obj {run.objective:,.3f} bound {_num(run.bound)} gap {_pct(run.gap)} "
              f"build {run.build_seconds:.3f}s solve {run.solve_seconds:.2f}s wall {run.wall_seconds:.2f}s",
              flush=True)
    else:
        print(f"  {run.scenario:9s} {run.backend:6s} gap<={run.mip_gap:g}: FAILED after {run.wall_seconds:.1f}s: "
              f"{run.error}", flush=True)


# --------------------------------------------------------------------------------------------
# 2. build scaling


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def _write_mps(prob: Any) -> float:
    """Seconds PuLP takes to write the problem as MPS (what the CBC backend pays per solve)."""
    fd, path = tempfile.mkstemp(prefix="envelope-bench-", suffix=".mps")
    os.close(fd)
    try:
        t0 = time.perf_counter()
        prob.writeMPS(path)
        return time.perf_counter() - t0
    finally:
        os.unlink(path)


def measure_build(scenario: Scenario, label: str, copies: int, reps: int) -> ScalePoint:
    """One untimed warm-up, then ``reps`` paired timings of the array and PuLP builds."""
    form = formulate(scenario)
    build_pulp_problem(form.model)
    point = ScalePoint(label=label, copies=copies, projects=len(scenario.instance.projects),
                       size=form.model.size())
    for _ in range(reps):
        t_array, form = _timed(lambda: formulate(scenario))
        t_pulp, (prob, _vars) = _timed(lambda model=form.model: build_pulp_problem(model))
        t_term, _term = _timed(lambda model=form.model: build_term_by_term(model))
        del _term
        point.array_seconds.append(t_array)
        point.pulp_seconds.append(t_pulp)
        point.term_seconds.append(t_term)
        point.mps_seconds.append(_write_mps(prob))
        del prob, _vars
    return point


def stage_breakdown(scenario: Scenario, reps: int) -> dict[str, float]:
    """Median seconds per stage of ``formulate`` (``prepare``, each rule family's ``define`` as
    ``define_<family>``, the CSR ``ModelBuilder.build``, and ``total``), timed by swapping in timed
    copies of the registry's families for the duration of the measurement."""
    original_prepare = formulation_module.prepare
    original_families = formulation_module.FAMILIES
    original_build = ModelBuilder.build
    acc: dict[str, float] = {}

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                acc[name] = acc.get(name, 0.0) + time.perf_counter() - t0
        return timed

    samples: dict[str, list[float]] = {}
    try:
        formulation_module.prepare = wrap("prepare", original_prepare)
        formulation_module.FAMILIES = tuple(
            dataclasses.replace(f, define=wrap(f"define_{f.name}", f.define)) if f.define is not None else f
            for f in original_families)
        ModelBuilder.build = wrap("ModelBuilder.build", original_build)  # type: ignore[method-assign]
        for _ in range(reps):
            acc.clear()
            t, _form = _timed(lambda: formulate(scenario))
            acc["total"] = t
            for k, v in acc.items():
                samples.setdefault(k, []).append(v)
    finally:
        formulation_module.prepare = original_prepare
        formulation_module.FAMILIES = original_families
        ModelBuilder.build = original_build  # type: ignore[method-assign]
    return {k: statistics.median(v) for k, v in samples.items()}


def measure_scaling(report: Report, base: Scenario, sizes: Sequence[int]) -> None:
    """Section 2 at England size (0) and at the synthetic sizes."""
    n0 = len(base.instance.projects)
    for target in sizes:
        if target == 0:
            scen, copies, label = base, 1, "England"
        else:
            copies = copies_for(target, n0)
            t, scen = _timed(lambda copies=copies: scale_scenario(base, copies))
            label = f"~{target:,} (England x{copies})"
            report.synth_seconds[label] = t
        point = measure_build(scen, label, copies, report.reps)
        if target == max(sizes):
            point.stages = stage_breakdown(scen, report.reps)
        report.scaling.append(point)
        print(f"  {label:22s} {point.projects:6d} projects, {point.size['columns']:6d} cols, "
              f"{point.size['nonzeros']:7d} nnz: array {_med(point.array_seconds):.4f}s, "
              f"PuLP bulk {_med(point.pulp_seconds):.3f}s ({_med(point.ratios):.1f}x), "
              f"PuLP term-by-term {_med(point.term_seconds):.3f}s ({_med(point.term_ratios):.1f}x; "
              f"reps {', '.join(f'{r:.1f}' for r in point.term_ratios)})", flush=True)


# --------------------------------------------------------------------------------------------
# 3. memory (each probe in a fresh interpreter, so that ru_maxrss is its own)


def probe(kind: str, copies: int, time_limit: float) -> dict[str, Any]:
    """Body of a memory probe child; returns figures in MiB.

    RSS: the peak is reset just before each measured step (see ``reset_peak_rss``), so
    ``peak - before`` is the memory that step added on top of what was already resident.
    Traced: ``tracemalloc`` peak and held memory of the array build, and memory held by the PuLP
    problem (Python objects), each measured in a separate pass from the RSS figures.
    """
    base = load_scenario(SCENARIOS["baseline"])
    out: dict[str, Any] = {"kind": kind, "copies": copies}
    if kind == "england-solve":
        before, peak, reset, res = _peak_of(
            lambda: solve(base, backend=DEFAULT_BACKEND, time_limit=time_limit, mip_gap=DEFAULT_GAP))
        out.update(rss_before=before, rss_peak=peak, peak_reset=reset, status=str(res.status),
                   backend=DEFAULT_BACKEND)
        scen = base
    else:
        scen = scale_scenario(base, copies) if copies > 1 else base
        out["projects"] = len(scen.instance.projects)
        before, peak, reset, form = _peak_of(lambda: formulate(scen))
        out.update(rss_before=before, rss_peak=peak, peak_reset=reset)
        before, peak, _, prob = _peak_of(lambda: build_pulp_problem(form.model))
        out.update(pulp_rss_before=before, pulp_rss_peak=peak)
        del prob, form
        gc.collect()
        tracemalloc.start()
        form = formulate(scen)
        base_traced = tracemalloc.get_traced_memory()[0]
        prob = build_pulp_problem(form.model)
        out["pulp_traced_current"] = (tracemalloc.get_traced_memory()[0] - base_traced) / MIB
        tracemalloc.stop()
        del prob, form
        gc.collect()
    tracemalloc.start()
    form = formulate(scen)
    current, peak_traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    m = form.model
    arrays = [m.c, m.col_lo, m.col_hi, m.integrality, m.A.data, m.A.indices, m.A.indptr, m.row_lo, m.row_hi]
    out["array_traced_peak"] = peak_traced / MIB
    out["array_traced_current"] = current / MIB
    out["model_array_bytes"] = sum(a.nbytes for a in arrays) / MIB
    return out


def run_probe(kind: str, copies: int, time_limit: float) -> dict[str, Any]:
    """Run ``probe`` in a child interpreter (this file with ``--memory-probe``)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-probe", kind, "--copies", str(copies),
           "--time-limit", str(time_limit)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30 * 60, cwd=str(ROOT))
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        return {"kind": kind, "copies": copies, "error": f"exit {proc.returncode}: {tail}", "seconds": seconds}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["seconds"] = seconds
    return result


def measure_memory(report: Report, base_projects: int, largest: int) -> None:
    """Section 3: the England solve (default backend) and the build at the largest size."""
    copies = copies_for(largest, base_projects)
    for kind, k in (("england-solve", 1), ("build", copies)):
        res = run_probe(kind, k, report.time_limit)
        report.memory.append(res)
        if "error" in res:
            print(f"  {kind}: FAILED: {res['error']}", flush=True)
        else:
            print(f"  {kind} x{k}: " + ", ".join(f"{key} {val:.1f}" for key, val in res.items()
                                                  if isinstance(val, float)), flush=True)


# --------------------------------------------------------------------------------------------
# formatting


def _med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _num(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def _pct(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.4f}%" if v < 0.01 else f"{100 * v:.2f}%"


def _secs(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**PASS**" if ok else "**FAIL**")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _bound_valid(bound: float, best_objective: float | None) -> bool:
    """False for a (maximisation) bound below a feasible objective: such a bound is wrong."""
    return best_objective is None or bound >= best_objective - 1e-6 * max(1.0, abs(best_objective))


def best_known(report: Report) -> dict[str, tuple[float | None, float | None]]:
    """Per scenario: best objective, and tightest bound over the runs whose bound is valid."""
    out: dict[str, tuple[float | None, float | None]] = {}
    for label in SCENARIOS:
        runs = [r for r in report.solves if r.scenario == label and r.ok]
        objs = [r.objective for r in runs if r.objective is not None]
        best = max(objs) if objs else None
        bounds = [r.bound for r in runs if r.bound is not None and _bound_valid(r.bound, best)]
        out[label] = (best, min(bounds) if bounds else None)
    return out


def time_to_gap(report: Report) -> dict[str, tuple[float, float, float, bool, list[SolveRun]]]:
    """Per scenario, default backend at 1e-3: median end-to-end wall, median formulate + solver
    time, worst gap, all runs proved <= 0.1%, and the runs."""
    out = {}
    for label in SCENARIOS:
        runs = [r for r in report.solves
                if r.scenario == label and r.backend == DEFAULT_BACKEND and r.mip_gap == DEFAULT_GAP]
        proved = bool(runs) and all(r.ok and r.status == "optimal" and r.gap is not None
                                    and r.gap <= DEFAULT_GAP + 1e-9 for r in runs)
        wall = _med([r.wall_seconds for r in runs])
        inner = _med([(r.build_seconds or 0.0) + (r.solve_seconds or 0.0) for r in runs if r.ok])
        worst = max((r.gap for r in runs if r.gap is not None), default=float("nan"))
        out[label] = (wall, inner, worst, proved, runs)
    return out


def targets(report: Report) -> list[tuple[str, str, str, bool | None]]:
    """(target, threshold, measured, pass) rows."""
    rows: list[tuple[str, str, str, bool | None]] = []
    for label, (wall, inner, worst, proved, runs) in time_to_gap(report).items():
        ok = proved and wall <= TARGET_TIME_TO_GAP
        rows.append((f"time to 0.1% gap, {DEFAULT_BACKEND} (default), England {label}",
                     f"<= {TARGET_TIME_TO_GAP:g} s on 2 cores",
                     f"{wall:.2f} s end to end (formulate + solver {inner:.2f} s; median of {len(runs)}; "
                     f"worst gap {_pct(worst)})" if runs else "not measured", ok if runs else None))
    england = [p for p in report.scaling if p.copies == 1]
    if england:
        t = _med(england[0].array_seconds)
        rows.append(("England array build (formulate, baseline)", f"< {TARGET_BUILD:g} s",
                     f"{t:.4f} s (median of {len(england[0].array_seconds)})", t < TARGET_BUILD))
    big = [p for p in report.scaling if p.projects >= 0.75 * RATIO_SIZE]
    if big:
        r = _med(big[-1].term_ratios)
        rows.append((f"term-by-term PuLP / array build time at ~{RATIO_SIZE:,} projects", f">= {TARGET_RATIO:g}x",
                     f"{r:.1f}x (median of per-rep ratios {', '.join(f'{x:.1f}' for x in big[-1].term_ratios)}); "
                     f"bulk PuLP (the CBC backend's build) {_med(big[-1].ratios):.1f}x",
                     r >= TARGET_RATIO))
    else:
        rows.append((f"term-by-term PuLP / array build time at ~{RATIO_SIZE:,} projects", f">= {TARGET_RATIO:g}x",
                     "not measured (--quick skips this size)", None))
    return rows


def observations(report: Report) -> list[str]:
    """Automatic notes: failures, bound/objective inconsistencies, backends that stopped early."""
    notes: list[str] = []
    best = best_known(report)
    for r in report.solves:
        if not r.ok:
            notes.append(f"{r.backend} on {r.scenario} (gap {r.mip_gap:g}) failed: {r.error}")
            continue
        if r.status == "optimal" and r.gap is not None and r.gap > r.mip_gap + 1e-9:
            notes.append(f"{r.backend} on {r.scenario} reports optimal with gap {_pct(r.gap)} > "
                         f"mip_gap {r.mip_gap:g}")
        if r.status != "optimal":
            notes.append(f"{r.backend} on {r.scenario} (gap {r.mip_gap:g}) stopped {r.termination} "
                         f"after {r.solve_seconds:.1f} s with gap {_pct(r.gap)}")
        if r.message.endswith(")") and "within gap tolerance" not in r.message:
            notes.append(f"{r.backend} on {r.scenario} (gap {r.mip_gap:g}) noted: {r.message}")
    for label, (obj, _) in best.items():
        if obj is None:
            continue
        for r in report.solves:
            if r.scenario == label and r.ok and r.bound is not None and not _bound_valid(r.bound, obj):
                notes.append(f"INCONSISTENT: {r.backend} (gap {r.mip_gap:g}) reports bound {r.bound:,.3f} on "
                             f"{label}, below the objective {obj:,.3f} of a plan another run found; that "
                             "bound (and the gap derived from it) is not valid")
    return list(dict.fromkeys(notes))


def render(report: Report) -> str:
    """The report as Markdown (RESULTS.md)."""
    lines = [
        "# Envelope benchmark results",
        "",
        f"Generated by `benchmarks/run.py` ({'QUICK mode' if report.quick else 'full run'}). "
        "Do not edit by hand: rerun the command below.",
        "",
        f"- Date: {report.started}",
        f"- Command: `{report.command}` (in `{report.cwd}`)",
        f"- Total wall time: {report.total_seconds / 60:.1f} min; solve time limit {report.time_limit:g} s; "
        f"timings repeated {report.reps}x (median reported)",
    ]
    lines += ["", "## Machine and versions", ""]
    lines += _table(["item", "value"], [[k, v] for k, v in report.machine.items()]
                    + [["load average at end (1/5/15 min)", report.load_after]]
                    + [[k, v] for k, v in report.versions.items()])
    solver_versions = sorted({f"{r.backend}: {r.solver_version}" for r in report.solves if r.solver_version})
    if solver_versions:
        lines += ["", "Solver versions reported by the backends: " + "; ".join(solver_versions) + "."]

    lines += ["", "## Targets", ""]
    lines += _table(["target", "threshold", "measured", "verdict"],
                    [[a, b, c, _verdict(d)] for a, b, c, d in targets(report)])

    lines += ["", "## 1. England scenarios x backends", "",
              f"Default settings: mip_gap {DEFAULT_GAP:g}, time limit {report.time_limit:g} s, threads 0 (the "
              f"backend's default). Default backend: **{DEFAULT_BACKEND}** (marked *). Every plan returned "
              "passed `solve()`'s independent audit. `gap to best` is the objective's distance to the best "
              "objective of any run on that scenario; `build s` is `formulate`, `solve s` the solver call "
              "as the backend times it, `wall s` the whole `solve()` call (includes any PuLP build, MPS "
              "file, child process, decode and audit).", ""]
    best = best_known(report)
    rows = []
    for r in report.solves:
        if r.backend == DEFAULT_BACKEND and r.mip_gap == DEFAULT_GAP and r.rep > 0:
            continue  # repeats are summarised in the time-to-gap table
        name = f"{r.backend} *" if r.backend == DEFAULT_BACKEND else r.backend
        obj_best = best[r.scenario][0]
        to_best = None
        if r.ok and obj_best is not None and r.objective is not None:
            to_best = (obj_best - r.objective) / max(abs(obj_best), 1e-9)
        status = r.status if r.ok else f"ERROR: {r.error[:80]}"
        if r.ok and r.termination and r.termination != r.status:
            status += f" ({r.termination})"
        rows.append([r.scenario, name, f"{r.mip_gap:g}", status, _num(r.objective), _num(r.bound), _pct(r.gap),
                     _pct(to_best), _secs(r.build_seconds, 3), _secs(r.solve_seconds), _secs(r.wall_seconds)])
    lines += _table(["scenario", "backend", "mip_gap", "status", "objective", "bound", "final gap", "gap to best",
                     "build s", "solve s", "wall s"], rows)
    lines += ["", "Best objective / tightest valid bound over all runs (a bound below a plan's objective is "
                  "left out; see Observations): " + "; ".join(
        f"{k}: {_num(o)} / {_num(b)}" for k, (o, b) in best.items()) + "."]
    lines += ["", f"**Time to 0.1% gap, default backend ({DEFAULT_BACKEND}), {report.reps} runs each:**", ""]
    ttg_rows = []
    for label, (wall, inner, worst, proved, runs) in time_to_gap(report).items():
        ttg_rows.append([label, ", ".join(_secs(r.wall_seconds) for r in runs), _secs(wall), _secs(inner),
                         _pct(worst), "yes" if proved else "NO"])
    lines += _table(["scenario", "wall s per run", "median wall s", "median formulate + solver s", "worst gap",
                     "all proved <= 0.1%"], ttg_rows)

    lines += ["", "## 2. Build time: arrays vs term-by-term PuLP", "",
              "`array` = `solver.mip.formulation.formulate(scenario)` (data preparation + every `define_*` + "
              "CSR assembly); `PuLP term` = `benchmarks/pulp_reference.py`, the same model written the way a "
              "PuLP model usually is, `lpSum(coef * var)` per row (the target's comparison); `PuLP bulk` = "
              "`solver.backends.cbc.build_pulp_problem(form.model)`, which hands PuLP each row's pairs at once "
              "(what the CBC backend does before each solve); `MPS` = PuLP writing that problem to an MPS file "
              "(also paid on every CBC solve; in no ratio). One untimed warm-up, "
              f"then {report.reps} paired reps; ratio = median of the per-rep PuLP/array ratios. Synthetic sizes "
              "are seeded copies of England (`benchmarks/synthetic.py`, seed 20260101).", ""]
    rows = []
    for p in report.scaling:
        rows.append([p.label, f"{p.projects:,}", f"{p.size['columns']:,}", f"{p.size['rows']:,}",
                     f"{p.size['nonzeros']:,}", _secs(_med(p.array_seconds), 4), _secs(_med(p.term_seconds), 3),
                     _secs(_med(p.pulp_seconds), 3), _secs(_med(p.mps_seconds), 3), f"{_med(p.term_ratios):.1f}x",
                     f"{min(p.term_ratios):.1f}-{max(p.term_ratios):.1f}x" if p.term_ratios else "-",
                     f"{_med(p.ratios):.1f}x"])
    lines += _table(["size", "projects", "columns", "rows", "nonzeros", "array s", "PuLP term s", "PuLP bulk s",
                     "MPS s", "term/array", "per-rep range", "bulk/array"], rows)
    if report.synth_seconds:
        lines += ["", "Generating the synthetic instances took " + "; ".join(
            f"{k}: {v:.2f} s" for k, v in report.synth_seconds.items()) + " (not part of any timing)."]
    for p in report.scaling:
        if not p.stages:
            continue
        total = p.stages.get("total", float("nan"))
        lines += ["", f"Where the array build time goes at {p.projects:,} projects (each stage timed by wrapping it; "
                      f"median of {report.reps} further runs; the `define_*` times include building the "
                      "row and column name strings):", ""]
        stage_rows = [[f"`{k}`", f"{v:.4f}", f"{100 * v / total:.0f}%"]
                      for k, v in sorted(p.stages.items(), key=lambda kv: -kv[1]) if k != "total" and v > 0]
        other = total - sum(v for k, v in p.stages.items() if k != "total")
        stage_rows.append(["rest of `formulate`", f"{other:.4f}", f"{100 * other / total:.0f}%"])
        stage_rows.append(["**total**", f"{total:.4f}", "100%"])
        lines += _table(["stage", "seconds", "share"], stage_rows)

    lines += ["", "## 3. Peak memory", "",
              "Each probe runs in a fresh interpreter (`run.py --memory-probe`). After imports and loading, the "
              "peak RSS is reset (`/proc/self/clear_refs`), so `RSS added` is the step's own peak above what was "
              "resident before it (`VmHWM` after the step minus `VmRSS` before it; not `ru_maxrss`, which in a "
              "child includes the parent's peak at the fork). `traced` figures are `tracemalloc` (Python and "
              "numpy allocations; not HiGHS's C++ memory), from a separate pass.",
              ""]
    rows = []
    for m in report.memory:
        if "error" in m:
            rows.append([m["kind"], f"FAILED: {m['error']}", "", "", ""])
            continue
        added = f"+{m['rss_peak'] - m['rss_before']:.0f} MiB (peak {m['rss_peak']:.0f}, before {m['rss_before']:.0f})"
        if not m.get("peak_reset", False):
            added += " (peak could not be reset: includes imports and load)"
        if m["kind"] == "england-solve":
            what = f"England baseline `solve()` ({m['backend']}, {m['status']})"
            pulp = "-"
        else:
            what = f"`formulate` at {m['projects']:,} projects (England x{m['copies']})"
            pulp = (f"+{m['pulp_rss_peak'] - m['pulp_rss_before']:.0f} MiB RSS (peak {m['pulp_rss_peak']:.0f}); "
                    f"{m['pulp_traced_current']:.0f} MiB traced, held by the problem")
        arr = (f"peak {m['array_traced_peak']:.1f} MiB, held {m['array_traced_current']:.1f} MiB "
               f"(model arrays {m['model_array_bytes']:.1f} MiB)")
        rows.append([what, added, arr, pulp, f"{m['seconds']:.0f} s"])
    lines += _table(["probe", "RSS added by the step", "array build, traced", "PuLP build of the same model",
                     "probe wall"], rows)

    notes = observations(report)
    lines += ["", "## Observations (generated)", ""]
    lines += [f"- {n}" for n in notes] if notes else ["- none: every run returned a plan proved within its gap."]
    lines += ["", "Loading the scenarios (reading and validating the tables) took " + "; ".join(
        f"{k}: {v:.2f} s" for k, v in report.load_seconds.items()) + " (not part of the build time)."]
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the report is meant to be read and committed
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------------------------
# main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"~2 min: {QUICK_TIME_LIMIT:g} s time limit, no ~20k size, no 1e-4 runs")
    ap.add_argument("--output", type=Path, default=None,
                    help="Markdown output (default benchmarks/RESULTS.md, or RESULTS-quick.md with --quick)")
    ap.add_argument("--reps", type=int, default=3, help="repeats of each timing (median reported)")
    ap.add_argument("--time-limit", type=float, default=None, help="solver time limit in seconds")
    ap.add_argument("--memory-probe", choices=["england-solve", "build"], help=argparse.SUPPRESS)
    ap.add_argument("--copies", type=int, default=1, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write the report; returns the exit code."""
    args = parse_args(argv)
    time_limit = args.time_limit or (QUICK_TIME_LIMIT if args.quick else TIME_LIMIT)
    if args.memory_probe:
        print(json.dumps(probe(args.memory_probe, args.copies, time_limit)))
        return 0
    output = args.output or HERE / ("RESULTS-quick.md" if args.quick else "RESULTS.md")
    t_start = time.perf_counter()
    report = Report(
        started=dt.datetime.now(dt.UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"),
        command=shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv])),
        cwd=os.getcwd(),
        quick=args.quick,
        reps=max(1, args.reps),
        time_limit=time_limit,
        machine=machine_info(),
        versions=package_versions(),
    )
    print(f"Envelope benchmarks ({'quick' if args.quick else 'full'}), {report.started}", flush=True)
    for k, v in report.machine.items():
        print(f"  {k}: {v}")
    print("  " + ", ".join(f"{k} {v}" for k, v in report.versions.items()), flush=True)

    scenarios: dict[str, Scenario] = {}
    for label, path in SCENARIOS.items():
        t, scenarios[label] = _timed(lambda path=path: load_scenario(path))
        report.load_seconds[label] = t

    print(f"\n1. England solves (time limit {time_limit:g} s)", flush=True)
    measure_solves(report, scenarios, tight=not args.quick)

    sizes = SIZES_QUICK if args.quick else SIZES_FULL
    print(f"\n2. Build scaling ({report.reps} reps, median)", flush=True)
    measure_scaling(report, scenarios["baseline"], sizes)

    print("\n3. Peak memory (child processes)", flush=True)
    measure_memory(report, len(scenarios["baseline"].instance.projects), max(sizes))

    report.load_after = _loadavg()
    report.total_seconds = time.perf_counter() - t_start
    text = render(report)
    write_atomic(output, text)
    print("\n" + text)
    print(f"Wrote {output} in {report.total_seconds / 60:.1f} min.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
