"""``envelope report``: result folders as one self-contained HTML page, readable on a laptop and printable.

The page is built from ``Result``s (``solver.present.results``), never from solver objects: sections
appear only when their data is there (a solve gives the headline, allocation, spend, misses and
category sections, and the baseline's changes when it named one; each analysis, comparison, diff or
batch adds its own section). Figures are inline SVG drawn by ``solver.present.figures``; the page
loads nothing (no script, no font, no image from anywhere); every text from the data is escaped by
the template engine (Jinja2 with autoescape), so a project named ``<script>…`` shows as text.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from solver.analyses.diff import gbp
from solver.errors import InputError
from solver.pipeline.checks import fy
from solver.present import figures as F
from solver.present.results import Result

KIND_NAMES = {"epr_procurement": "EPR procurement", "epr_optimisation": "EPR optimisation",
              "cyber": "cyber security", "shared_care_record": "shared care record"}
GENERATOR = '<meta name="generator" content="Envelope'
"""How a report Envelope wrote starts (in its first lines): a later report may replace such a file."""
#: Reason codes (docs/reasons.md) in a planner's words, for the trusts table.
REASON_WORDS = {"excluded": "excluded by the scenario", "no_start": "no start fits the years",
                "platform": "new EPR platform", "local_capital": "above local capital",
                "local_revenue": "above revenue headroom", "envelope": "too big for the pot",
                "fair_share": "above fair-share cap", "alternative": "an alternative was funded",
                "dependency": "what it needs is unfunded", "local_room": "local room used by others",
                "fair_share_room": "fair-share limit", "outcompeted": "money went to better value",
                "no_gain": "no gain", "start_window": "start window"}
SYSTEM_WIDE = 99  # the category key of projects of a system, not of a trust
CATEGORY_NAMES = {0: "0: least digitally mature", 1: "1", 2: "2", 3: "3: most digitally mature"}


# ---------------------------------------------------------------------------------------------- formatting
def gbpm(x: Any, sign: bool = False) -> str:
    """Money in £m as ``gbp`` writes it (£1,234.5m; −£3.0m, +£2.0m with ``sign``); '—' when missing."""
    v = _num(x)
    if v is None or math.isinf(v):
        return "—" if v is None else ("∞" if v > 0 else "−∞")
    return gbp(v, sign)


def pct(x: Any, digits: int = 0) -> str:
    v = _num(x)
    return "—" if v is None else f"{v:.{digits}%}"


def number(x: Any, digits: int = 1) -> str:
    v = _num(x)
    if v is None:
        return "—"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    text = f"{abs(v):,.{digits}f}"
    return ("−" + text) if v < 0 and float(text.replace(",", "")) != 0 else text


def _num(x: Any) -> float | None:
    if x is None or isinstance(x, str) and not x.strip():
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _text(x: Any) -> str:
    if x is None or isinstance(x, float) and math.isnan(x):
        return ""
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


FORMATS: dict[str, Callable[[Any], str]] = {
    "text": _text, "money": gbpm, "change": lambda x: gbpm(x, sign=True), "pct": pct,
    "pct1": lambda x: pct(x, 1), "int": lambda x: number(x, 0), "num": lambda x: number(x, 1),
    "num3": lambda x: number(x, 3), "ratio": lambda x: pct(x, 0),
    "kind": lambda x: KIND_NAMES.get(_text(x), _text(x).replace("_", " ")),
    "year": lambda x: "—" if _num(x) is None else fy(int(_num(x) or 0)),
    "yesno": lambda x: "—" if x is None or isinstance(x, float) and math.isnan(x) else ("yes" if x else "no"),
}


# ---------------------------------------------------------------------------------------------- page model
@dataclass
class Table:
    """A table of the page: caption, column headers and formatted cells (numbers right-aligned)."""

    caption: str
    headers: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    note: str = ""


@dataclass
class Figure:
    """A figure of the page: its file name (for ``--figures``), title, caption and inline SVG."""

    name: str
    title: str
    caption: str
    svg: str


@dataclass
class Section:
    """One section: a heading, optional key figures, paragraphs, bullet lists, figures and tables."""

    id: str
    title: str
    lead: str = ""
    cards: list[tuple[str, str, str]] = field(default_factory=list)   # (label, value, detail)
    paragraphs: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass
class Report:
    """The page: its title, sections and HTML; ``plots`` keeps the matplotlib figures for ``--figures``."""

    title: str
    sections: list[Section]
    html: str
    plots: dict[str, Any]


def table(frame: pd.DataFrame | None, columns: Sequence[tuple[str, str, str]], caption: str,
          limit: int | None = None, note: str = "") -> Table | None:
    """``columns``: (header, column, format) with a format of ``FORMATS``; None when there are no rows."""
    if frame is None or frame.empty:
        return None
    cols = [(h, c, f) for h, c, f in columns if c in frame.columns]
    shown = frame if limit is None else frame.head(limit)
    rows = [[FORMATS[f](r[c]) for _, c, f in cols] for _, r in shown.iterrows()]
    if limit is not None and len(frame) > limit:
        note = (note + " " if note else "") + f"First {limit} of {len(frame)} rows; all are in the CSV file."
    return Table(caption, [h for h, _, _ in cols], rows, [f not in ("text", "yesno", "kind") for _, _, f in cols], note)


class _Builder:
    """Collects sections and figures, numbering figure ids so several results share one page."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.plots: dict[str, Any] = {}

    def figure(self, section: Section, name: str, fig: Any, title: str, caption: str) -> None:
        if fig is None:
            return
        key = name
        n = 2
        while key in self.plots:
            key, n = f"{name}-{n}", n + 1
        self.plots[key] = fig
        section.figures.append(Figure(key, title, caption, F.svg(fig, f"f{len(self.plots)}")))

    def add(self, section: Section) -> Section:
        """Append ``section``, its id made unique on the page."""
        taken = {s.id for s in self.sections}
        base, n = section.id, 2
        while section.id in taken:
            section.id, n = f"{base}-{n}", n + 1
        self.sections.append(section)
        return section


