"""Who loses and gains what between two plans (``envelope diff BASE OTHER``, and ``solve`` on a scenario
that names its ``baseline``).

Both plans are audited ``Outcome``s: of two scenarios solved now, or of two result folders read back
(``solver.present.outputs.read_decisions``) and re-audited against their scenario, so every figure is
recomputed from the tables, never read from a solver. The project-level change is the engine's one
definition (``plan_changes``: in, out, moved); money is national delivery funding (capital and
revenue, all years), attributed to each project's trust, system, region, category and kind.

Tables: ``changes`` (one row per project whose funding or start differs), ``by_category``,
``by_kind``, ``by_system``, ``by_region``, ``by_trust`` (money before, after, change; projects lost
and gained), ``envelope`` (each year and pot: envelope, spent, unspent, before and after), and
``withdrawn`` (commitments withdrawn in the other plan, with their cost). The summary holds the cut,
the totals and a briefing paragraph.
"""

from __future__ import annotations

import math

import pandas as pd

from solver.analyses.engine import Analysis, header, jsonable, plan_changes
from solver.pipeline.accounts import budget_rows, project_system
from solver.pipeline.checks import fy
from solver.pipeline.outcome import Outcome

GROUPS = {"by_category": "category", "by_kind": "kind", "by_system": "system_id", "by_region": "region",
          "by_trust": "org_id"}


def _key(values: pd.Series) -> pd.Series:
    """Group keys as text; a missing or empty key (a system-wide project's trust or category) is
    ``system-wide``, never dropped."""
    return values.astype(object).map(lambda v: "system-wide" if v is None or v is pd.NA or v != v or v == ""
                                     else str(v))


def _attributes(o: Outcome) -> pd.DataFrame:
    """Each project's trust, system, region, category and kind (indexed by project_id)."""
    inst = o.scenario.instance
    pr = inst.projects.set_index("project_id")
    orgs = inst.organisations.set_index("org_id")
    psys = project_system(o.scenario)
    region = inst.systems.set_index("system_id")["region"]
    out = pd.DataFrame(index=pr.index)
    out["name"] = pr["name"]
    out["org_id"] = pr["org_id"].fillna("")
    out["system_id"] = pd.Series(psys)
    out["region"] = out["system_id"].map(region).fillna("")
    out["category"] = pr["org_id"].map(orgs["category"]).astype("Int64")
    out["kind"] = pr["kind"].fillna("")
    return out


def envelope_change(base: Outcome, other: Outcome) -> list[dict[str, object]]:
    """Each year and pot whose envelope differs: before, after and the change (£m)."""
    b = base.scenario.envelope.set_index("year")
    o = other.scenario.envelope.set_index("year")
    out = []
    for y in o.index:
        if y not in b.index:
            continue          # a year only one plan has (instances that differ): stated apart, not as a change
        for pot in ("capital", "revenue"):
            before, after = float(b.at[y, pot]), float(o.at[y, pot])
            if before != after:
                out.append({"year": int(y), "pot": pot, "before": before, "after": after, "change": after - before})
    return out


