#!/usr/bin/env python3
"""Write ``bids-template.xlsx``: the bids layout a planner fills in, with a handful of example bids.

Usage::

    python instances/workbook/build.py

The example bids are projects of the built-in England instance (``instances/england``), chosen by fixed rules
so the workbook shows every feature of a bid: an EPR procurement with two alternative platforms (a group), a
digitisation bid that needs that EPR (a dependency with a one-year lag), a mandatory fax replacement, a cyber bid
under a signed MoU (a committed start), an unconditional cyber bid, and a system-wide shared care record (no
trust: its ICB in ``system_id``). The envelope, organisations and systems sheets are England's (the real 42 ICBs
and 205 trusts, and the instance's synthetic envelope), so the workbook imports on its own:
``envelope import xlsx instances/workbook/bids-template.xlsx -o DIR``. The bytes are deterministic: running the
script twice writes the same file (``tests/test_workbook.py`` checks the committed file is what it writes).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ENGLAND = HERE.parent / "england"
TEMPLATE = HERE / "bids-template.xlsx"


def example_ids(projects: pd.DataFrame, dependencies: pd.DataFrame) -> list[str]:
    """The example bids' project ids, by rule: the first dependency's bid and the members of the EPR group it
    requires, the first mandatory bid, the first committed cyber bid, the first uncommitted cyber bid, and the
    first system-wide bid that requires nothing."""
    pr = projects
    first = dependencies.iloc[0]
    group = pr[pr["group"] == first["requires"]]["project_id"].tolist()
    cyber = pr[pr["kind"] == "cyber"]
    picks = [*group, first["project_id"],
             pr[pr["mandatory"]]["project_id"].iloc[0],
             cyber[cyber["committed_start"].notna()]["project_id"].iloc[0],
             cyber[cyber["committed_start"].isna()]["project_id"].iloc[0],
             pr[pr["org_id"].isna() & ~pr["project_id"].isin(dependencies["project_id"])]["project_id"].iloc[0]]
    return list(dict.fromkeys(picks))


def template() -> bytes:
    """The template workbook's bytes."""
    from solver.data.instance import load_instance, read_toml
    from solver.data.workbook import instance_workbook

    eng = load_instance(ENGLAND)
    ids = example_ids(eng.projects, eng.dependencies)
    pr = eng.projects[eng.projects["project_id"].isin(ids)].copy()
    pr["_order"] = pr["project_id"].map({p: i for i, p in enumerate(ids)})
    pr = pr.sort_values("_order").drop(columns="_order").reset_index(drop=True)
    costs = eng.costs[eng.costs["project_id"].isin(ids)].reset_index(drop=True)
    deps = eng.dependencies[eng.dependencies["project_id"].isin(ids)].reset_index(drop=True)
    sample = dataclasses.replace(eng, projects=pr, costs=costs, dependencies=deps)
    source = read_toml(ENGLAND / "instance.toml")
    meta = {
        "name": "bids-template",
        "description": "Envelope bids template: a handful of example bids from the England instance, England's "
                       "envelope, ICBs and trusts. Replace the bids with your own.",
        "currency": "GBPm",
        "years": list(eng.years),
        "synthetic": "The ICBs and trusts (codes, names, populations, need index, platforms, categories) are "
                     "real; the example bids and the envelope are SYNTHETIC, from instances/england (build.py, "
                     "seed 20261123). See instances/workbook/README.md.",
        "sources": {**source.get("sources", {}), "template": "instances/workbook/build.py from instances/england"},
    }
    return instance_workbook(sample, "bids", meta)


def main() -> None:
    from solver.data.workbook import is_envelope_workbook
    from solver.present.outputs import write_file

    write_file(TEMPLATE, template(), is_envelope_workbook, "a workbook Envelope wrote")
    print(f"wrote {TEMPLATE}")


if __name__ == "__main__":
    sys.exit(main())