# ---------------------------------------------------------------------------------------------- a solve
def _spend(plan: pd.DataFrame | None, budget: pd.DataFrame | None) -> pd.DataFrame:
    """Per year and pot: the envelope and the national money spent from it (``budget.csv``: delivery money, the
    centre's part of the fee and run costs the centre pays), and what systems add (local match, and the
    system's part of the fee) from ``plan.csv``."""
    if budget is None or budget.empty:
        return pd.DataFrame()
    years = sorted(budget["year"].unique())
    out = pd.DataFrame({"year": years})
    sums = plan.groupby("year").sum(numeric_only=True) if plan is not None and len(plan) else pd.DataFrame()

    def per_year(column: str) -> list[float]:
        return [float(sums[column].get(y, 0.0)) if column in sums else 0.0 for y in years]

    for pot in ("capital", "revenue"):
        b = budget[budget["pot"] == pot].set_index("year")
        out[f"envelope_{pot}"] = [float(b["envelope"].get(y, 0.0)) for y in years]
        out[f"national_{pot}"] = [float(b["spent"].get(y, 0.0)) for y in years]
        out[f"local_{pot}"] = per_year(f"local_{pot}")
    out["fee_system"] = per_year("fee_system")
    out["fee_centre"] = per_year("fee_centre")
    return out


def _bids_in_words(cell: Any) -> str:
    """``EPR-X: platform;DIG-X: dependency`` → ``EPR-X (new EPR platform); DIG-X (what it needs is unfunded)``."""
    out = []
    for item in _text(cell).split(";"):
        project, _, code = item.partition(": ")
        if project.strip():
            out.append(f"{project.strip()} ({REASON_WORDS.get(code.strip(), code.strip())})" if code else project)
    return "; ".join(out)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _short(s: Any) -> str:
    return F.short_name(_text(s))