def diff_plans(base: Outcome, other: Outcome) -> Analysis:
    """The tables and summary of what changes from ``base``'s plan to ``other``'s."""
    for o in (base, other):
        if not o.has_plan:
            raise ValueError(f"{o.label or o.scenario.name}: no plan ({o.status.value})")
    mine, theirs = _attributes(other), _attributes(base)
    attrs = pd.concat([mine, theirs[~theirs.index.isin(mine.index)]])   # a project only in BASE keeps its own
    only_base = sorted(set(theirs.index) - set(mine.index))
    only_other = sorted(set(mine.index) - set(theirs.index))
    mb, mo = base.accounts.national(), other.accounts.national()
    bs, os_ = base.decisions.starts, other.decisions.starts  # type: ignore[union-attr]
    kinds = {r["project_id"]: r["change"] for r in plan_changes(base, other, project_system(other.scenario))}
    rows = []
    for p in sorted(set(bs) | set(os_)):
        before, after = mb.get(p, 0.0), mo.get(p, 0.0)
        change = {"in": "gained", "out": "lost", "moved": "moved"}.get(kinds.get(p, ""), "")
        if not change and abs(after - before) < 5e-7:
            continue
        a = attrs.loc[p] if p in attrs.index else None
        rows.append({
            "project_id": p, "name": a["name"] if a is not None else "", "org_id": a["org_id"] if a is not None else "",
            "system_id": a["system_id"] if a is not None else "", "region": a["region"] if a is not None else "",
            "category": a["category"] if a is not None else pd.NA, "kind": a["kind"] if a is not None else "",
            "change": change or ("more" if after > before else "less"),
            "funded_before": p in bs, "funded_after": p in os_, "start_before": bs.get(p), "start_after": os_.get(p),
            "money_before": before, "money_after": after, "money_change": after - before,
        })
    changes = pd.DataFrame(rows, columns=["project_id", "name", "org_id", "system_id", "region", "category", "kind",
                                          "change", "funded_before", "funded_after", "start_before", "start_after",
                                          "money_before", "money_after", "money_change"])
    changes["category"] = changes["category"].astype("Int64")
    for c in ("start_before", "start_after"):
        changes[c] = changes[c].astype("Int64")
    tables: dict[str, pd.DataFrame] = {"changes": changes}
    all_money = pd.DataFrame({"before": pd.Series(mb, dtype=float), "after": pd.Series(mo, dtype=float)}).fillna(0.0)
    all_money = all_money.join(attrs, how="left")
    names: dict[str, dict[str, str]] = {"system_id": {}, "org_id": {}}
    for inst in (base.scenario.instance, other.scenario.instance):
        names["system_id"].update(zip(inst.systems["system_id"], inst.systems["name"]))
        names["org_id"].update(zip(inst.organisations["org_id"], inst.organisations["name"]))
    for name, col in GROUPS.items():
        g = all_money.assign(key=_key(all_money[col]))
        t = g.groupby("key")[["before", "after"]].sum()
        t["change"] = t["after"] - t["before"]
        t["change_pct"] = (100 * t["change"] / t["before"]).where(t["before"] > 0)
        lost = changes[changes["change"] == "lost"].assign(key=lambda f, c=col: _key(f[c]))
        gained = changes[changes["change"] == "gained"].assign(key=lambda f, c=col: _key(f[c]))
        t["projects_lost"] = lost.groupby("key").size().reindex(t.index, fill_value=0)
        t["projects_gained"] = gained.groupby("key").size().reindex(t.index, fill_value=0)
        t = t.reset_index().rename(columns={"key": col}).sort_values(["change", col])
        if col in names:
            t.insert(1, "name", t[col].map(names[col]).fillna(""))
        tables[name] = t.reset_index(drop=True)
    env_rows = []
    ub, uo = _unspent(base), _unspent(other)
    for (y, pot) in sorted(set(ub) | set(uo)):
        eb, sb, nb = ub.get((y, pot), (math.nan,) * 3)
        eo, so, no = uo.get((y, pot), (math.nan,) * 3)
        env_rows.append({"year": y, "pot": pot, "envelope_before": eb, "envelope_after": eo, "spent_before": sb,
                         "spent_after": so, "unspent_before": nb, "unspent_after": no})
    tables["envelope"] = pd.DataFrame(env_rows)
    withdrawn_cost = {p: float(other.scenario.instance.projects.set_index("project_id").at[p, "withdrawal_cost"])
                      for p in other.decisions.withdrawn}  # type: ignore[union-attr]
    kept_before = set(base.decisions.withdrawn)  # type: ignore[union-attr]
    tables["withdrawn"] = pd.DataFrame(
        [{"project_id": p, "name": attrs.at[p, "name"], "org_id": attrs.at[p, "org_id"],
          "system_id": attrs.at[p, "system_id"], "category": attrs.at[p, "category"],
          "withdrawal_cost": c, "withdrawn_before": p in kept_before} for p, c in sorted(withdrawn_cost.items())],
        columns=["project_id", "name", "org_id", "system_id", "category", "withdrawal_cost", "withdrawn_before"])
    tail_b = sum(base.accounts.revenue_tail.values())
    tail_o = sum(other.accounts.revenue_tail.values())
    lost = changes[changes["change"] == "lost"]
    gained = changes[changes["change"] == "gained"]
    summary = {
        **header(other.scenario, "diff", {"base": base.scenario.name, "other": other.scenario.name}),
        "base": {"scenario": base.scenario.name, "path": base.scenario.path, "model": base.scenario.policy.name,
                 "identity": base.scenario.identity},
        "plans": {side: {"status": o.status.value, "termination": o.termination.value, "gap": o.gap}
                  for side, o in (("base", base), ("other", other))},
        "policy_change": policy_change(base, other),
        "projects_only_in": {"base": only_base, "other": only_other},
        "years_only_in": {"base": sorted(set(base.scenario.instance.years) - set(other.scenario.instance.years)),
                          "other": sorted(set(other.scenario.instance.years) - set(base.scenario.instance.years))},
        "envelope_change": envelope_change(base, other),
        "national_funding": {"before": sum(mb.values()), "after": sum(mo.values())},
        "projects": {"lost": len(lost), "gained": len(gained), "moved": int((changes["change"] == "moved").sum()),
                     "money_lost": -float(lost["money_change"].sum()),
                     "money_gained": float(gained["money_change"].sum())},
        "withdrawn": {"count": len(withdrawn_cost), "cost": sum(withdrawn_cost.values()),
                      "new": sorted(set(withdrawn_cost) - kept_before)},
        "revenue_tail": {"before": tail_b, "after": tail_o},
        "unspent": {"before": sum(v[2] for v in ub.values()), "after": sum(v[2] for v in uo.values())},
    }
    summary["briefing"] = briefing(summary, tables)
    return Analysis("diff", tables, jsonable(summary))  # type: ignore[arg-type]


