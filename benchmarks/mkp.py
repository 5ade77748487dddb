"""OR-Library multidimensional knapsacks through ``envelope import mkp``: gap to the best-known value at a
60 s limit, the default backend against the others. Figures into benchmarks/RESULTS.md (section 7).

    python benchmarks/mkp.py                          # mknapcb1-3, problems 0-4, every installed backend
    python benchmarks/mkp.py --files 1 --problems 3 --limit 20 --jobs 2

Each problem is imported (``solver.data.importers.read_mkp``: one project per item, one envelope year per
constraint, a model whose objective is the sum of item profits), solved with one thread per solve and the
best-known value of Chu & Beasley (``mkcbres.txt``) as the yardstick: gap = (best known − plan) / best known
(negative if the plan beats it). ``--jobs 2`` runs two solves at once (2 cores): say so when comparing times.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.results import write_section  # noqa: E402

BEGIN, END = "<!-- mkp:begin -->", "<!-- mkp:end -->"
FILES = {1: ROOT / "tests" / "data" / "benchmarks" / "mknapcb1.txt",
         2: ROOT / "benchmarks" / "data" / "orlib" / "mknapcb2.txt",
         3: ROOT / "benchmarks" / "data" / "orlib" / "mknapcb3.txt"}
SIZES = {1: "5×100", 2: "5×250", 3: "5×500"}
BEST = ROOT / "tests" / "data" / "benchmarks" / "mkcbres.txt"


def best_knowns() -> list[int]:
    """Chu & Beasley's best-feasible values, file order (5.100-00 … 30.500-29)."""
    text = BEST.read_text()
    start = text.index("Best Feasible Solution Value")
    table = text[start:text.index("LP", start)]
    return [int(v) for v in re.findall(r"^\s*(?:\S+-\d\d\s+)?(\d+)\s*$", table, flags=re.M)]


def run_one(job: tuple[int, int, str, float]) -> dict[str, object]:
    """Import problem ``index`` of file ``k`` and solve it with ``backend`` (one thread)."""
    from solver.data.importers import read_mkp
    from solver.data.scenario import load_scenario
    from solver.pipeline.core import solve_scenario

    k, index, backend, limit = job
    imported = read_mkp(FILES[k], index)
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in imported.files().items():
            Path(tmp, name).write_text(text, encoding="utf-8")
        sc = load_scenario(Path(tmp, "scenario.toml")).with_solver(backend=backend, time_limit=limit, threads=1,
                                                                   mip_gap=0.0)
        t0 = time.perf_counter()
        try:
            o = solve_scenario(sc)
            value = o.objective if o.has_plan else float("nan")
            status = o.status.value
        except Exception as exc:  # a backend that refuses or fails is a row, not a crash
            value, status = float("nan"), f"error: {type(exc).__name__}"
        return {"file": k, "index": index, "backend": backend, "value": value, "status": status,
                "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--problems", type=int, default=5)
    ap.add_argument("--limit", type=float, default=60.0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--backends", nargs="+", default=None)
    ap.add_argument("--note", default="", help="what else was running on the machine")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    from solver.backends import DEFAULT_BACKEND, available_backends

    backends = args.backends or [DEFAULT_BACKEND] + [b for b in available_backends() if b != DEFAULT_BACKEND]
    best = best_knowns()
    jobs = [(k, i, b, args.limit) for k in args.files for i in range(args.problems) for b in backends]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(run_one, jobs))
    wall = time.perf_counter() - t0
    lines = ["| problem | best known | " + " | ".join(f"{b} gap | {b} s" for b in backends) + " |",
             "|---|---|" + "---|---|" * len(backends)]
    summary: dict[str, list[float]] = {b: [] for b in backends}
    for k in args.files:
        for i in range(args.problems):
            known = best[(k - 1) * 30 + i]
            cells = []
            for b in backends:
                r = next(r for r in rows if r["file"] == k and r["index"] == i and r["backend"] == b)
                value = float(r["value"])  # type: ignore[arg-type]
                gap = (known - value) / known if value == value else float("nan")
                if gap == gap:
                    summary[b].append(gap)
                cells.append(f"{100 * gap:.3f}%" if gap == gap else str(r["status"]))
                cells.append(f"{float(r['seconds']):.1f}")  # type: ignore[arg-type]
            lines.append(f"| mknapcb{k}-{i:02d} ({SIZES[k]}) | {known} | " + " | ".join(cells) + " |")
    means = "; ".join(f"{b}: mean gap {100 * sum(v) / len(v):.3f}% over {len(v)} problems, at best-known "
                      f"{sum(1 for g in v if g <= 1e-9)}" for b, v in summary.items() if v)
    section = "\n".join([
        BEGIN,
        "## 7. OR-Library multidimensional knapsacks (`envelope import mkp`)",
        "",
        f"Generated by `python benchmarks/mkp.py --limit {args.limit:g} --jobs {args.jobs}` on "
        f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; one thread per solve, {args.jobs} solve(s) at once; wall {wall:.0f} s. "
        "Gap to Chu & Beasley's best-known value (mkcbres.txt; negative = better), at a "
        f"{args.limit:g} s limit and mip_gap 0. {means}. Load average at the end {os.getloadavg()[0]:.1f}"
        + (f"; also running: {args.note}" if args.note else "") + ".",
        "",
        *lines,
        END,
    ])
    print(section)
    if not args.no_write:
        write_section(BEGIN, END, section)


if __name__ == "__main__":
    main()