def _solve_sections(b: _Builder, r: Result, label: str) -> None:
    s = r.summary
    plan, budget, systems = r.table("plan"), r.table("budget"), r.table("systems")
    misses, trusts, changes = r.table("misses"), r.table("trusts"), r.table("changes")
    base = s.get("baseline") or {}

    # headline
    head = b.add(Section(f"{label}headline", f"{s.get('scenario', r.name)}: the plan",
                         lead=_text(s.get("description"))))
    env_total = float(budget["envelope"].sum()) if budget is not None else math.nan
    spent = float(budget["spent"].sum()) if budget is not None else math.nan
    unspent = float(budget["unspent"].sum()) if budget is not None else math.nan
    local = float(plan[["local_capital", "local_revenue"]].sum().sum()) if plan is not None and len(plan) else 0.0
    status = _text(s.get("status"))
    gap = _num(s.get("gap"))
    proof = {"optimal": "proved optimal", "feasible": "a plan, not proved optimal",
             "heuristic": "a rule's plan: no bound claimed"}.get(status, status)
    head.cards += [
        ("Envelope", gbpm(env_total), f"{len(budget) // 2 if budget is not None else 0} years, capital and revenue"),
        ("National money spent", gbpm(spent), f"{pct(spent / env_total) if env_total else '—'} of the envelope"),
        ("Unspent", gbpm(unspent), f"{pct(unspent / env_total)} of the envelope, not spent in its year"
         if unspent > 0.05 and env_total else "envelope fully used"),
        ("Projects funded", f"{s.get('funded_projects', '—')} of {s.get('candidate_projects', '—')}",
         f"local match {gbpm(local)}"),
        ("Status", status, proof + (f"; gap {pct(gap, 2)}" if gap is not None else "")),
    ]
    if base.get("compared"):
        cut = sum(float(e.get("change", 0.0)) for e in base.get("envelope_change", []))
        nf = base.get("national_funding", {})
        pr = base.get("projects", {})
        named = base.get("scenario")
        head.cards.insert(0, ("The change", gbpm(cut, sign=True),
                              "against the baseline scenario" + (f" '{named}'" if named != "baseline" else "")))
        head.paragraphs.append(_text(base.get("briefing")))
        head.cards.append(("Projects losing funding", f"{pr.get('lost', 0)}",
                           f"{gbpm(pr.get('money_lost'))}; {pr.get('gained', 0)} gain, {pr.get('moved', 0)} move; "
                           f"national money {gbpm(nf.get('before'))} → {gbpm(nf.get('after'))}"))
    elif base:
        head.paragraphs.append(f"Not compared with its baseline {base.get('scenario')}: {base.get('skipped')}")
    audit = s.get("audit") or {}
    solver = s.get("solver") or {}
    head.paragraphs.append(
        f"Model {s.get('model')} on instance {s.get('instance')}; solved by {solver.get('backend')} "
        f"{solver.get('version', '')}; objective {number(s.get('objective'), 1)}"
        + (f", bound {number(s.get('bound'), 1)}" if s.get("bound") is not None else "")
        + f"; independent audit {'passed' if audit.get('passed') else 'FAILED'}.")
    head.bullets += [_text(x) for x in s.get("rules", [])]
    for w in s.get("warnings", []) or []:
        head.paragraphs.append("Warning: " + _text(w))
    spend = _spend(plan, budget)
    if budget is not None:
        env = budget.copy()
        env = env.drop(columns=[c for c in ("capital_to_revenue", "carried_in") if c in env and not env[c].any()])
        env["year"] = [fy(int(y)) for y in env["year"]]
        t = table(env, [("Year", "year", "text"), ("Pot", "pot", "text"), ("Envelope", "envelope", "money"),
                        ("Spent", "spent", "money"), ("Capital → revenue", "capital_to_revenue", "money"),
                        ("Carried in", "carried_in", "money"), ("Unspent", "unspent", "money")],
                  "Envelope per year and pot (national money)")
        if t is not None:
            head.tables.append(t)

    # allocation by system
    if systems is not None and not systems.empty:
        fs = s.get("fair_share") or {}
        of = (base.get("fair_share_basis") or ("the money spent" if fs.get("basis") == "spend" else "the envelope"))
        floor = float(fs["floor"]) if fs.get("mode") in ("floor", "band") else None
        sec = b.add(Section(f"{label}allocation", "Allocation by system against fair share",
                            lead=f"National money funded in each integrated care system over the plan years, against "
                                 f"its fair share of {of} (by weighted population). Sorted from the system furthest "
                                 "below its fair share" + (f"; red: below the policy's floor of {floor:.0%}"
                                                           if floor is not None else "") + "."))
        b.figure(sec, "allocation", F.allocation_figure(systems, floor), "Money by system against fair share",
                 "Bars: national money funded; tick: fair share; the percentage is money ÷ fair share"
                 + (f". With {len(systems)} systems, the {F.MANY} furthest below and the {F.MANY} furthest above "
                    "their fair share are shown" if len(systems) > 2 * F.MANY else "") + ".")
        low = systems.assign(ratio=systems["allocation_to_fair_share"]).sort_values("ratio").head(10)
        sec.tables.append(table(low, [("System", "name", "text"), ("Region", "region", "text"),
                                      ("Fair share", "fair_share", "money"), ("Funded", "allocation", "money"),
                                      ("Of fair share", "ratio", "ratio"), ("Projects funded", "funded", "int"),
                                      ("Candidates", "candidates", "int"),
                                      ("Unmet need (points)", "unmet_need", "num")],
                                "The ten systems furthest below their fair share"))

    # spend by year and pot
    if not spend.empty:
        sec = b.add(Section(f"{label}spend", "Spend by year and pot",
                            lead="Capital and revenue each year: the national envelope's money, the local match "
                                 "systems add, the access fee, and what is left unspent (no carry-over unless the "
                                 "policy says so)."))
        b.figure(sec, "spend", F.spend_figure(spend), "Spend by year and pot",
                 "Dark: national money spent from the pot; light: local match; grey: the systems' part of the "
                 "access fee; black line: the national envelope for that pot.")
        shown = spend.assign(year=[fy(int(y)) for y in spend["year"]])
        sec.tables.append(table(shown, [
            ("Year", "year", "text"), ("Capital envelope", "envelope_capital", "money"),
            ("National capital spent", "national_capital", "money"), ("Local capital", "local_capital", "money"),
            ("Revenue envelope", "envelope_revenue", "money"),
            ("National revenue spent", "national_revenue", "money"), ("Local revenue", "local_revenue", "money"),
            ("Fee paid by systems", "fee_system", "money"), ("Fee paid by the centre", "fee_centre", "money")],
            "Spend per year (£m)", note="National money spent includes the centre's part of the access fee and the "
                                        "run costs the centre pays; the systems' part of the fee is local revenue."))

    # who misses out
    if misses is not None or trusts is not None:
        sec = b.add(Section(f"{label}misses", "Who misses out",
                            lead="Systems and the least digitally mature trusts (categories 0 and 1) with nothing "
                                 "funded, and the largest unfunded projects with the reason each is not in the plan "
                                 "(docs/reasons.md)."))
        if misses is not None and not misses.empty:
            sysm = misses[misses["type"] == "system"]
            sec.tables.append(table(sysm, [("System", "name", "text"), ("Asked", "cost", "money"),
                                           ("Need-weighted benefit forgone", "need_weighted_benefit", "num")],
                                    "Systems with nothing funded"))
        if trusts is not None and not trusts.empty:
            nothing = (trusts["funded_bids"].map(_text) == "" if "funded_bids" in trusts
                       else trusts["funded_national"] <= 0)
            t = trusts[(trusts["category"].isin([0, 1])) & nothing & (trusts["bids"] > 0)]
            t = t.assign(system=[_short(x) for x in t["system_id"].map(_names(systems))],
                         unfunded_bids=[_bids_in_words(x) for x in t["unfunded_bids"]])
            sec.tables.append(table(t.sort_values(["category", "asked"], ascending=[True, False]), [
                ("Trust", "name", "text"), ("System", "system", "text"), ("Category", "category", "int"),
                ("Bids", "bids", "int"), ("Asked", "asked", "money"),
                ("Unfunded bids and why", "unfunded_bids", "text")],
                "Category 0 and 1 trusts with nothing funded", limit=25))
        if misses is not None and not misses.empty:
            pm = misses[misses["type"] == "project"]
            if "counts_as_unmet" in pm:   # an alternative of a funded project is not a miss
                pm = pm[pm["counts_as_unmet"].astype(str).str.lower() == "true"]
            pm = pm.sort_values("need_weighted_benefit", ascending=False)
            sec.tables.append(table(pm, [("Project", "name", "text"), ("Category", "category", "int"),
                                         ("Cost", "cost", "money"),
                                         ("Need-weighted benefit", "need_weighted_benefit", "num"),
                                         ("Why not funded", "reason", "text")],
                                    "Largest unfunded projects (by need-weighted benefit forgone)", limit=15))

    # category shares
    if trusts is not None and not trusts.empty:
        after = trusts.groupby("category")["funded_national"].sum().to_dict()
        national = (float(plan[["national_capital", "national_revenue"]].sum().sum())
                    if plan is not None and len(plan) else 0.0)
        after[SYSTEM_WIDE] = max(national - sum(after.values()), 0.0)        # projects of no trust
        shares = pd.DataFrame({"category": list(after), "after": list(after.values())})
        if changes is not None and not changes.empty and "category" in changes:
            delta = changes.groupby(changes["category"].fillna(SYSTEM_WIDE))["money_change"].sum()
            shares["before"] = [float(a) - float(delta.get(c, 0.0))
                                for c, a in zip(shares["category"], shares["after"])]
        sec = b.add(Section(f"{label}categories", "Money by digital-maturity category",
                            lead="Share of national money going to trusts in each category (0: least digitally "
                                 "mature, 3: most), and to system-wide projects (of an ICB, not a trust)."))
        b.figure(sec, "categories", F.category_figure(shares), "National money by category",
                 "Share of the national money funded to trusts of each category.")
        shares["category"] = [CATEGORY_NAMES.get(int(c), str(c)) if c != SYSTEM_WIDE else "system-wide projects"
                              for c in shares["category"]]
        if "before" in shares:
            shares["change"] = shares["after"] - shares["before"]
        sec.tables.append(table(shares, [("Category", "category", "text"), ("Baseline", "before", "money"),
                                         ("This plan", "after", "money"), ("Change", "change", "change")],
                                "National money by category"))

    # the baseline's changes
    if changes is not None and not changes.empty:
        _changes_section(b, changes, systems, label, f"Against the baseline (scenario {base.get('scenario', '')})",
                         "What the change does to each project, grouped: money lost and gained by category, "
                         "kind of project and system (changes.csv has every project).")


