r"""Dependencies: a project may start only ``lag`` years after what it requires has started.

For :math:`p` requiring :math:`Q` (a project, or any member of a group) with lag :math:`L`,
for each candidate start :math:`y` of :math:`p`:

.. math:: \sum_{s \le y} x_{(p,s)} \le \sum_{q \in Q} \sum_{s' \le y - L} x_{(q,s')}
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from solver.data.scenario import Scenario
from solver.data.variants import Override
from solver.mip.arrays import INF
from solver.rules.base import Audit, Build, Cheap, Family, Priced, PriceRelaxation, fy, row_key


def define(m: Build) -> None:
    """The ``dependency`` rows, one per dependency and candidate start (when the rule is on)."""
    if not m.scenario.policy.dependencies.enabled:
        return
    d, x = m.d, m.x
    dep = m.scenario.instance.dependencies
    if dep.empty:
        return
    pidx = pd.Series(np.arange(len(d.project_ids)), index=d.project_ids)
    opts = pd.DataFrame({"o": np.arange(d.o_project.size), "proj": d.o_project, "start": d.o_start})
    deps = pd.DataFrame({"dep": np.arange(len(dep)), "p_id": dep["project_id"].to_numpy(),
                         "q_id": dep["requires"].to_numpy(), "lag": dep["lag_years"].to_numpy()})
    deps["p"] = pidx.loc[deps["p_id"]].to_numpy()
    groups = pd.DataFrame({"q_id": d.p_group, "q": np.arange(len(d.project_ids))})
    groups = groups[groups["q_id"] != ""]
    singles = pd.DataFrame({"q_id": d.project_ids, "q": np.arange(len(d.project_ids))})
    members = pd.concat([groups, singles]).merge(deps[["dep", "q_id"]], on="q_id")[["dep", "q"]]
    # one row per dependency and candidate start year y of the dependent project
    rows = deps.merge(opts[["proj", "start"]].rename(columns={"proj": "p", "start": "y"}), on="p")
    rows = rows.drop_duplicates(["dep", "y"]).sort_values(["dep", "y"]).reset_index(drop=True)
    if rows.empty:
        return
    rows["r"] = np.arange(len(rows))
    mine = rows[["r", "p", "y"]].merge(opts.rename(columns={"proj": "p"}), on="p")
    mine = mine[mine["start"] <= mine["y"]]
    theirs = rows[["r", "dep", "y", "lag"]].merge(members, on="dep").merge(opts.rename(columns={"proj": "q"}), on="q")
    theirs = theirs[theirs["start"] <= theirs["y"] - theirs["lag"]]
    names = [f"dependency[{p}<-{q},{y}]" for p, q, y in zip(rows["p_id"], rows["q_id"], rows["y"])]
    m.b.add_rows("dependency", names,
                 np.concatenate([mine["r"].to_numpy(), theirs["r"].to_numpy()]),
                 np.concatenate([x[mine["o"].to_numpy()], x[theirs["o"].to_numpy()]]),
                 np.concatenate([np.ones(len(mine)), -np.ones(len(theirs))]), -INF, 0.0)


def check(a: Audit) -> list[str]:
    """Every funded project's requirement (or a member of the required group) started ``lag`` years
    before it."""
    if not a.scenario.policy.dependencies.enabled:
        return []
    v, starts = a.v, a.dec.starts
    out = []
    for p, q, lag in v.dependencies:
        if p not in starts:
            continue
        qs = v.group_members.get(q, [q])
        if not any(qq in starts and starts[qq] + lag <= starts[p] for qq in qs):
            out.append(f"{p}: starts {starts[p]} but requires {q} to have started {lag} year(s) before")
    return out


def causes(c: Cheap) -> list[str]:
    """A mandatory or committed project with a fixed start whose requirement cannot start early enough."""
    if not c.scenario.policy.dependencies.enabled:
        return []
    pr = c.projects
    members = pr.reset_index().dropna(subset=["group"]).groupby("group")["project_id"].apply(list).to_dict()
    out = []
    for p, q, lag in c.scenario.instance.dependencies[["project_id", "requires", "lag_years"]].itertuples(index=False):
        if p not in c.fixed:
            continue
        latest_ok = c.fixed[p] - lag
        first = min(int(pr.at[m, "earliest_start"]) for m in members.get(q, [q]))
        if first > latest_ok:
            out.append(f"dependency: {p} must start {fy(c.fixed[p])} but requires {q} to have started by "
                       f"{fy(latest_ok)} (lag {lag}); {q} cannot start before {fy(first)}")
    return out


def describe(row: str, activity: float, hi: float, amount: float) -> str:
    """A relaxed dependency row as a sentence."""
    key = row_key(row)
    parts = key.split(",")
    p, q = parts[0].split("<-")
    return f"dependency: {p} (start {fy(int(parts[-1]))}) needs {q} to have started earlier, which cannot happen"


def prices(scenario: Scenario) -> Priced:
    """Dependencies ignored."""
    if not scenario.policy.dependencies.enabled:
        return [], {"dependencies": "off"}
    if scenario.instance.dependencies.empty:
        return [], {"dependencies": "no dependency"}
    return [PriceRelaxation("dependencies", "dependencies ignored",
                            (Override.of({"dependencies": {"enabled": False}}),))], {}


FAMILY = Family(name="dependencies", define=define, check=check, causes=causes, rows={"dependency": "rule"},
                describe=describe, prices=prices)
