"""The report's figures, drawn with matplotlib from result tables (never from solver objects).

Each ``*_figure`` function takes plain tables and returns a matplotlib ``Figure`` (or None when there is
nothing to draw); ``svg`` turns one into an SVG fragment fit to inline in an HTML page (text drawn as
paths, so it looks the same everywhere; no comments, no metadata, ids made unique per figure) and
``png`` into PNG bytes. Money is in £m on every axis that says so.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no screen; must come before pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from solver.pipeline.checks import fy  # noqa: E402

BLUE, DARK, LIGHT, AMBER, RED, GREEN, GREY = "#005EB8", "#003087", "#8FB8E6", "#ED8B00", "#DA291C", "#009639", "#768692"
CATEGORY_COLOURS = {0: "#7C2855", 1: "#DA291C", 2: "#ED8B00", 3: "#41B6E6"}
WIDTH = 7.2  # inches: an A4 page's text width, readable on a laptop
MANY = 30    # figures with one row per system show at most twice this many: the extremes

STYLE = {
    "font.family": "DejaVu Sans", "font.size": 8.5, "axes.titlesize": 9.5, "axes.titleweight": "bold",
    "axes.labelsize": 8.5, "axes.spines.top": False, "axes.spines.right": False, "axes.edgecolor": "#999999",
    "axes.grid": True, "grid.color": "#e5e5e5", "grid.linewidth": 0.6, "axes.axisbelow": True,
    "legend.frameon": False, "legend.fontsize": 8, "svg.fonttype": "path", "svg.hashsalt": "envelope",
    "xtick.labelsize": 8, "ytick.labelsize": 8,
}


def styled(draw: Callable[..., Figure | None]) -> Callable[..., Figure | None]:
    """Draw under the report's style (matplotlib's global settings are left as they were)."""
    @functools.wraps(draw)
    def wrapper(*args: Any, **kwargs: Any) -> Figure | None:
        with plt.rc_context(STYLE):
            return draw(*args, **kwargs)
    return wrapper


def short_name(name: str) -> str:
    """A system's name without the words every one of them has ('NHS … ICB')."""
    text = str(name)
    text = re.sub(r"^NHS\s+", "", text)
    text = re.sub(r"\s+(Integrated Care Board|ICB)$", "", text)
    return text if len(text) <= 54 else text[:52] + "…"


def _new(height: float, width: float = WIDTH) -> tuple[Figure, plt.Axes]:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def _money_axis(ax: plt.Axes, axis: str = "x", label: str = "£m") -> None:
    def money(v: float, _: object) -> str:
        text = f"£{abs(v):,.0f}m" if abs(v) >= 10 or v == 0 else f"£{abs(v):,.1f}m"
        return ("−" + text) if v < 0 else text

    fmt = matplotlib.ticker.FuncFormatter(money)
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(fmt)
    (ax.set_xlabel if axis == "x" else ax.set_ylabel)(label)


def svg(fig: Figure, prefix: str) -> str:
    """``fig`` as an inline SVG fragment: no XML prolog or comments, sized by the page (a viewBox), and every
    id prefixed with ``prefix`` so that several figures can share one page."""
    buf = io.StringIO()
    with plt.rc_context(STYLE):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', text)
    text = re.sub(r'url\(#([^)]+)\)', lambda m: f"url(#{prefix}-{m.group(1)})", text)
    text = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}-{m.group(1)}"', text)
    text = re.sub(r'<svg([^>]*?) width="([0-9.]+)pt" height="[^"]*"',
                  lambda m: f'<svg{m.group(1)} class="figure" role="img" '
                            f'style="max-width: {float(m.group(2)) * 1.45:.0f}pt"',
                  text, count=1)
    return re.sub(r"\n\s*\n", "\n", text)


def svg_file(fig: Figure) -> str:
    """``fig`` as a standalone SVG file (for slides), without the date that would change every run."""
    buf = io.StringIO()
    with plt.rc_context(STYLE):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def png(fig: Figure, dpi: int = 150) -> bytes:
    """``fig`` as PNG bytes."""
    buf = io.BytesIO()
    with plt.rc_context(STYLE):
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