def _names(systems: pd.DataFrame | None) -> dict[str, str]:
    if systems is None or "name" not in systems:
        return {}
    return dict(zip(systems["system_id"], systems["name"]))


def _grouped(changes: pd.DataFrame, col: str) -> pd.DataFrame:
    g = changes.assign(key=changes[col].map(_text).replace("", "—"))
    t = g.groupby("key").agg(change=("money_change", "sum"),
                             lost=("change", lambda c: int((c == "lost").sum())),
                             gained=("change", lambda c: int((c == "gained").sum()))).reset_index()
    return t.rename(columns={"key": col}).sort_values("change")


def _changes_section(b: _Builder, changes: pd.DataFrame, systems: pd.DataFrame | None, label: str, title: str,
                     lead: str, by: dict[str, pd.DataFrame] | None = None) -> None:
    """Losers and gainers by category, kind and system, from the per-project changes (or a diff's tables)."""
    sec = b.add(Section(f"{label}changes", title, lead=lead))
    names = _names(systems)
    by = by or {}
    cat = by.get("by_category", _grouped(changes, "category"))
    kind = by.get("by_kind", _grouped(changes, "kind"))
    sys_ = by.get("by_system", _grouped(changes, "system_id"))
    if "name" not in sys_:
        sys_ = sys_.assign(name=sys_["system_id"].map(names).fillna(sys_["system_id"]))
    sys_ = sys_.assign(label=[_short(n) for n in sys_["name"]])
    cat = cat.assign(label=[CATEGORY_NAMES.get(int(_num(c) or 0), "?") if _num(c) is not None else "system-wide"
                            for c in cat["category"]])
    b.figure(sec, "changes-by-system", F.change_figure(sys_, "label", "by system"),
             "Change in national money by system", "The systems losing most (red) and gaining most (green).")
    lost = "projects_lost" if "projects_lost" in cat else "lost"
    gained = "projects_gained" if "projects_gained" in cat else "gained"
    cols = [("Before", "before", "money"), ("After", "after", "money"), ("Change", "change", "change"),
            ("Projects lost", lost, "int"), ("Projects gained", gained, "int")]
    sec.tables.append(table(cat, [("Category", "label", "text"), *cols], "By category"))
    sec.tables.append(table(kind, [("Kind", "kind", "kind"), *cols], "By kind of project"))
    sec.tables.append(table(sys_, [("System", "name", "text"), *cols], "By system (largest losses first)", limit=15))
    lost_p = changes[changes["change"] == "lost"].sort_values("money_change")
    sec.tables.append(table(lost_p, [("Project", "name", "text"), ("Category", "category", "int"),
                                     ("Kind", "kind", "kind"), ("Money before", "money_before", "money")],
                            "Projects that lose their funding (largest first)", limit=15))