def _flat(d: dict[str, object], prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def policy_change(base: Outcome, other: Outcome) -> dict[str, object]:
    """The two plans' models and every policy setting that differs (``commitments.mode``: keep → withdrawable)."""
    a, b = _flat(base.scenario.policy.model_dump()), _flat(other.scenario.policy.model_dump())
    changed = {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k) and k != "name"
               and k != "description"}
    return {"models": [base.scenario.policy.name, other.scenario.policy.name], "settings": changed}


def _unspent(o: Outcome) -> dict[tuple[int, str], tuple[float, float, float]]:
    """(year, pot) → (envelope, spent, unspent) of a plan (``accounts.budget_rows``)."""
    assert o.decisions is not None
    return {(int(r["year"]), str(r["pot"])): (float(r["envelope"]), float(r["spent"]), float(r["unspent"]))
            for r in budget_rows(o.scenario, o.decisions, o.accounts)}


def _pct(x: float) -> str:
    """A signed percentage with the same minus sign as ``gbp``."""
    return f"{'−' if x < 0 else '+'}{abs(x):.0f}%"


def gbp(x: float, sign: bool = True) -> str:
    """£m as a planner writes it: ``−£350.0m``, ``+£12.5m`` (``£12.5m`` without ``sign``)."""
    text = f"£{abs(x):,.1f}m"
    if not sign:
        return ("−" if x < -5e-2 else "") + text
    return ("−" if x < 0 else "+") + text if round(abs(x), 1) else text