@styled
def allocation_figure(systems: pd.DataFrame, floor: float | None = None) -> Figure | None:
    """National money per system (bars) against its fair share (black tick), sorted from the system
    furthest below its fair share; red below the floor, amber below the fair share."""
    if systems is None or systems.empty or "allocation" not in systems:
        return None
    if not (systems["allocation"].abs().sum() + systems["fair_share"].abs().sum()) > 0:
        return None     # nothing to compare (an empty envelope)
    t = systems.copy()
    t["ratio"] = t["allocation"] / t["fair_share"].where(t["fair_share"] > 0)
    t = t.sort_values(["ratio", "allocation"], ascending=[False, False], na_position="first").reset_index(drop=True)
    if len(t) > 2 * MANY:        # the systems furthest below and furthest above their fair share
        t = pd.concat([t.head(MANY), t.tail(MANY)]).reset_index(drop=True)
    below = floor if floor is not None else 0.5
    colours = [RED if r < below else AMBER if r < 1 else BLUE for r in t["ratio"].fillna(0)]
    fig, ax = _new(0.9 + 0.19 * len(t))
    y = np.arange(len(t))
    ax.barh(y, t["allocation"], color=colours, height=0.72, label="national money funded")
    ax.scatter(t["fair_share"], y, marker="|", s=110, color="black", linewidths=1.6, zorder=3, label="fair share")
    ax.set_yticks(y, [short_name(n) for n in t["name"]], fontsize=7.5 if len(t) > 20 else 8.5)
    ax.set_ylim(-0.7, len(t) - 0.3)
    ax.grid(axis="y", visible=False)
    _money_axis(ax, "x", "national money over the plan years (£m)")
    for i, r in enumerate(t["ratio"]):
        text = "—" if pd.isna(r) else f"{r:.0%}" + (" of fair share" if i == 0 else "")
        ax.annotate(text, (1.0, i), xycoords=("axes fraction", "data"),
                    xytext=(4, 0), textcoords="offset points", va="center", fontsize=7, color="#444444",
                    annotation_clip=False)
    handles = [matplotlib.patches.Patch(color=BLUE, label="at or above fair share"),
               matplotlib.patches.Patch(color=AMBER, label="below fair share"),
               matplotlib.patches.Patch(color=RED, label=f"below {below:.0%} of fair share"),
               matplotlib.lines.Line2D([], [], color="black", marker="|", linestyle="", markersize=9,
                                       markeredgewidth=1.6, label="fair share")]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=4, fontsize=7.5)
    return fig


@styled
def spend_figure(spend: pd.DataFrame) -> Figure | None:
    """Per year: capital and revenue bars — national money spent from the pot, the local match on top (and the
    systems' part of the access fee on revenue) — and each pot's envelope as a black line."""
    if spend is None or spend.empty or not spend.drop(columns="year").to_numpy(float).any():
        return None
    fig, ax = _new(3.0)
    years = list(spend["year"])
    x = np.arange(len(years))
    w = 0.36
    for off, pot, colour in ((-w / 2 - 0.01, "capital", BLUE), (w / 2 + 0.01, "revenue", GREEN)):
        nat, loc = spend[f"national_{pot}"].to_numpy(float), spend[f"local_{pot}"].to_numpy(float)
        ax.bar(x + off, nat, w, color=colour, label=f"{pot}: national")
        ax.bar(x + off, loc, w, bottom=nat, color=colour, alpha=0.4, label=f"{pot}: local match")
        if pot == "revenue" and "fee_system" in spend and spend["fee_system"].any():
            ax.bar(x + off, spend["fee_system"].to_numpy(float), w, bottom=nat + loc, color=GREY, alpha=0.7,
                   label="access fee (systems)")
        ax.hlines(spend[f"envelope_{pot}"].to_numpy(float), x + off - w / 2, x + off + w / 2, colors="black",
                  linewidth=1.8, label="envelope (national)" if pot == "capital" else None)
    ax.set_xticks(x, [fy(int(y)) for y in years])
    ax.grid(axis="x", visible=False)
    _money_axis(ax, "y", "£m")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7.5)
    return fig