# ---------------------------------------------------------------------------------------------- analyses
def _ladder(b: _Builder, r: Result, label: str) -> None:
    levels, alloc, systems, projects = r.table("levels"), r.table("allocation"), r.table("systems"), r.table("projects")
    sec = b.add(Section(f"{label}ladder", f"Cut ladder: {_scenario_name(r)}",
                        lead="The envelope cut step by step: how many projects survive at each level, and which "
                             "systems keep money (each system's money as a share of its fair share of that level's "
                             "envelope, so the ratios differ from a plan's against its baseline)."))
    b.figure(sec, "ladder", F.survival_figure(levels, alloc, _names(systems)), "Survival under cuts",
             "Top: projects funded at each level. Bottom: each system's money ÷ fair share (red: below it, "
             "blue: above it, grey: nothing funded).")
    sec.tables.append(table(levels, [("Level", "label", "text"), ("Envelope", "envelope", "money"),
                                     ("Cut", "cut", "money"), ("Status", "status", "text"),
                                     ("Objective", "objective", "num"), ("Funded", "funded", "int"),
                                     ("Spend", "spend", "money"), ("Unspent", "unspent", "money"),
                                     ("Loss vs level above", "loss_vs_above", "num")], "Levels"))
    if projects is not None:
        dropped = projects[projects["drops_out_at"].astype(str) != ""]
        sec.tables.append(table(dropped, [("Project", "name", "text"), ("Value at top", "value_at_top", "num"),
                                          ("Drops out at", "drops_out_at", "text"),
                                          ("Re-entries", "reentries", "int")],
                                "First projects to drop out", limit=15))
    if systems is not None:
        sec.tables.append(table(systems, [("System", "name", "text"), ("Fair share (%)", "fair_share_pct", "num"),
                                          ("Money at top", "allocation_at_top", "money"),
                                          ("Below floor from", "below_floor_at", "text"),
                                          ("Nothing funded from", "unfunded_at", "text")],
                                "Systems in the order they miss out (fair share in %)", limit=15))


