"""Does ``--time-limit`` hold on instances far larger than England? Figures into benchmarks/RESULTS.md.

    python benchmarks/time_limit.py                 # 10x, 50x and 100x England cut-350m, limit 10 s
    python benchmarks/time_limit.py --copies 50 --limit 20

Each size is a seeded synthetic scale-up of the England cut scenario (``benchmarks/synthetic.py``,
made in memory; loading it is not timed). The wall time covers what ``solve`` does after loading:
building the model, the greedy start, the solver, decoding and the audit. The promise is
limit + 10%, with a plan (the greedy one at worst) whenever funding nothing is feasible.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.results import write_section  # noqa: E402
from benchmarks.synthetic import scale_scenario  # noqa: E402
from solver.data.scenario import load_scenario  # noqa: E402
from solver.pipeline.core import solve_scenario  # noqa: E402

SCENARIO = ROOT / "instances" / "england" / "cut-350m.toml"
BEGIN, END = "<!-- time-limit:begin -->", "<!-- time-limit:end -->"


def main() -> None:
    """Measure, print and record."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, nargs="*", default=[10, 50, 100])
    parser.add_argument("--limit", type=float, default=10.0)
    args = parser.parse_args()
    base = load_scenario(SCENARIO)
    rows = []
    for copies in args.copies:
        sc = scale_scenario(base, copies).with_solver(time_limit=args.limit)
        t0 = time.perf_counter()
        out = solve_scenario(sc)
        wall = time.perf_counter() - t0
        ok = wall <= 1.1 * args.limit and out.has_plan
        rows.append(f"| {copies}x ({len(sc.instance.projects):,} projects, {out.model_size['integer_columns']:,} "
                    f"binaries) | {args.limit:g} | {wall:.1f} | {wall / args.limit:.2f}x | {out.status.value} "
                    f"| {len(out.funded):,} | {'PASS' if ok else 'FAIL'} |")
        print(rows[-1], flush=True)
    load = os.getloadavg()
    section = "\n".join([
        BEGIN,
        "## 5. Time limit on instances up to 100x England (cut-350m scaled, HiGHS)",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} with `python benchmarks/time_limit.py`; load average "
        f"{load[0]:.1f} on 2 cores. Wall time from the loaded scenario to the audited plan.",
        "",
        "| instance | limit s | wall s | wall / limit | status | funded | limit + 10% with a plan |",
        "|---|---|---|---|---|---|---|",
        *rows,
        END,
    ])
    write_section(BEGIN, END, section)


if __name__ == "__main__":
    main()