@styled
def category_figure(shares: pd.DataFrame) -> Figure | None:
    """National money by digital-maturity category (0 = least mature), now and, when known, before the change."""
    if shares is None or shares.empty:
        return None
    cols = [c for c in ("before", "after") if c in shares]
    fig, ax = _new(0.8 + 0.45 * len(cols), WIDTH)
    left = np.zeros(len(cols))
    labels = {"before": "baseline", "after": "this plan"}
    for _, r in shares.iterrows():
        vals = np.array([float(r[c]) for c in cols])
        total = np.array([float(shares[c].sum()) for c in cols])
        pct = np.divide(vals, total, out=np.zeros_like(vals), where=total > 0)
        cat = int(r["category"])
        ax.barh(range(len(cols)), pct, left=left, color=CATEGORY_COLOURS.get(cat, GREY), height=0.6,
                label=f"category {cat}" if cat in CATEGORY_COLOURS else "system-wide")
        for i, (p, lft) in enumerate(zip(pct, left)):
            if p >= 0.06:
                ax.text(lft + p / 2, i, f"{p:.0%}", ha="center", va="center", color="white", fontsize=7.5)
        left += pct
    ax.set_yticks(range(len(cols)), [labels[c] for c in cols])
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlabel("share of national money")
    ax.grid(visible=False)
    ax.invert_yaxis()
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=5)
    return fig