def _value(b: _Builder, r: Result, label: str) -> None:
    money = r.table("money")
    if money is None:
        return
    m = money.assign(what=[f"{int(y)}/{(int(y) + 1) % 100:02d} {p}" for y, p in zip(money["year"], money["pot"])])
    sec = b.add(Section(f"{label}value", f"Value of £1m: {_scenario_name(r)}",
                        lead="Objective points gained by £1m more, and lost by £1m less, in each year and pot "
                             "(re-solved; the whisker is the proven interval)."))
    b.figure(sec, "value-of-money", F.band_figure(m, "what", "gain", "gain_low", "gain_high",
                                                  "objective points gained by +£1m"), "Value of +£1m",
             "Each bar: objective gained by one more £m in that year and pot.")
    sec.tables.append(table(m, [("Year and pot", "what", "text"), ("Envelope", "envelope", "money"),
                                ("Gain from +£1m", "gain", "num"), ("Loss from −£1m", "loss", "num"),
                                ("LP dual", "lp_dual", "num"), ("Changes with +£1m", "plus_changes", "text")],
                            "Value of money"))


def _rules(b: _Builder, r: Result, label: str) -> None:
    rules = r.table("rules")
    if rules is None:
        return
    sec = b.add(Section(f"{label}rules", f"Price of each rule: {_scenario_name(r)}",
                        lead="Objective points gained by relaxing each rule family in turn, with its proven interval."))
    labelled = rules.assign(label=[_clip(f"{_text(f).replace('_', ' ')}: {_text(x)}", 58)
                                   for f, x in zip(rules["family"], rules.get("relaxed", rules["family"]))])
    b.figure(sec, "rule-prices", F.band_figure(labelled, "label", "gain", "gain_low", "gain_high",
                                               "objective points gained by relaxing the rule"),
             "Price of each rule", "Each bar: what the rule costs the objective.")
    sec.tables.append(table(rules, [("Rule", "family", "text"), ("Relaxed to", "relaxed", "text"),
                                    ("Gain", "gain", "num"), ("Verdict", "verdict", "text"),
                                    ("Projects in", "projects_in", "int"), ("Projects out", "projects_out", "int")],
                            "Rules"))


def _robust(b: _Builder, r: Result, label: str) -> None:
    projects = r.table("projects")
    if projects is None:
        return
    sec = b.add(Section(f"{label}robust", f"Robustness: {_scenario_name(r)}",
                        lead="Core index: the share of plans, re-optimised under sampled costs, benefits and need "
                             "weights, that fund each project (with its 95% interval)."))
    b.figure(sec, "core-index", F.core_figure(projects), "Core index", "Dots: core index; bars: 95% interval.")
    sec.tables.append(table(projects.sort_values("core_index", ascending=False), [
        ("Project", "name", "text"), ("Id", "project_id", "text"), ("In the plan", "nominal_funded", "yesno"),
        ("Core index", "core_index", "pct"),
        ("Low", "ci_low", "pct"), ("High", "ci_high", "pct"), ("Class", "class", "text")], "Projects", limit=30))


def _alternatives(b: _Builder, r: Result, label: str) -> None:
    plans, diffs = r.table("plans"), r.table("differences")
    if plans is None:
        return
    sec = b.add(Section(f"{label}alternatives", f"Near-optimal alternatives: {_scenario_name(r)}",
                        lead="Plans within the stated loss of the optimum that differ most from it, ranked by "
                             "robustness; and what each changes."))
    sec.tables.append(table(plans, [("Rank", "rank", "int"), ("Plan", "plan", "text"),
                                    ("Objective", "objective", "num"),
                                    ("Loss", "loss_pct", "pct1"), ("Funded", "funded", "int"),
                                    ("Distance to optimum", "distance_to_optimum", "int"),
                                    ("Feasible under samples", "feasible_rate", "pct"),
                                    ("Mean core index", "mean_core_index", "pct")], "Alternatives side by side"))
    sec.tables.append(table(diffs, [("Plan", "plan", "text"), ("Change", "change", "text"),
                                    ("Project", "name", "text"), ("Start (optimum)", "start_optimum", "year"),
                                    ("Start (plan)", "start_plan", "year")],
                            "What each alternative changes", limit=40))


