"""Text summaries of the six analyses, rendered from an ``Analysis`` alone (its tables and
``summary.json``), so what is printed is what is written — the analyses compute, this module
presents (as ``solver.present.report`` does for a solve).

``render(analysis)`` dispatches to the function ``render_<analysis.name>`` of this module: one
function per analysis (``render_ladder``, ``render_value``, ``render_rules``, ``render_robust``,
``render_alternatives``, ``render_thresholds``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from solver.data.readers import safe_text as _s
from solver.pipeline.checks import fy

if TYPE_CHECKING:
    from solver.analyses.engine import Analysis, Band


def render(analysis: Analysis) -> str:
    """The ranked text summary of ``analysis`` (``render_<name>`` of this module)."""
    fn = globals().get(f"render_{analysis.name}")
    if fn is None:
        raise ValueError(f"no text renderer for analysis '{analysis.name}' (render_{analysis.name})")
    return str(fn(analysis))


def fmt_band(b: Band, digits: int = 2) -> str:
    """``+5.23 [5.01, 5.40]``; ``infeasible`` for ±∞, ``unknown`` for NaN."""
    if not math.isfinite(b.value):
        return "infeasible" if b.value == b.value else "unknown"

    def f(v: float, sign: str = "") -> str:
        return f"{round(v, digits) + 0.0:{sign},.{digits}f}"

    return f"{f(b.value, '+')} [{f(b.low)}, {f(b.high)}]"


def _band(value: float, low: float, high: float, verdict: str) -> Band:
    from solver.analyses.engine import Band

    return Band(value, low, high, verdict)


def _names(ids: list[str], limit: int = 6) -> str:
    more = f" (+{len(ids) - limit} more)" if len(ids) > limit else ""
    return ", ".join(_s(i) for i in ids[:limit]) + more


def _scenario(analysis: Analysis) -> dict[str, Any]:
    sc = analysis.summary.get("scenario", {})
    sc = sc if isinstance(sc, dict) else {"name": str(sc), "model": ""}
    return {k: _s(v) if isinstance(v, str) else v for k, v in sc.items()}  # names from the data, printable


def _nan(v: object) -> float:
    return math.nan if v is None else float(v)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# ladder


def render_ladder(analysis: Analysis) -> str:
    """Levels with the loss against the level above, who misses out first, systems in the order
    they miss out, non-nestings, and (``--nested``) the cost of one priority order."""
    sc = _scenario(analysis)
    par: dict[str, Any] = analysis.summary["parameters"]  # type: ignore[assignment]
    year, pot, nested = par.get("year"), par.get("pot"), bool(par.get("nested"))
    t = analysis.tables
    lv = t["levels"]
    scope = "the envelope" if year is None and pot is None else \
        f"{pot or 'both pots'}{'' if year is None else ' ' + fy(year)}"
    first, last = lv.iloc[0], lv.iloc[-1]
    lines = [f"Cut ladder — scenario {sc['name']} ({sc['model']}): {len(lv)} levels of {scope}, "
             f"{first['label']} → {last['label']} (£{first['envelope']:,.1f}m → £{last['envelope']:,.1f}m in all)", ""]
    lines.append(f"  {'level':>8} {'envelope £m':>12} {'objective':>11} {'gap':>8} {'funded':>7}  lost vs level above")
    for r in lv.itertuples():
        if r.status in ("infeasible", "no_solution", "error"):
            lines.append(f"  {_s(r.label):>8} {r.envelope:>12,.1f} {'no plan':>11} ({r.status})")
            continue
        lost = "" if not r.loss_verdict else fmt_band(_band(r.loss_vs_above, r.loss_low, r.loss_high,
                                                            r.loss_verdict), 1)
        lines.append(f"  {_s(r.label):>8} {r.envelope:>12,.1f} {r.objective:>11,.1f} {100 * r.gap:>7.3f}% "
                     f"{int(r.funded):>7}  {lost}")
    pj = t["projects"]
    drop = pj[pj["misses_out_rank"].notna()]
    lines += ["", f"Who misses out first — projects funded at {first['label']} and not at a lower level "
                  f"({len(drop)} of {int(pj['funded_at_top'].sum())}):"]
    shown = 0
    for k in list(lv["label"]):
        ids = list(drop.loc[drop["drops_out_at"] == k, "project_id"])
        if ids and shown < 5:
            lines.append(f"  at {_s(k)}: {len(ids)} drop out — {_names(ids)}")
            shown += 1
    if not len(drop):
        lines.append("  none: every project funded at the top stays funded down the ladder")
    sy = t["systems"]
    miss = sy[sy["misses_out_rank"].notna()] if len(sy) else sy
    floor = float(par.get("fair_share_floor") or 0.0)
    lines += ["", f"Systems, in the order they miss out (below {floor:.0%} of fair share, or no funding):"]
    for r in miss.head(8).itertuples():
        what = []
        if isinstance(r.below_floor_at, str):
            what.append(f"below floor at {r.below_floor_at}")
        if isinstance(r.unfunded_at, str):
            what.append(f"no funding at {r.unfunded_at}")
        lines.append(f"  {int(r.misses_out_rank):>2}. {_s(r.system_id)} {_s(r.name)}: {_s('; '.join(what))} "
                     f"(ratio {r.ratio_at_first_miss:.2f} there)")
    if len(miss) > 8:
        lines.append(f"  ... {len(miss) - 8} more (systems.csv)")
    if not len(miss):
        lines.append("  none")
    fl = t["flips"]
    lines.append("")
    if len(fl):
        back = fl[fl["kind"] == "leaves and re-enters"]
        enter = fl[fl["kind"] == "enters as money falls"]
        lines.append(f"Not nested: {back['project_id'].nunique()} project(s) leave and re-enter, "
                     f"{enter['project_id'].nunique()} enter only as money falls (flips.csv):")
        for r in fl.head(6).itertuples():
            above = f"funded at {r.funded_above}, " if isinstance(r.funded_above, str) else ""
            span = r.out_from if r.out_from == r.out_to else f"{r.out_from}..{r.out_to}"
            lines.append(_s(f"  {r.project_id} ({r.system_id}): {above}out at {span}, back at {r.enters_at}"))
        if len(fl) > 6:
            lines.append(f"  ... {len(fl) - 6} more")
    else:
        lines.append("Plans are nested: no project leaves and re-enters as money falls.")
    if nested:
        lines += ["", "Nested ladder (one priority order): cost in objective against the optimal plan "
                      "[band]; '=' plan already nested:"]
        for r in lv.itertuples():
            if r.nested_status in ("infeasible", "no_solution", "error"):
                lines.append(f"  {_s(r.label):>8}: no nested plan ({r.nested_status})")
                continue
            mark = "=" if r.nested_is_optimal_plan else " "
            band = fmt_band(_band(r.nesting_cost, r.nesting_cost_low, r.nesting_cost_high, r.nesting_verdict), 1)
            lines.append(f"  {_s(r.label):>8}{mark} {band} ({r.nesting_verdict})")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# value of money


def render_value(analysis: Analysis) -> str:
    """Pots ranked by what £δm more is worth and by what £δm less costs, with bands."""
    sc = _scenario(analysis)
    par: dict[str, Any] = analysis.summary["parameters"]  # type: ignore[assignment]
    base: dict[str, Any] = analysis.summary["base"]  # type: ignore[assignment]
    delta, lp = float(par["delta"]), bool(par.get("lp"))
    money: pd.DataFrame = analysis.tables["money"]
    lines = [f"Value of money — scenario {sc['name']} ({sc['model']}): £{delta:g}m more or less in each year "
             f"and pot, re-solved",
             f"Base objective {_nan(base['objective']):,.2f} (bound {_nan(base['bound']):,.2f}, "
             f"gap {100 * _nan(base['gap']):.4f}%)",
             "",
             f"Where the next £{delta:g}m does most good (objective gained [band]; '=' means not separable):"]
    by_gain = money.sort_values(["gain_rank", "gain"], ascending=[True, False], kind="stable")
    for r in by_gain.itertuples():
        tie = "=" if r.gain_tied_with else " "
        lp_txt = f"   LP dual {r.lp_dual:,.2f} (indicative)" if lp else ""
        band = fmt_band(_band(r.gain, r.gain_low, r.gain_high, r.gain_verdict))
        lines.append(f"  {tie}{r.gain_rank:>2}. {r.pot:7} {fy(r.year)}: {band}  ({r.gain_verdict}){lp_txt}")
    lines += ["", f"Where £{delta:g}m less hurts least (objective lost [band]):"]
    by_loss = money.sort_values(["loss_rank", "loss"], ascending=[True, True], kind="stable")
    for r in by_loss.itertuples():
        tie = "=" if r.loss_tied_with else " "
        band = fmt_band(_band(r.loss, r.loss_low, r.loss_high, r.loss_verdict))
        short = f"  [pot only £{-r.minus:g}m: cut to 0]" if r.minus > -delta + 1e-9 else ""
        lines.append(f"  {tie}{r.loss_rank:>2}. {r.pot:7} {fy(r.year)}: {band}  ({r.loss_verdict}){short}")
    undet = int((money["gain_verdict"] == "undetermined").sum() + (money["loss_verdict"] == "undetermined").sum())
    if undet:
        lines += ["", f"{undet} figure(s) remain undetermined (the band contains 0 even after re-solving): "
                      "raise --time-limit (the re-solves' limit) to settle them."]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# price of each rule


def render_rules(analysis: Analysis) -> str:
    """Rule families ranked by what relaxing each alone would gain, with bands and plan changes."""
    sc = _scenario(analysis)
    base: dict[str, Any] = analysis.summary["base"]  # type: ignore[assignment]
    inactive: dict[str, str] = analysis.summary.get("inactive") or {}  # type: ignore[assignment]
    rules: pd.DataFrame = analysis.tables["rules"]
    gap = _nan(base["gap"])
    lines = [f"Price of each rule — scenario {sc['name']} ({sc['model']}): base objective "
             f"{_nan(base['objective']):,.2f} (gap {100 * gap:.4f}%)", "",
             "What each rule costs — objective gained if it alone were relaxed [band]; '=' not separable:"]
    for r in rules.itertuples():
        tie = "=" if r.tied_with else " "
        if r.status in ("infeasible", "no_solution", "error"):
            lines.append(f"  {tie}{r.rank:>2}. {r.family} — {r.relaxed}: no plan ({r.status})")
            continue
        band = fmt_band(_band(r.gain, r.gain_low, r.gain_high, r.verdict))
        moves = f"{r.projects_in} in, {r.projects_out} out, {r.projects_moved} moved"
        lines.append(f"  {tie}{r.rank:>2}. {r.family} — {r.relaxed}: {band} ({r.verdict}); {moves}")
    free = rules[rules["verdict"] == "zero"]
    if len(free):
        lines += ["", "Free (proven to cost nothing here): "
                  + ", ".join(f"{f} — {r}" for f, r in zip(free["family"], free["relaxed"]))]
    if inactive:
        lines += ["", "Not active in this scenario: " + "; ".join(f"{k} ({v})" for k, v in inactive.items())]
    undet = rules[rules["verdict"] == "undetermined"]
    if len(undet):
        lines += ["", f"{len(undet)} price(s) remain undetermined (band reaches 0): raise --time-limit "
                      "(the re-solves' limit)."]
    if math.isfinite(gap) and gap > 0:
        lines.append(f"Bands come from each solve's proven bound; base gap {100 * gap:.4f}%.")
    return "\n".join(lines)


# ============================================================================================
# robustness, alternatives, thresholds (sampling and per-project searches)
# ============================================================================================


def _rs_name(analysis: Analysis) -> str:
    sc = analysis.summary.get("scenario", {})
    return _s(sc.get("name", "")) if isinstance(sc, dict) else _s(sc)


def _rs_pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.1f}%"


def _rs_count(count: int, noun: str) -> str:
    """'1 sample', '2 samples'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def describe_sampling(par: dict[str, Any]) -> str:
    """One line describing the sampled uncertainty (the ``parameters`` of a sampling analysis)."""
    sig = list(par["cost_sigma"].values())
    cost = f"costs x lognormal overrun, sigma {min(sig):g}-{max(sig):g} by kind" if sig and max(sig) > 0 \
        else "costs fixed"
    lo, hi = par["benefit_range"]
    benefit = f"benefits x U({lo:g}, {hi:g})" if hi > lo else ("benefits fixed" if lo == 1 else f"benefits x {lo:g}")
    wide = [c for c, (a, b) in par["weight_ranges"].items() if b > a]
    weights = f"category weights in intervals ({', '.join(wide)})" if wide else "category weights fixed"
    return f"{cost}; {benefit}; {weights}"