@styled
def change_figure(table: pd.DataFrame, label: str, title: str, top: int = 14) -> Figure | None:
    """Money change (after − before, £m) per group as diverging bars: the biggest losers and gainers."""
    if table is None or table.empty:
        return None
    t = table[table["change"].abs() >= max(5e-4, 0.01 * float(table["change"].abs().max()))].sort_values("change")
    if t.empty:
        return None
    losers, gainers = t[t["change"] < 0], t[t["change"] > 0]
    keep = min(len(gainers), max(top // 3, top - len(losers)))
    t = pd.concat([losers.head(top - keep), gainers.tail(keep)])
    fig, ax = _new(0.8 + 0.22 * len(t))
    y = np.arange(len(t))
    ax.barh(y, t["change"], color=[RED if c < 0 else GREEN for c in t["change"]], height=0.7)
    ax.set_yticks(y, [str(v) for v in t[label]])
    ax.invert_yaxis()
    ax.axvline(0, color="#444444", linewidth=0.8)
    ax.grid(axis="y", visible=False)
    _money_axis(ax, "x", f"change in national money (£m), {title}")
    return fig


@styled
def survival_figure(levels: pd.DataFrame, allocation: pd.DataFrame, names: dict[str, str]) -> Figure | None:
    """The cut ladder: projects funded at each level (top) and each system's money as a share of its fair
    share at each level (the heat map: red below, blue above the fair share, grey = nothing funded)."""
    if levels is None or levels.empty:
        return None
    has_map = allocation is not None and not allocation.empty
    n_sys = min(allocation["system_id"].nunique(), 2 * MANY) if has_map else 0
    fig = Figure(figsize=(WIDTH, 2.2 + (0.17 * n_sys + 0.8 if has_map else 0)), layout="constrained")
    axes = fig.subplots(2 if has_map else 1, 1, height_ratios=[2.2, 0.17 * n_sys + 0.8] if has_map else None,
                        squeeze=False)[:, 0]
    labels = list(levels["label"])
    ax = axes[0]
    ax.plot(range(len(labels)), levels["funded"], marker="o", color=BLUE)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel("projects funded")
    ax.set_xlabel("envelope level")
    ax.set_ylim(0, float(levels["funded"].max()) * 1.12 + 1)
    if has_map:
        m = allocation.pivot_table(index="system_id", columns="label", values="ratio", aggfunc="first")
        m = m.reindex(columns=[c for c in labels if c in m.columns])
        order = m.fillna(0).apply(lambda r: ((r > 0).sum(), r.sum()), axis=1).sort_values(ascending=False).index
        m = m.loc[order]
        if len(m) > 2 * MANY:      # the systems that keep money longest and those that lose it first
            m = pd.concat([m.iloc[:MANY], m.iloc[-MANY:]])
        cmap = matplotlib.colormaps["RdYlBu"].with_extremes(bad="#9a9a9a")
        values = np.ma.masked_less_equal(np.nan_to_num(m.to_numpy(float)), 0.0)
        ax2 = axes[1]
        im = ax2.imshow(values, aspect="auto", cmap=cmap, interpolation="nearest",
                        norm=matplotlib.colors.TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=2.0))
        ax2.set_yticks(range(len(m)), [short_name(names.get(s, s)) for s in m.index], fontsize=7)
        ax2.set_xticks(range(len(m.columns)), list(m.columns))
        ax2.grid(visible=False)
        ax2.set_xlabel("envelope level (grey: nothing funded)")
        bar = fig.colorbar(im, ax=ax2, shrink=0.5, pad=0.01, extend="max")
        bar.set_label("money / fair share")
        bar.ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    return fig


@styled
def band_figure(table: pd.DataFrame, label: str, value: str, low: str, high: str, xlabel: str,
                money: bool = False) -> Figure | None:
    """One horizontal bar per row with its proven interval [low, high] as a whisker."""
    if table is None or table.empty:
        return None
    t = table.dropna(subset=[value]).reset_index(drop=True)
    if t.empty:
        return None
    fig, ax = _new(0.8 + 0.26 * len(t))
    y = np.arange(len(t))
    v = t[value].to_numpy(float)
    lo = t[low].fillna(t[value]).to_numpy(float) if low in t else v
    hi = t[high].fillna(t[value]).to_numpy(float) if high in t else v
    ax.barh(y, v, color=BLUE, height=0.6)
    ax.errorbar(v, y, xerr=[np.maximum(v - lo, 0), np.maximum(hi - v, 0)], fmt="none", ecolor="black",
                elinewidth=1, capsize=3)
    ax.set_yticks(y, [str(s) for s in t[label]])
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    ax.axvline(0, color="#444444", linewidth=0.8)
    if money:
        _money_axis(ax, "x", xlabel)
    else:
        ax.set_xlabel(xlabel)
    return fig


@styled
def core_figure(projects: pd.DataFrame, top: int = 40) -> Figure | None:
    """Core index of each project (share of sampled plans funding it) with its 95% interval."""
    if projects is None or projects.empty:
        return None
    t = projects.sort_values(["core_index", "project_id"], ascending=[False, True]).head(top).reset_index(drop=True)
    fig, ax = _new(0.8 + 0.2 * len(t))
    y = np.arange(len(t))
    colour = [BLUE if bool(f) else AMBER for f in t.get("nominal_funded", pd.Series([True] * len(t)))]
    ax.errorbar(t["core_index"], y, xerr=[t["core_index"] - t["ci_low"], t["ci_high"] - t["core_index"]],
                fmt="none", ecolor="#555555", elinewidth=0.8, capsize=2)
    ax.scatter(t["core_index"], y, color=colour, zorder=3, s=18)
    ax.set_yticks(y, [str(p) for p in t["project_id"]], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(-0.02, 1.02)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlabel("core index: share of sampled plans that fund the project (bar: 95% interval)")
    ax.legend(handles=[matplotlib.lines.Line2D([], [], color=BLUE, marker="o", linestyle="", label="in the plan"),
                       matplotlib.lines.Line2D([], [], color=AMBER, marker="o", linestyle="", label="not in the plan")],
              loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=2)
    return fig


@styled
def lorenz_figure(curves: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> Figure | None:
    """Lorenz curves of national money per weighted head across systems, one per policy: the further below
    the diagonal, the more unequal (the Gini coefficient is twice the area between)."""
    if not curves:
        return None
    fig, ax = _new(3.6, 5.0)
    ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=0.8, label="equal per weighted head")
    cycle = [BLUE, RED, GREEN, AMBER, DARK, "#7C2855", "#41B6E6", GREY, "#AE2573", "#330072"]
    for i, (name, x, y) in enumerate(curves):
        ax.plot(x, y, color=cycle[i % len(cycle)], linewidth=1.3, label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlabel("share of weighted population (systems, least funded per head first)")
    ax.set_ylabel("share of national money")
    ax.legend(loc="upper left", fontsize=7.5)
    return fig


@styled
def histogram_figure(values: pd.Series, xlabel: str, groups: pd.Series | None = None) -> Figure | None:
    """Distribution of one figure over many runs (one colour per group)."""
    v = pd.to_numeric(values, errors="coerce")
    if v.notna().sum() == 0:
        return None
    fig, ax = _new(2.6)
    if groups is None:
        ax.hist(v.dropna(), bins=min(30, max(5, int(v.notna().sum() ** 0.5))), color=BLUE)
    else:
        for name, block in v.groupby(groups.fillna("")):
            ax.hist(block.dropna(), bins=20, alpha=0.6, label=str(name) or "—")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("runs")
    return fig