def _thresholds(b: _Builder, r: Result, label: str) -> None:
    t = r.table("thresholds")
    if t is None:
        return
    sec = b.add(Section(f"{label}thresholds", f"Thresholds: {_scenario_name(r)}",
                        lead="The change in a marginal project's cost or benefit that drops it from the plan or "
                             "brings it in."))
    sec.tables.append(table(t, [("Project", "name", "text"), ("Status", "status", "text"),
                                ("Measure", "measure", "text"),
                                ("Direction", "direction", "text"), ("Now", "current", "num3"),
                                ("At threshold", "at_threshold", "num3"), ("Unit", "unit", "text"),
                                ("Result", "result", "text")], "Thresholds", limit=40))


def _compare(b: _Builder, r: Result, label: str) -> None:
    metrics, systems = r.table("metrics"), r.table("systems")
    if metrics is None:
        return
    sec = b.add(Section(f"{label}compare", "Allocation policies compared",
                        lead="The same scenario(s) under each policy: need-weighted benefit against need-first's "
                             "optimum, money to the least mature trusts, inequality across systems "
                             "(docs/policies.md)."))
    if systems is not None and not systems.empty:
        for scen, block in systems.groupby("scenario", sort=False):
            curves = []
            for pol, p in block.groupby("policy", sort=False):
                y, w = p["allocation"].to_numpy(float), p["weighted_population"].to_numpy(float)
                if y.sum() > 0 and w.sum() > 0:
                    curves.append((str(pol), *lorenz_points(y, w)))
            b.figure(sec, "lorenz", F.lorenz_figure(curves), f"Lorenz curves: {scen}",
                     "National money per weighted head across systems; the Gini coefficient is twice the area "
                     "between a curve and the diagonal.")
    one = metrics["scenario"].nunique() == 1
    sec.tables.append(table(metrics, [
        *([] if one else [("Scenario", "scenario", "text")]), ("Policy", "policy", "text"),
        ("Status", "status", "text"),
        ("% of need-first", "pct_of_need_first", "num"), ("Benefit given up", "benefit_given_up", "num"),
        ("National money", "national_funding", "money"), ("Cat 0/1 share", "cat01_share", "pct"),
        ("Gini", "gini", "num3"), ("Systems < 50% fair share", "systems_below_50pct", "int"),
        ("Cat 0/1 trusts unfunded", "cat01_trusts_with_nothing", "int"), ("Unspent", "unspent_total", "money")],
        "Metrics"))