def render_robust(analysis: Analysis) -> str:
    """Nominal plan under the samples (fits, where it breaks, money it needs, regret), then the
    core index: least robust funded projects and strongest unfunded ones."""
    import re
    from collections import Counter

    summary: dict[str, Any] = analysis.summary
    res, par, base = summary["results"], summary["parameters"], summary["base"]
    projects, table = analysis.tables["projects"], analysis.tables["samples"]
    n = par["samples"]
    objective = _nan(base["objective"])
    bound = objective if base["bound"] is None else float(base["bound"])
    lines = [
        f"Robustness of {_rs_name(analysis)}: {n} samples, seed {par['seed']} ({describe_sampling(par)})",
        f"Nominal plan: {base['funded']} projects, objective {objective:,.2f} "
        f"(bound {bound:,.2f}, gap {_rs_pct(base['gap'] or 0)})",
    ]
    lo, hi = res["nominal_feasibility_ci95"]
    lines.append(f"Still fits every rule in {res['nominal_feasible']}/{n} samples: "
                 f"{_rs_pct(res['nominal_feasibility_rate'])} (95% CI {_rs_pct(lo)}-{_rs_pct(hi)})")
    broken = table.loc[~table["nominal_feasible"].astype(bool), "nominal_violation"]
    if len(broken):
        first = Counter(re.sub(r"^(\d{4})\b", lambda y: fy(int(y.group(1))), str(v).split(":")[0])
                        for v in broken).most_common(3)
        lines.append("  breaks first at: " + ", ".join(f"{k} ({_rs_count(c, 'sample')})" for k, c in first))
    for pot, what in (("national", "the national pots"), ("local", "systems' local limits")):
        q = res["overspend"][pot]
        if q and q["max"] > 0:
            lines.append(f"  money it needs beyond {what} (sum over years): median £{q['median']:,.1f}m, "
                         f"80th percentile £{q['p80']:,.1f}m, 90th £{q['p90']:,.1f}m, max £{q['max']:,.1f}m")
    reg = res["regret"]
    if reg["samples"]:
        lines.append(f"Regret where it fits ({_rs_count(reg['samples'], 'sample')}): mean {reg['mean']:,.2f} points "
                     f"(gap band {reg['mean_low']:,.2f}-{reg['mean_high']:,.2f}), max {reg['max']:,.2f}; "
                     f"certainly > 0 in {_rs_count(reg['certain'], 'sample')}")
    lines.append(f"Samples with a plan: {res['samples_with_plan']}/{n}; sample gaps up to "
                 f"{_rs_pct(summary['sample_solves']['max_gap'] or 0)}")
    lines.append(f"Core index (share of sample optima funding a project): {res['core']} core, "
                 f"{res['borderline']} borderline, {res['exterior']} exterior")
    funded = projects["nominal_funded"].astype(bool)
    weak = projects[funded & (projects["class"] != "core")].sort_values(
        ["core_index", "project_id"], kind="mergesort").head(10)
    if len(weak):
        lines.append("Least robust funded projects (the nominal plan funds them, samples often do not):")
        lines += [f"  {_s(r.project_id):<28} {r.core_index:5.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]  {_s(r.name)}"
                  for r in weak.itertuples()]
    strong = projects[~funded & (projects["class"] != "exterior")].head(10)
    if len(strong):
        lines.append("Strongest unfunded projects (left out of the nominal plan, funded in some samples):")
        lines += [f"  {_s(r.project_id):<28} {r.core_index:5.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]  {_s(r.name)}"
                  for r in strong.itertuples()]
    return "\n".join(lines)