def _cut_text(env: list[dict[str, object]]) -> str:
    if not env:
        return "The envelope is the same in both"
    parts = [f"{fy(int(e['year']))} {e['pot']} {gbp(float(e['before']), False)} → "  # type: ignore[arg-type]
             f"{gbp(float(e['after']), False)} ({gbp(float(e['change']))})" for e in env]  # type: ignore[arg-type]
    total = sum(float(e["change"]) for e in env)  # type: ignore[arg-type]
    return f"The envelope changes by {gbp(total)}: " + "; ".join(parts)


def briefing(summary: dict[str, object], tables: dict[str, pd.DataFrame]) -> str:
    """A paragraph a planner can paste into a briefing."""
    pr = summary["projects"]
    nf = summary["national_funding"]
    assert isinstance(pr, dict)
    assert isinstance(nf, dict)
    text = [_cut_text(summary["envelope_change"]) + "."]  # type: ignore[arg-type]
    pc = summary["policy_change"]
    assert isinstance(pc, dict)
    if pc["settings"] or pc["models"][0] != pc["models"][1]:
        settings = "; ".join(f"{k} {v[0]} → {v[1]}" for k, v in list(pc["settings"].items())[:4])
        text.append(f"The rules change too: model {pc['models'][0]} → {pc['models'][1]}"
                    + (f" ({settings}{' …' if len(pc['settings']) > 4 else ''})" if settings else "") + ".")
    only = summary["projects_only_in"]
    assert isinstance(only, dict)
    years = summary["years_only_in"]
    assert isinstance(years, dict)
    if only["base"] or only["other"] or years["base"] or years["other"]:
        text.append(f"The instances differ: {len(only['base'])} project(s) only in the base, {len(only['other'])} "
                    f"only in the other; envelope years only in the base {years['base'] or 'none'}, only in the "
                    f"other {years['other'] or 'none'}.")
    text.append(f"National funding goes from {gbp(nf['before'], False)} to {gbp(nf['after'], False)}: {pr['lost']} "
                f"projects lose their funding ({gbp(pr['money_lost'], False)}), {pr['gained']} gain it "
                f"({gbp(pr['money_gained'], False)}) and {pr['moved']} change start year.")
    cat = tables["by_category"]
    losers = cat[cat["change"] < -5e-4]
    if len(losers):
        text.append("By category: " + "; ".join(
            f"{'category ' + r.category if r.category != 'system-wide' else 'system-wide projects'} {gbp(r.change)}"
            + (f" ({_pct(r.change_pct)})" if r.change_pct == r.change_pct else "") for r in losers.itertuples()) + ".")
    winners = cat[cat["change"] > 5e-4]
    if len(winners):
        text.append("Gains: " + "; ".join(
            f"{'category ' + r.category if r.category != 'system-wide' else 'system-wide projects'} {gbp(r.change)}"
            for r in winners.itertuples()) + ".")
    kind = tables["by_kind"]
    worst = kind[kind["change"] < -5e-4].head(3)
    if len(worst):
        text.append("Hardest-hit kinds: " + "; ".join(f"{r.kind} {gbp(r.change)}" for r in worst.itertuples()) + ".")
    sysm = tables["by_system"]
    worst = sysm[sysm["change"] < -5e-4].head(3)
    if len(worst):
        text.append("Largest losses by system: " + "; ".join(f"{r.name} {gbp(r.change)}"
                                                             for r in worst.itertuples()) + ".")
    w = summary["withdrawn"]
    assert isinstance(w, dict)
    if w["count"]:
        text.append(f"{w['count']} signed commitment(s) withdrawn at a cost of {gbp(w['cost'], False)}.")
    un = summary["unspent"]
    assert isinstance(un, dict)
    if un["after"] > 5e-4 or un["before"] > 5e-4:
        text.append(f"Envelope left unspent: {gbp(un['before'], False)} before, {gbp(un['after'], False)} after.")
    tail = summary["revenue_tail"]
    assert isinstance(tail, dict)
    text.append(f"Run costs left beyond the envelope (revenue tail): {gbp(tail['before'], False)} before, "
                f"{gbp(tail['after'], False)} after.")
    return " ".join(text)