def lorenz_points(money: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Lorenz curve of money per head across groups of ``weights`` heads (systems, by weighted
    population), least funded per head first: cumulative shares of heads (x) and of money (y), from (0, 0).
    One minus twice the area under it is the weighted Gini coefficient of ``solver.analyses.metrics``."""
    order = np.argsort(money / weights, kind="stable")
    return (np.concatenate([[0.0], np.cumsum(weights[order]) / weights.sum()]),
            np.concatenate([[0.0], np.cumsum(money[order]) / money.sum()]))


def _diff(b: _Builder, r: Result, label: str) -> None:
    changes = r.table("changes")
    s = r.summary
    base = (s.get("base") or {}).get("scenario", "base")
    other = (s.get("scenario") or {}).get("name", "other")
    lead = _text(s.get("briefing"))
    by = {k: r.tables[k] for k in ("by_category", "by_kind", "by_system") if k in r.tables}
    if changes is None:
        return
    _changes_section(b, changes, r.table("by_system"), label, f"Difference: {base} → {other}", lead, by)


def _batch(b: _Builder, r: Result, label: str) -> None:
    runs = r.table("runs")
    if runs is None:
        return
    sec = b.add(Section(f"{label}batch", f"Batch: {r.name}",
                        lead=f"{len(runs)} runs in the results store; counts by status, and each policy's figures."))
    counts = runs.groupby("status").size().rename("runs").reset_index()
    sec.tables.append(table(counts, [("Status", "status", "text"), ("Runs", "runs", "int")], "Runs by status"))
    solved = runs[runs["has_plan"].astype(bool)] if "has_plan" in runs else runs
    if len(solved) and "policy" in solved:
        agg = {c: "mean" for c in ("objective", "national_funding", "cat01_share", "gini", "unspent_total",
                                   "solve_seconds") if c in solved}
        per = solved.groupby(solved["policy"].fillna("—")).agg({**agg, "id": "count"}).reset_index()
        sec.tables.append(table(per, [("Policy", "policy", "text"), ("Runs", "id", "int"),
                                      ("Mean objective", "objective", "num"),
                                      ("Mean national money", "national_funding", "money"),
                                      ("Mean cat 0/1 share", "cat01_share", "pct"), ("Mean Gini", "gini", "num3"),
                                      ("Mean unspent", "unspent_total", "money"),
                                      ("Mean solve seconds", "solve_seconds", "num")], "Per policy (solved runs)"))
        b.figure(sec, "batch-gini", F.histogram_figure(solved.get("gini", pd.Series(dtype=float)),
                                                       "Gini of national money per weighted head",
                                                       solved["policy"] if solved["policy"].nunique() > 1 else None),
                 "Inequality over the runs", "Distribution of the Gini coefficient, by policy.")
    failed = runs[~runs["has_plan"].astype(bool)] if "has_plan" in runs else runs.iloc[0:0]
    sec.tables.append(table(failed, [("Scenario", "scenario", "text"), ("Status", "status", "text"),
                                     ("Message", "message", "text")], "Runs without a plan", limit=20))


def _scenario_name(r: Result) -> str:
    sc = r.summary.get("scenario")
    return _text(sc.get("name") if isinstance(sc, dict) else sc) or r.name


SECTIONS: dict[str, Callable[[_Builder, Result, str], None]] = {
    "solve": _solve_sections, "ladder": _ladder, "value": _value, "rules": _rules, "robust": _robust,
    "alternatives": _alternatives, "thresholds": _thresholds, "compare": _compare, "diff": _diff, "batch": _batch,
}
ORDER = list(SECTIONS)


def _version() -> str:
    try:
        return version("envelope-solver")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree without installing
        return "unknown"


def build_report(results: Sequence[Result], title: str | None = None) -> Report:
    """The report page of ``results`` (solve results first, then the analyses in a fixed order)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    if not results:
        raise ValueError("a report needs at least one result")
    b = _Builder()
    ordered = sorted(results, key=lambda r: ORDER.index(r.kind))
    many = len({r.kind for r in ordered}) < len(ordered)
    for i, r in enumerate(ordered):
        try:
            SECTIONS[r.kind](b, r, f"r{i}-" if many else "")
        except (KeyError, ValueError, TypeError, IndexError, AttributeError, NotImplementedError) as exc:
            # a table edited by hand (pyarrow's errors on a text column are ValueError/TypeError/NotImplementedError)
            raise InputError(r.path, f"cannot be reported: its tables are not as envelope {r.kind} writes them "
                                     f"({type(exc).__name__}: {exc})") from exc
    for section in b.sections:     # a table of no rows is left out
        section.tables = [t for t in section.tables if t is not None]
    first = ordered[0]
    title = title or f"Envelope report: {_scenario_name(first)}"
    env = Environment(loader=PackageLoader("solver.present", "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    sources = [{"kind": r.kind, "name": r.name, "path": r.path} for r in ordered]
    html = env.get_template("report.html.j2").render(
        title=title, sections=b.sections, sources=sources, version=_version(), digest=_UNSIGNED)
    return Report(title, b.sections, _signed(html), b.plots)


_UNSIGNED = "0" * 64
_DIGEST = re.compile(r'<meta name="envelope-digest" content="([0-9a-f]{64})">')


def _signed(html: str) -> str:
    """The page with the SHA-256 of its own text (digest zeroed) in its ``envelope-digest`` meta tag."""
    digest = hashlib.sha256(html.encode("utf-8")).hexdigest()
    return html.replace(f'content="{_UNSIGNED}"', f'content="{digest}"', 1)


def is_envelope_report(path: str | Path) -> bool:
    """Whether the file at ``path`` is a report Envelope wrote and nobody has edited since (its digest still
    matches): only such a file may be replaced by a later report; any other file is the user's."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(64 * 2**20 + 1)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    found = _DIGEST.search(text[:4096])
    if len(data) > 64 * 2**20 or not found or GENERATOR not in text[:4096]:
        return False
    unsigned = text.replace(found.group(0), f'<meta name="envelope-digest" content="{_UNSIGNED}">', 1)
    return hashlib.sha256(unsigned.encode("utf-8")).hexdigest() == found.group(1)


def figure_files(report: Report) -> dict[str, bytes | str]:
    """Each figure of ``report`` as ``<name>.png`` and ``<name>.svg`` (standalone files, for slides)."""
    files: dict[str, bytes | str] = {}
    for name, fig in report.plots.items():
        files[f"{name}.png"] = F.png(fig)
        files[f"{name}.svg"] = F.svg_file(fig)
    return files