def render_alternatives(analysis: Analysis) -> str:
    """Plans in rank order: objective and loss, distances, robustness score, and what each
    alternative drops, funds instead and moves."""
    summary: dict[str, Any] = analysis.summary
    par, opt = summary["parameters"], summary["optimum"]
    plans, differences = analysis.tables["plans"], analysis.tables["differences"]
    scored = par["robustness"] is not None and "feasible_rate" in plans.columns
    objective = _nan(opt["objective"])
    bound = objective if opt["bound"] is None else float(opt["bound"])
    lines = [f"Alternatives for {_rs_name(analysis)}: {summary['results']['alternatives']} plan(s) within "
             f"{par['within']:.2%} of the optimum (objective {objective:,.2f}, bound {bound:,.2f}), "
             "as different as possible"]
    if scored:
        rob = par["robustness"]
        lines.append(f"Ranked by robustness over {rob['samples']} samples (seed {rob['seed']}): share of samples "
                     "the plan still fits, then mean core index of its projects, then objective")
    for note in summary["notes"]:
        lines.append(f"  note: {_s(note)}")
    for r in plans.itertuples():
        lines.append(f"{r.rank}. {r.plan:<8} objective {r.objective:,.2f}  loss {r.loss_pct * 100:.2f}% "
                     f"(≤ {r.loss_pct_high * 100:.2f}% of the true optimum)  {r.funded} projects, "
                     f"{r.distance_to_optimum} differ from the optimum, ≥ {r.min_distance_to_others} from any "
                     "other plan")
        if scored:
            regret = (f"mean regret {r.mean_regret:,.2f} (gap band {r.mean_regret_low:,.2f}-{r.mean_regret_high:,.2f})"
                      if math.isfinite(r.mean_regret) else "regret n/a (never fits)")
            lines.append(f"     fits in {_rs_pct(r.feasible_rate)} of samples (95% CI {_rs_pct(r.feasible_ci_low)}-"
                         f"{_rs_pct(r.feasible_ci_high)}), mean core index {r.mean_core_index:.2f}, {regret}; "
                         f"median overspend £{r.median_overspend_national:,.1f}m national, "
                         f"£{r.median_overspend_local:,.1f}m local")
        if r.plan == "optimum":
            continue
        d = differences[differences["plan"] == r.plan]
        for change, verb, col in (("dropped", "drops", "value_optimum"), ("added", "funds instead", "value_plan"),
                                  ("moved", "moves", "value_plan")):
            sel = d[d["change"] == change]
            if not len(sel):
                continue
            kinds = sel["kind"].replace("", "other").value_counts()
            by_kind = ", ".join(f"{n} {_s(kind)}" for kind, n in kinds.head(4).items())
            worth = (f", worth {sel[col].sum():,.1f} points" if change != "moved" else
                     f", {sel['value_plan'].sum() - sel['value_optimum'].sum():+,.1f} points")
            shown = ", ".join(_s(p) for p in sel["project_id"].head(6))
            more = f" +{len(sel) - 6} more" if len(sel) > 6 else ""
            lines.append(f"     {verb} {len(sel)} ({by_kind}{worth}): {shown}{more}")
    return "\n".join(lines)


def _rs_factor(f: float | None) -> str:
    return "—" if f is None or (isinstance(f, float) and math.isnan(f)) else f"×{f:.4g}"


def _rs_threshold(r: Any) -> str:
    """One threshold search (a row of ``thresholds.csv``) as a sentence."""
    money = r.unit == "£m"

    def amount(v: float) -> str:
        return f"£{v:,.3f}m" if money else f"{v:,.3g} {r.unit}"

    note = r.note if isinstance(r.note, str) else ""
    funded = r.status == "funded"
    what = "drops it" if funded else "brings it in"
    still = "still funded" if funded else "still out"
    if r.result == "none within bracket":
        far = r.bracket_low if r.direction == "decrease" else r.bracket_high
        text = f"{r.measure}: no {r.direction} to ×{far:g} {what}"
        return _s(text + (f" ({note})" if note else ""))
    if r.result == "undecided":
        return (f"{r.measure}: {still} at {_rs_factor(r.factor_same)}; beyond it the gaps cannot decide "
                f"(undecided {_rs_factor(r.undecided_low)}–{_rs_factor(r.undecided_high)})")
    if r.factor == 0:
        text = f"{r.measure}: only a {r.measure} of 0 {what} ({still} at {_rs_factor(r.factor_same)})"
    else:
        text = (f"{r.measure} {_rs_factor(r.factor)} {what} ({amount(r.current)} → {amount(r.at_threshold)}, "
                f"{100 * (r.factor - 1):+.1f}%; {still} at {_rs_factor(r.factor_same)})")
    if r.result == "threshold range":
        text += (f"; undecided within the gaps from {_rs_factor(r.undecided_low)} to "
                 f"{_rs_factor(r.undecided_high)}")
    return _s(text + f" [{r.resolves} re-solves]")


def render_thresholds(analysis: Analysis) -> str:
    """Per examined project, closest to the margin first: the benefit and cost changes that drop it
    or bring it in, with the probes that prove them."""
    summary: dict[str, Any] = analysis.summary
    sc, par, base = summary["scenario"], summary["parameters"], summary["base"]
    table, probes = analysis.tables["thresholds"], analysis.tables["probes"]
    n_screen = int((probes["side"] == "screen").sum()) if not probes.empty else 0
    lines = [
        f"Borderline thresholds — scenario {_s(sc['name'])} (instance {_s(sc['instance'])}, model {_s(sc['model'])})",
        f"Baseline: objective {_nan(base['objective']):,.1f} ({base['status']}, gap {100 * _nan(base['gap']):.3f}%), "
        f"{base['funded']} of {base['projects']} projects funded",
        f"k = {par['k']}, factor tolerance {100 * par['tolerance']:g}%; {len(probes) - n_screen} re-solves"
        + (f" + {n_screen} screening solves" if n_screen else ""),
    ]
    for group, title in (("funded", "Funded, closest to dropping out (lowest value per £m first)"),
                         ("unfunded", "Unfunded, closest to coming in (highest value per £m first)")):
        part = table[table["group"] == group]
        if part.empty:
            continue
        lines += ["", title + ":"]
        for pid, rows in part.groupby("project_id", sort=False):
            r0 = rows.iloc[0]
            start = f", starts {fy(int(r0['baseline_start']))}" if not pd.isna(r0["baseline_start"]) else ""
            density = "∞" if math.isinf(r0["value_density"]) else f"{r0['value_density']:,.2f}"
            lines.append(f"{int(r0['rank']):>3}. {_s(pid)} {_s(r0['name'])} ({_s(r0['system_id'])}{start}): value "
                         f"{r0['value']:,.1f} for £{r0['national_draw']:,.1f}m national ({density}/£m); "
                         f"{int(r0['project_resolves'])} re-solves")
            if r0["status"] in ("funded", "unfunded") and r0["status"] != group:
                lines.append(f"       proved {r0['status']} at ×1 (the baseline plan was within its gap)")
            if r0["status"] in ("required", "undecided"):
                note = r0["note"] if isinstance(r0["note"], str) else ""
                lines.append(f"       {r0['result']}" + (f": {_s(note)}" if note else ""))
                continue
            for r in rows.itertuples():
                lines.append("       " + _rs_threshold(r))
    lines += ["", "Each status is the sign of (best plan with the project − best plan without it), decided only "
                  "outside the band the two MIP gaps allow (re-solved at gap 0 when inside; ties count as not "
                  "funded). The factor is the first probed one at which the change is proved; 'still' gives the "
                  "last at which it is proved not to happen."]
    return "\n".join(lines)


def render_compare(analysis: Analysis) -> str:
    """The metrics table of a policy comparison, one block per scenario: each policy's status, what it
    is worth against the reference (need-first), its price, and the fairness and coverage figures."""
    t = analysis.tables["metrics"]
    s = analysis.summary
    ref = str(s.get("parameters", {}).get("reference", "need-first")) if isinstance(s.get("parameters"), dict) \
        else "need-first"
    cols = [("policy", "policy", "{}"), ("status", "status", "{}"),
            ("pct_of_need_first", f"% {ref}", "{:.1f}"), ("benefit_given_up", "benefit lost", "{:,.1f}"),
            ("cat01_share", "cat 0/1 £", "{:.0%}"), ("cat01_money_change", "cat 0/1 Δ£m", "{:+,.1f}"),
            ("gini", "Gini", "{:.3f}"), ("theil", "Theil", "{:.3f}"),
            ("systems_below_50pct", "<50% FS", "{:.0f}"), ("systems_below_90pct", "<90% FS", "{:.0f}"),
            ("cat01_trusts_with_nothing", "cat0/1 none", "{:.0f}"), ("platforms_introduced", "new plat", "{:.0f}"),
            ("unspent_total", "unspent £m", "{:,.1f}"), ("solve_seconds", "secs", "{:.1f}"), ("gap", "gap", "{:.2%}")]
    if "votes_for_funded" in t.columns:
        cols += [("votes_for_funded", "votes", "{:,.0f}"), ("voters_satisfied", "voters sat.", "{:.1%}"),
                 ("cost_utilised", "budget used", "{:.1%}")]
    cols = [c for c in cols if c[0] in t.columns]
    out: list[str] = []
    for scenario, block in t.groupby("scenario", sort=False):
        out.append(f"Scenario {_s(scenario)}: {len(block)} policies (price against {_s(ref)})")
        cells = [[h for _, h, _ in cols]]
        for _, r in block.iterrows():
            row = []
            for key, _, f in cols:
                v = r.get(key)
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    row.append("-")
                else:
                    row.append(_s(f.format(v)) if not isinstance(v, str) else _s(v))
            cells.append(row)
        widths = [max(len(c[i]) for c in cells) for i in range(len(cols))]
        for k, row in enumerate(cells):
            out.append("  " + "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                        for i, (c, w) in enumerate(zip(row, widths))))
            if k == 0:
                out.append("  " + "  ".join("-" * w for w in widths))
        for _, r in block.iterrows():
            if r.get("status") not in ("optimal", "feasible", "heuristic"):
                out.append(f"  {_s(r['policy'])}: no plan — {_s(r.get('message', ''))}")
        prices = analysis.tables.get("prices")
        if prices is not None and len(prices):
            mine = prices[prices["scenario"] == scenario]
            out.append("  Price of each policy (policy minus comparator): benefit points, category 0/1 £m, "
                       "systems below 50% / 90% of fair share")
            for policy, rows in mine.groupby("policy", sort=False):
                parts = [f"vs {_s(r.against)} {r.benefit_change:+,.0f} pts, {r.cat01_money_change:+,.1f} £m, "
                         f"{r.systems_below_50pct_change:+.0f} / {r.systems_below_90pct_change:+.0f}"
                         for r in rows.itertuples() if r.benefit_change == r.benefit_change]
                if parts:
                    out.append(f"    {_s(policy):13} " + "; ".join(parts))
        out.append("")
    out.append(f"% {ref}: the plan's need-weighted benefit ({ref} weights) against {ref}'s optimum; "
               "benefit lost: the same in points; cat 0/1: national money to category 0/1 trusts (share, and change "
               f"against {ref}); FS: fair share of the envelope; status heuristic: a rule's plan, no bound "
               "claimed. Definitions: docs/policies.md.")
    return "\n".join(out)


def render_diff(analysis: Analysis) -> str:
    """One screen (80 columns) for a planner: the cut and any rule change, national funding before and after,
    the largest changes by category, kind, ICB and region, commitments withdrawn, unspent money and the
    revenue tail, then the briefing, wrapped."""
    import textwrap

    from solver.analyses.diff import gbp

    s, t = analysis.summary, analysis.tables
    base = s.get("base", {})
    head = s.get("scenario", {})
    plans = s.get("plans", {})

    def state(side: str) -> str:
        p = plans.get(side, {})
        if not p or p.get("status") == "optimal":
            return ""
        return f", {p.get('status')}" + (f" gap {p['gap']:.2%}" if isinstance(p.get("gap"), float) else "")

    out = [f"{_s(base.get('scenario', '?'))} ({_s(base.get('model', '?'))}{state('base')}) → "
           f"{_s(head.get('name', '?'))} ({_s(head.get('model', '?'))}{state('other')})"]
    env = [e for e in (s.get("envelope_change") or []) if e.get("before") is not None]
    out.append("Envelope: " + ("; ".join(f"{fy(int(e['year']))} {e['pot']} {gbp(e['before'], False)} → "
                                         f"{gbp(e['after'], False)} ({gbp(e['change'])})" for e in env)
                               if env else "unchanged"))
    pc = s.get("policy_change") or {}
    if pc.get("settings") or len(set(pc.get("models", []))) > 1:
        changed = list(pc["settings"].items())[:3]
        out.append(f"Rules: model {_s(pc['models'][0])} → {_s(pc['models'][1])}; "
                   + ("; ".join(f"{_s(k)} {_s(str(v[0]))} → {_s(str(v[1]))}" for k, v in changed) or "same settings"))
    nf, pr = s["national_funding"], s["projects"]
    out.append(f"National funding: {gbp(nf['before'], False)} → {gbp(nf['after'], False)} "
               f"({gbp(nf['after'] - nf['before'])}); lost by {pr['lost']} projects ({gbp(pr['money_lost'], False)}),"
               f" gained by {pr['gained']} ({gbp(pr['money_gained'], False)}); {pr['moved']} moved start year")

    def block(title: str, table: str, key: str, n: int, label: Any = None) -> None:
        frame = t[table]
        frame = frame[frame["change"].abs() > 5e-4]
        rows = frame.reindex(frame["change"].abs().sort_values(ascending=False).index).head(n)
        if rows.empty:
            return
        title = f"{title}{'' if len(rows) == len(frame) else f' (largest {len(rows)})'}"
        out.append(f"\n{title:30} {'before':>9} {'after':>9} {'change':>9} {'':>5} {'lost':>4} {'gain':>4}")
        for r in rows.itertuples():
            name = _s(str(label(r) if label else getattr(r, key)))
            if len(name) > 28:
                name = name[:27].rsplit(" ", 1)[0] + "…"
            pct = f"{r.change_pct:+4.0f}%" if r.change_pct == r.change_pct else "     "
            out.append(f"  {name:28} {r.before:9,.1f} {r.after:9,.1f} {r.change:+9,.1f} {pct:>5} "
                       f"{r.projects_lost:4d} {r.projects_gained:4d}")

    block("By category", "by_category", "category", 5,
          lambda r: f"category {r.category}" if r.category != "system-wide" else "system-wide")
    block("By kind", "by_kind", "kind", 6)
    block("By ICB", "by_system", "system_id", 6, lambda r: (r.name or r.system_id).removeprefix("NHS "))
    block("By region", "by_region", "region", 7)
    w = s["withdrawn"]
    un, tail = s["unspent"], s["revenue_tail"]
    out.append(f"\nCommitments withdrawn: {w['count']}" + (f" (cost {gbp(w['cost'], False)})" if w["count"] else "")
               + f". Unspent: {gbp(un['before'], False)} → {gbp(un['after'], False)}. Revenue tail: "
               f"{gbp(tail['before'], False)} → {gbp(tail['after'], False)}.")
    out.append("")
    out += textwrap.wrap("Briefing: " + _s(s["briefing"]), 100)
    return "\n".join(out)
