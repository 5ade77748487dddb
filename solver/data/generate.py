"""Random Envelope instances for scaling studies (``envelope generate``; the distributions, their
parameters and why: ``docs/generator.md``).

``generate(GeneratorSettings(...))`` builds the six instance tables as DataFrames, the text of
``instance.toml`` and of a ``scenario.toml`` using the default model (need-first). It solves
nothing and writes nothing: the command line writes the folder and loads it back.

*Deterministic*: every rule draws from its own numpy stream (``default_rng([seed, crc32(rule)])``),
in a fixed order, and the files are formatted here, so equal settings give byte-identical files (with
the same numpy; numpy does not promise equal streams across its major versions).

*Valid by construction*: ids, references, windows, profiles and groups are built to pass every check
of ``solver.data.instance``; dependencies point from a later kind to an earlier one (acyclic), each
dependent's window leaves room for its lag; and the mandatory and committed projects are chosen so
that funding all of them fits every rule whatever their start years: together they use at most
``FORCED_SHARE`` of the smallest year's national capital and revenue (counting their whole cost, run
costs and a ``FEE_BOUND`` access fee in the national pot), each system's local capital and revenue
headroom is at least ``LOCAL_MARGIN`` times what they could need there in any year, none of them
depends on another project, at most one of them sits in any alternatives group, and only one per
system has a platform, one its system already runs. So the scenario has a plan under any fee or
run-cost payer, with or without match funding, and under every standardisation mode.

Money is drawn, then held as whole £k (integers) until the tables are made, so every amount is a
whole number of £k (3 decimals of £m).
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from solver.data import readers
from solver.errors import InputError

#: Bumped whenever a rule changes (the same settings then give other files); written in instance.toml.
GENERATOR_VERSION = 1
FIRST_YEAR = 2026
#: Inclusive bounds of the integer settings (option name -> (low, high)).
LIMITS: dict[str, tuple[int, int]] = {
    "systems": (1, 1000),
    "orgs_per_system": (1, 100),
    "projects_per_org": (1, 20),
    "years": (1, 10),
    "seed": (0, 2**32 - 1),
}
#: Largest instance (candidate projects): about 200 times England's 957, far beyond what solves today.
MAX_PROJECTS = 200_000
OPTIONS = {"systems": "--systems", "orgs_per_system": "--orgs-per-system", "projects_per_org": "--projects-per-org",
           "years": "--years", "seed": "--seed", "tightness": "--tightness"}

# --------------------------------------------------------------------------- documented parameters

#: England's seven NHS regions (names only; regions are reported, never used by a rule).
REGIONS = ("North East and Yorkshire", "North West", "Midlands", "East of England", "London", "South East",
           "South West")
#: Organisation types and their shares (England's 205 trusts: 134 acute, 31 mental health and community,
#: 18 mental health, 12 community, 10 ambulance).
ORG_TYPES = {"acute": 0.65, "mental_health_community": 0.15, "mental_health": 0.09, "community": 0.06,
             "ambulance": 0.05}
#: Digital-maturity categories 0-3: England's derived mix (20 / 29 / 111 / 45 of 205 trusts; the published
#: figures are ~19-20 without an EPR, ~132 in the middle groups, ~20% at the standard).
CATEGORY_SHARES = (0.10, 0.14, 0.54, 0.22)
#: EPR suppliers by family, with national shares (rounded from England's EPR extract).
PLATFORMS = {
    "acute": {"Oracle Cerner": 0.25, "Dedalus": 0.15, "System C": 0.15, "Epic": 0.15, "Altera": 0.10,
              "Meditech": 0.08, "Nervecentre": 0.07, "IMS Maxims": 0.05},
    "mhc": {"TPP": 0.35, "Access Group": 0.30, "Advanced": 0.15, "System C": 0.10, "Civica": 0.10},
    "ambulance": {"Cleric": 0.50, "Ortivus": 0.30, "Medusa": 0.20},
}
LEGACY_PLATFORM = "In-house"
#: Probability that an organisation runs its system's preferred platform of its family (clustering).
P_SYSTEM_PLATFORM = 0.5
#: Probability that a category-1 organisation runs a legacy in-house EPR rather than a supplier's.
P_LEGACY = 0.5
#: EPR capital factor by platform (others 1).
PLATFORM_COST = {"Epic": 1.3, "Oracle Cerner": 1.1, "Nervecentre": 0.9, "IMS Maxims": 0.9, "TPP": 0.9}
#: Project menus by category: an organisation gets the first K kinds of its menu, then modules MOD1, MOD2, ...
MENUS = {
    0: ("EPR-A", "EPR-B", "DIG", "CYB"),
    1: ("EPR-A", "OPT", "CYB", "EPR-B"),
    2: ("EXT", "CYB", "OPT"),
    3: ("OPT", "CYB"),
}
KIND = {"EPR": "epr_procurement", "OPT": "epr_optimisation",
        "EXT": "epr_extension", "CYB": "cyber", "DIG": "digitisation", "MOD": "digital_module",
        "SCR": "shared_care_record"}
LABEL = {"EPR": "EPR procurement", "OPT": "EPR optimisation",
         "EXT": "EPR extension", "CYB": "cyber security remediation", "DIG": "paper-records digitisation",
         "MOD": "digital module", "SCR": "shared care record"}
#: Benefit points per £m of total cost, and the lognormal sigma of its noise, by project code.
BENEFIT_RATIO = {"EPR": (0.16, 0.10), "OPT": (0.30, 0.25), "EXT": (0.22, 0.25), "CYB": (0.45, 0.30),
                 "DIG": (0.35, 0.20), "MOD": (0.30, 0.30), "SCR": (0.30, 0.20)}
#: Need (maturity) factor of benefit by category: EPRs as England's build, other kinds milder.
MATURITY_EPR = (1.5, 1.0, 0.6, 0.4)
MATURITY_OTHER = (1.2, 1.1, 1.0, 0.9)
#: Run cost per year once live: (basis, low, high) -- a uniform share of the capital or of the whole cost.
RUN_COST = {"EPR": ("capital", 0.05, 0.10), "OPT": ("cost", 0.02, 0.05), "EXT": ("cost", 0.04, 0.07),
            "CYB": ("cost", 0.05, 0.10), "DIG": ("cost", 0.0, 0.0), "MOD": ("cost", 0.03, 0.06),
            "SCR": ("capital", 0.08, 0.12)}
#: Cash-releasing savings per year once live, as a uniform share of the whole cost.
SAVINGS = {"EPR": (0.01, 0.04), "OPT": (0.05, 0.15), "EXT": (0.03, 0.08), "CYB": (0.0, 0.0),
           "DIG": (0.10, 0.20), "MOD": (0.02, 0.10), "SCR": (0.02, 0.06)}
#: Match shares offered by project code (one drawn uniformly).
MATCH = {"EPR": (0.10, 0.15, 0.20, 0.25, 0.30), "OPT": (0.10, 0.15, 0.20, 0.25, 0.30),
         "EXT": (0.10, 0.15, 0.20, 0.25, 0.30), "CYB": (0.0, 0.05, 0.10), "DIG": (0.10, 0.15, 0.20),
         "MOD": (0.10, 0.15, 0.20, 0.25, 0.30), "SCR": (0.10, 0.15, 0.20, 0.25, 0.30)}
#: Phasing weights of a profile of n years (capital, revenue), each jittered by up to +-15%.
PHASING = {1: ((1.0,), (1.0,)), 2: ((0.55, 0.45), (0.4, 0.6)), 3: ((0.35, 0.40, 0.25), (0.2, 0.35, 0.45))}
#: Probability that a non-EPR project cannot start before the second year ("not ready").
P_LATE = 0.2
#: Probability that an organisation's cyber project is proposed as mandatory, and that a candidate for a
#: commitment is proposed as committed (each then accepted only while everything forced still fits).
P_MANDATORY = 0.15
P_COMMITTED = 0.04
#: Everything forced (mandatory + committed) uses at most this share of the smallest year's national capital
#: and revenue, counting whole costs, run costs and an access fee of ``FEE_BOUND`` in the national pot.
FORCED_SHARE = 0.4
FEE_BOUND = 0.10
#: Each system's local capital and revenue headroom cover at least this multiple of its forced needs.
LOCAL_MARGIN = 1.25
#: Local capital and revenue headroom as a multiple of the system's yearly local demand: lognormal, (median,
#: sigma) per pot, clipped to [0.25, 5] -- England's ratios have medians 0.84 (capital) and 1.10 (revenue) and
#: quartiles 0.56-1.36 and 0.72-1.42.
LOCAL_SHARE = {"capital": (0.85, 0.5), "revenue": (1.1, 0.5)}
#: Access fee used to size revenue headroom (the default model's rate).
SIZING_FEE = 0.035


@dataclass(frozen=True)
class GeneratorSettings:
    """What ``envelope generate`` is asked for: N systems of M organisations with K projects each over Y
    years, an envelope of ``tightness`` × the yearly demand, and the seed."""

    systems: int
    orgs_per_system: int
    projects_per_org: int
    years: int
    tightness: float
    seed: int = 0

    def check(self) -> None:
        """``InputError`` (exit 2) naming the command-line option of the first setting out of bounds."""
        for key, (lo, hi) in LIMITS.items():
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= value <= hi:
                raise InputError(None, f"option {OPTIONS[key]}: must be a whole number from {lo:,} to {hi:,} "
                                       f"(got {value!r})")
        t = self.tightness
        if isinstance(t, bool) or not isinstance(t, int | float) or not (math.isfinite(t) and 0 < t <= 1):
            raise InputError(None, f"option --tightness: must be a fraction in (0, 1], the share of the yearly "
                                   f"demand the envelope covers, e.g. 0.3 (got {t!r})")
        n = self.systems * self.orgs_per_system * self.projects_per_org
        if n > MAX_PROJECTS:
            raise InputError(None, f"options --systems × --orgs-per-system × --projects-per-org: {n:,} projects, "
                                   f"more than the {MAX_PROJECTS:,} the generator makes")

    @property
    def name(self) -> str:
        """The instance's name: every setting in it."""
        return (f"generated-{self.systems}x{self.orgs_per_system}x{self.projects_per_org}-y{self.years}"
                f"-t{_num(self.tightness)}-s{self.seed}")

    def command(self) -> str:
        """The command line that makes this instance."""
        return (f"envelope generate --systems {self.systems} --orgs-per-system {self.orgs_per_system} "
                f"--projects-per-org {self.projects_per_org} --years {self.years} --tightness {_num(self.tightness)} "
                f"--seed {self.seed}")


@dataclass
class Generated:
    """A generated instance: the tables (typed as the readers type them), ``instance.toml`` and a scenario
    using the default model, and a few facts about it (counts, demand, envelope)."""

    settings: GeneratorSettings
    tables: dict[str, pd.DataFrame]
    instance_toml: str
    scenario_toml: str
    meta: dict[str, Any]
    facts: dict[str, Any] = field(default_factory=dict)

    def files(self) -> dict[str, str]:
        """File name -> text of every file of the folder (CSV tables, instance.toml, scenario.toml)."""
        out = {f"{name}.csv": _csv_text(frame) for name, frame in self.tables.items()}
        out["instance.toml"] = self.instance_toml
        out["scenario.toml"] = self.scenario_toml
        return out


# --------------------------------------------------------------------------- helpers


def _num(v: float) -> str:
    """A number as written on a command line (``0.3``, ``1``)."""
    return f"{float(v):.15g}"


def _stream(seed: int, rule: str) -> np.random.Generator:
    """The random stream of one rule: independent of every other rule's draws."""
    return np.random.default_rng([seed, zlib.crc32(rule.encode())])


def _k(gbpm: float) -> int:
    """£m -> whole £k (rounded)."""
    return int(round(gbpm * 1000))


def _split(total: int, weights: np.ndarray) -> list[int]:
    """``total`` £k split by ``weights`` into whole £k (largest remainders; the parts sum to ``total``)."""
    raw = total * weights / weights.sum()
    parts = np.floor(raw).astype(np.int64)
    rest = int(total - parts.sum())
    order = np.argsort(-(raw - parts), kind="stable")
    parts[order[:rest]] += 1
    return [int(v) for v in parts]


def _money(k: int) -> float:
    return round(k / 1000, 3)


def _pick(rng: np.random.Generator, shares: dict[str, float], avoid: set[str] | frozenset[str] = frozenset()) -> str:
    """One key drawn with probability proportional to its share (keys in ``avoid`` left out, unless all are)."""
    keys = [k for k in shares if k not in avoid] or list(shares)
    p = np.array([shares[k] for k in keys])
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _family(org_type: str) -> str:
    return "acute" if org_type == "acute" else "ambulance" if org_type == "ambulance" else "mhc"


def _code(kind: str) -> str:
    """The parameter row of a project code (EPR-A and EPR-B share EPR's, MOD3 MOD's)."""
    return "EPR" if kind.startswith("EPR") else "MOD" if kind.startswith("MOD") else kind


@dataclass
class _Project:
    pid: str
    org: str | None
    system: int
    kind: str                     # menu code (EPR-A, OPT, MOD2, SCR ...)
    name: str
    platform: str = ""
    category: int = 3
    capital: list[int] = field(default_factory=list)   # £k per profile year
    revenue: list[int] = field(default_factory=list)
    benefit: float = 0.0
    run_k: int = 0
    savings_k: int = 0
    match: float = 0.0
    earliest: int = FIRST_YEAR
    latest: int = FIRST_YEAR
    mandatory: bool = False
    committed: int | None = None
    withdrawal_k: int = 0
    group: str | None = None
    requires: str | None = None
    lag: int = 0

    @property
    def n(self) -> int:
        return len(self.capital)

    @property
    def cost_k(self) -> int:
        return sum(self.capital) + sum(self.revenue)


# --------------------------------------------------------------------------- the generator


def generate(settings: GeneratorSettings) -> Generated:
    """A random, valid instance for ``settings`` (checked first: ``InputError`` naming the option)."""
    settings.check()
    s = settings
    seed = int(s.seed)
    years = list(range(FIRST_YEAR, FIRST_YEAR + s.years))
    systems = _draw_systems(s, seed)
    orgs = _draw_organisations(s, seed, systems)
    projects = _menu_projects(s, seed, orgs, systems.ids)
    epr_target = _alternatives(projects)
    _draw_money(s, seed, projects, orgs, systems)
    _windows(s, seed, projects, orgs, epr_target)
    group_size = Counter(p.group for p in projects if p.group)
    demand = _demand(s, projects, group_size)
    envelope = {pot: [max(int(math.floor(s.tightness * d + 1e-9)), 1) for d in demand[pot]] for pot in demand}
    _force(seed, projects, envelope, orgs, s.systems)
    local_cap, headroom = _local(s, seed, projects, group_size)

    tables = _tables(s, years, systems, local_cap, headroom, orgs, projects, envelope)
    facts = {
        "systems": s.systems, "organisations": len(orgs), "projects": len(projects),
        "cost_rows": sum(p.n for p in projects), "dependencies": sum(p.requires is not None for p in projects),
        "groups": len(group_size), "mandatory": sum(p.mandatory for p in projects),
        "committed": sum(p.committed is not None for p in projects),
        "categories": [sum(o["category"] == c for o in orgs) for c in range(4)],
        "demand_gbpm": round(float(demand["capital"].sum() + demand["revenue"].sum()) / 1000, 3),
        "envelope_gbpm": round(sum(envelope["capital"] + envelope["revenue"]) / 1000, 3),
        "savings_column": "savings" in tables["projects"].columns,
    }
    meta = {
        "name": s.name,
        "description": f"Random instance for scaling studies: {s.systems} systems × {s.orgs_per_system} organisations "
                       f"× {s.projects_per_org} projects (+1 system-wide project per system), {s.years} year(s) "
                       f"from {FIRST_YEAR}, envelope {s.tightness:g} × the yearly demand, seed {s.seed}",
        "currency": "GBPm",
        "years": years,
        "synthetic": "Everything is synthetic: drawn by solver/data/generate.py from the distributions in "
                     "docs/generator.md.",
        "sources": {"generator": f"{s.command()} (generator version {GENERATOR_VERSION}; docs/generator.md)"},
    }
    return Generated(settings=s, tables=tables, instance_toml=_instance_toml(meta),
                     scenario_toml=_scenario_toml(s), meta=meta, facts=facts)


@dataclass
class _Systems:
    ids: list[str]
    population: np.ndarray
    need: np.ndarray
    imd: np.ndarray
    region: np.ndarray
    preferred: list[dict[str, str]]     # each system's preferred supplier per family


def _draw_systems(s: GeneratorSettings, seed: int) -> _Systems:
    """England-like populations, need indices and IMD scores; a preferred EPR supplier per family."""
    rng = _stream(seed, "systems")
    pop = np.clip(np.exp(rng.normal(math.log(1.33e6), 0.46, s.systems)), 3e5, 3.5e6).round()
    z = rng.normal(0.0, 1.0, s.systems)
    need = np.clip(np.exp(0.066 * z), 0.85, 1.2).round(3)
    imd = np.clip(20.7 + 5.4 * (0.56 * z + 0.83 * rng.normal(0.0, 1.0, s.systems)), 5.0, 45.0).round(3)
    region = rng.integers(0, len(REGIONS), s.systems)
    width = max(2, len(str(s.systems)))
    prefs = [{fam: _pick(rng, shares) for fam, shares in PLATFORMS.items()} for _ in range(s.systems)]
    return _Systems([f"S{i + 1:0{width}d}" for i in range(s.systems)], pop, need, imd, region, prefs)


def _draw_organisations(s: GeneratorSettings, seed: int, systems: _Systems) -> list[dict[str, Any]]:
    """M organisations per system: type, size, digital-maturity category and current platform."""
    rng = _stream(seed, "organisations")
    types, type_p = list(ORG_TYPES), np.array(list(ORG_TYPES.values()))
    width = max(2, len(str(s.orgs_per_system)))
    orgs: list[dict[str, Any]] = []
    for si in range(s.systems):
        for j in range(s.orgs_per_system):
            org_type = types[int(rng.choice(len(types), p=type_p))]
            fam = _family(org_type)
            acute = fam == "acute"
            size = float(np.clip(np.exp(rng.normal(0, 0.45 if acute else 0.3)), 0.25 if acute else 0.5,
                                 3.0 if acute else 2.0))
            cat = int(rng.choice(4, p=np.array(CATEGORY_SHARES)))
            own_pref, legacy = rng.random(), rng.random()
            drawn = _pick(rng, PLATFORMS[fam])
            if cat == 0:
                platform = ""
            elif cat == 1 and legacy < P_LEGACY:
                platform = LEGACY_PLATFORM
            else:
                platform = systems.preferred[si][fam] if own_pref < P_SYSTEM_PLATFORM else drawn
            orgs.append({"org_id": f"{systems.ids[si]}-T{j + 1:0{width}d}", "system": si, "org_type": org_type,
                         "family": fam, "size": size, "category": cat, "platform": platform})
    return orgs


def _menu_projects(s: GeneratorSettings, seed: int, orgs: list[dict[str, Any]], sys_ids: list[str]) -> list[_Project]:
    """Each organisation's first K kinds of its category's menu (then modules), with their platforms; one
    system-wide shared care record per system."""
    rng = _stream(seed, "epr_options")
    used_by: list[Counter[str]] = [Counter() for _ in range(s.systems)]   # platform -> organisations running it
    for o in orgs:
        if o["platform"]:
            used_by[o["system"]][o["platform"]] += 1
    projects: list[_Project] = []
    for o in orgs:
        menu = list(MENUS[o["category"]])
        kinds = menu[: s.projects_per_org] + [f"MOD{i + 1}" for i in range(s.projects_per_org - len(menu))]
        fam = o["family"]
        in_system = {p: n for p, n in used_by[o["system"]].items() if p in PLATFORMS[fam]}
        option_a = max(sorted(in_system), key=lambda p: in_system[p]) if in_system else _pick(rng, PLATFORMS[fam])
        option_b = _pick(rng, PLATFORMS[fam], avoid={option_a, o["platform"]})
        for kind in kinds:
            platform = {"EPR-A": option_a, "EPR-B": option_b}.get(kind, "")
            if kind in ("OPT", "EXT") or (kind.startswith("MOD") and o["category"] >= 2):
                platform = o["platform"]
            what = f"{LABEL[_code(kind)]} ({platform})" if kind.startswith("EPR") else LABEL[_code(kind)]
            if kind.startswith("MOD"):
                what += f" {kind[3:]}"
            projects.append(_Project(pid=f"{o['org_id']}-{kind}", org=o["org_id"], system=o["system"], kind=kind,
                                     name=f"{o['org_id']} {what}", platform=platform, category=o["category"]))
    for si in range(s.systems):
        projects.append(_Project(pid=f"{sys_ids[si]}-SCR", org=None, system=si, kind="SCR",
                                 name=f"{sys_ids[si]} {LABEL['SCR']}", category=-1))
    return projects


def _alternatives(projects: list[_Project]) -> dict[str, str]:
    """Group an organisation's EPR options (and, in category 1, optimising its current EPR) as ``<org>-EPR``
    when there are two or more; returns organisation -> what "requires its EPR" points to (the group, or
    its only EPR option)."""
    members: dict[str, list[_Project]] = {}
    for p in projects:
        if p.org is not None and (p.kind.startswith("EPR") or (p.kind == "OPT" and p.category == 1)):
            members.setdefault(f"{p.org}-EPR", []).append(p)
    target: dict[str, str] = {}
    for gid, ps in members.items():
        org = gid.removesuffix("-EPR")
        if len(ps) > 1:
            for p in ps:
                p.group = gid
            target[org] = gid
        elif ps[0].kind.startswith("EPR"):
            target[org] = ps[0].pid
    return target


def _cost(code: str, size: float, acute: bool, population: float, noise: float,
          rng: np.random.Generator) -> tuple[float, float, int]:
    """(capital £m, revenue £m, profile years) of one project before phasing (docs/generator.md, Costs)."""
    if code == "EPR":
        base = min(max(48 * size**0.6, 15), 60) if acute else min(max(6 * size, 3), 12)
        return base * noise**0.08, 0.0, 0     # platform factor, revenue and years: see _draw_money
    if code == "OPT":
        cost = (min(max(4 * size**0.7, 1.5), 8) if acute else min(max(2 * size, 1), 4)) * noise**0.15
        cost, share = min(max(cost, 1), 8), rng.uniform(0.70, 0.80)
        n = 2 if cost >= 3.5 else 1
    elif code == "EXT":
        cost = (min(max(9 * size**0.7, 4), 16) if acute else min(max(4 * size, 2), 7)) * noise**0.15
        share, n = rng.uniform(0.75, 0.85), 2
    elif code == "CYB":
        cost = min(max(1.2 * math.sqrt(size) * noise**0.3, 0.5), 3)
        share, n = rng.uniform(0.55, 0.65), 1
    elif code == "DIG":
        cost = min(max(1.6 * size**0.75 * noise**0.3, 0.5), 5)
        share = rng.uniform(0.45, 0.60)
        n = 2 if cost >= 2 else 1
    elif code == "MOD":
        cost = min(max(2 * size**0.6 * noise**0.4, 0.5), 6)
        share = rng.uniform(0.60, 0.80)
        n = 2 if cost >= 3 else 1
    else:  # SCR
        cost = min(max(4.5 * (population / 1.48e6) ** 0.6 * noise**0.15, 2), 8)
        share = rng.uniform(0.65, 0.75)
        n = 2 if cost >= 4.5 else 1
    return cost * share, cost * (1 - share), n


def _draw_money(s: GeneratorSettings, seed: int, projects: list[_Project], orgs: list[dict[str, Any]],
                systems: _Systems) -> None:
    """Cost profiles (whole £k), run costs, savings, match shares and benefits of every project."""
    rng_cost, rng_ben = _stream(seed, "costs"), _stream(seed, "benefits")
    rng_run, rng_sav, rng_match = _stream(seed, "run_costs"), _stream(seed, "savings"), _stream(seed, "match")
    org_of = {o["org_id"]: o for o in orgs}
    m = s.orgs_per_system
    sys_maturity = [float(np.mean([MATURITY_OTHER[o["category"]] for o in orgs[si * m:(si + 1) * m]]))
                    for si in range(s.systems)]
    for p in projects:
        code = _code(p.kind)
        o = org_of.get(p.org) if p.org else None
        size = o["size"] if o else 1.0
        acute = bool(o and o["family"] == "acute")
        noise = math.exp(rng_cost.normal())  # one standard lognormal draw per project, scaled by kind
        capital, revenue, n = _cost(code, size, acute, float(systems.population[p.system]), noise, rng_cost)
        if code == "EPR":
            capital *= PLATFORM_COST.get(p.platform, 1.0)
            revenue = capital * rng_cost.uniform(0.12, 0.20)
            n = 3 if capital >= 45 else 2
        n = min(n, s.years)
        wk, wr = (np.array(w) * rng_cost.uniform(0.85, 1.15, len(w)) for w in PHASING[n])
        p.capital, p.revenue = _split(_k(capital), wk), _split(max(_k(revenue), 1), wr)
        cost_gbpm = p.cost_k / 1000
        basis, lo, hi = RUN_COST[code]
        p.run_k = _k((sum(p.capital) / 1000 if basis == "capital" else cost_gbpm) * rng_run.uniform(lo, hi))
        p.savings_k = _k(cost_gbpm * rng_sav.uniform(*SAVINGS[code]))
        p.match = float(rng_match.choice(MATCH[code]))
        ratio, sigma = BENEFIT_RATIO[code]
        if p.org is None:   # a system-wide project: the mean need of its system's organisations
            maturity = sys_maturity[p.system]
        else:
            maturity = (MATURITY_EPR if code == "EPR" else MATURITY_OTHER)[p.category]
        benefit = cost_gbpm * ratio * maturity * math.sqrt(systems.need[p.system]) * math.exp(sigma * rng_ben.normal())
        p.benefit = max(round(benefit, 3), 0.001)


def _windows(s: GeneratorSettings, seed: int, projects: list[_Project], orgs: list[dict[str, Any]],
             epr_target: dict[str, str]) -> None:
    """Dependencies (on EPRs only: acyclic) and start windows that fit the profile and leave room for the lag."""
    rng = _stream(seed, "windows")
    last = FIRST_YEAR + s.years - 1
    size = {o["org_id"]: o["size"] for o in orgs}
    largest_cat0: dict[int, str] = {}
    for o in orgs:
        if o["category"] == 0 and o["org_id"] in epr_target:
            best = largest_cat0.get(o["system"])
            if best is None or o["size"] > size[best]:
                largest_cat0[o["system"]] = o["org_id"]
    for p in projects:
        last_start = last - p.n + 1
        if p.org is not None and p.category == 0 and (p.kind == "DIG" or p.kind.startswith("MOD")):
            p.requires = epr_target.get(p.org)
        elif p.kind == "SCR" and p.system in largest_cat0:
            p.requires = epr_target[largest_cat0[p.system]]
        late = rng.random() < P_LATE
        if p.requires is not None:
            p.lag = 1 if FIRST_YEAR + 1 <= last_start else 0
            p.earliest = FIRST_YEAR + p.lag
        elif late and not p.kind.startswith("EPR") and FIRST_YEAR + 1 <= last_start:
            p.earliest = FIRST_YEAR + 1
        else:
            p.earliest = FIRST_YEAR
        p.latest = min(p.earliest + 1, last_start) if p.kind == "CYB" else last_start


def _demand(s: GeneratorSettings, projects: list[_Project], group_size: Counter[str]) -> dict[str, np.ndarray]:
    """National demand per year and pot (£k): each bid's national share spread evenly over its start years,
    each alternatives group counted once (the mean of its options)."""
    demand = {pot: np.zeros(s.years) for pot in ("capital", "revenue")}
    for p in projects:
        starts = range(p.earliest, p.latest + 1)
        weight = (1 - p.match) / len(starts) / (group_size[p.group] if p.group else 1)
        for start in starts:
            for k in range(p.n):
                demand["capital"][start + k - FIRST_YEAR] += weight * p.capital[k]
                demand["revenue"][start + k - FIRST_YEAR] += weight * p.revenue[k]
    return demand


def _national_peak(p: _Project) -> tuple[float, float]:
    """(capital, revenue) £k a forced project can take from the national pots in any one year, at worst:
    peak capital; peak revenue + run cost + a ``FEE_BOUND`` fee on the peak yearly cost."""
    return max(p.capital), max(p.revenue) + p.run_k + FEE_BOUND * max(c + r for c, r in zip(p.capital, p.revenue))


def _force(seed: int, projects: list[_Project], envelope: dict[str, list[int]], orgs: list[dict[str, Any]],
           n_systems: int) -> None:
    """Mark committed projects, then mandatory ones (cyber remediation on a national must-do list), each
    accepted only while every forced project still fits (see the module notes)."""
    rng = _stream(seed, "forced")
    sys_platforms: list[set[str]] = [set() for _ in range(n_systems)]
    for o in orgs:
        if o["platform"]:
            sys_platforms[o["system"]].add(o["platform"])
    room = {pot: FORCED_SHARE * min(envelope[pot]) for pot in ("capital", "revenue")}
    used = {"capital": 0.0, "revenue": 0.0}
    forced_group: set[str] = set()
    forced_platform: set[int] = set()

    def fits(p: _Project) -> bool:
        cap, rev = _national_peak(p)
        if used["capital"] + cap > room["capital"] or used["revenue"] + rev > room["revenue"]:
            return False
        if p.group is not None and p.group in forced_group:
            return False
        return not (p.platform and (p.system in forced_platform or p.platform not in sys_platforms[p.system]))

    def force(p: _Project) -> None:
        cap, rev = _national_peak(p)
        used["capital"] += cap
        used["revenue"] += rev
        if p.group is not None:
            forced_group.add(p.group)
        if p.platform:
            forced_platform.add(p.system)

    order = rng.permutation(len(projects))
    proposed = rng.random(len(projects))
    for i in order:
        p = projects[int(i)]
        eligible = p.kind in ("OPT", "EXT", "CYB", "SCR") or p.kind.startswith("MOD") or \
            (p.kind == "EPR-A" and p.category == 0)
        if eligible and p.requires is None and p.earliest == FIRST_YEAR and proposed[int(i)] < P_COMMITTED \
                and fits(p):
            force(p)
            p.committed = p.latest = FIRST_YEAR
            p.withdrawal_k = _k(p.cost_k / 1000 * rng.uniform(0.10, 0.20))
    order = rng.permutation(len(projects))
    proposed = rng.random(len(projects))
    for i in order:
        p = projects[int(i)]
        if p.kind == "CYB" and p.committed is None and proposed[int(i)] < P_MANDATORY and fits(p):
            force(p)
            p.mandatory = True
    assert used["capital"] <= room["capital"] + 1e-9
    assert used["revenue"] <= room["revenue"] + 1e-9


def _local(s: GeneratorSettings, seed: int, projects: list[_Project],
           group_size: Counter[str]) -> tuple[list[int], list[int]]:
    """Each system's local capital and revenue headroom (£k a year): a lognormal multiple of its yearly local
    demand, and at least ``LOCAL_MARGIN`` × what its forced projects can need in any year."""
    rng = _stream(seed, "local")
    by_system: list[list[_Project]] = [[] for _ in range(s.systems)]
    for p in projects:
        by_system[p.system].append(p)
    local_cap, headroom = [], []
    for mine in by_system:
        demand_cap = demand_rev = need_cap = need_rev = 0.0
        for p in mine:
            share = 1 / (group_size[p.group] if p.group else 1)
            demand_cap += share * p.match * sum(p.capital) / s.years
            demand_rev += share * ((p.match * sum(p.revenue) + SIZING_FEE * (1 - p.match) * p.cost_k) / s.years
                                   + 0.5 * p.run_k)
            if p.mandatory or p.committed is not None:
                need_cap += p.match * max(p.capital)
                need_rev += p.match * max(p.revenue) + p.run_k + FEE_BOUND * max(
                    c + r for c, r in zip(p.capital, p.revenue))
        f_cap, f_rev = (min(max(median * math.exp(sigma * rng.normal()), 0.25), 5.0)
                        for median, sigma in LOCAL_SHARE.values())
        local_cap.append(max(int(round(f_cap * demand_cap)), int(math.ceil(LOCAL_MARGIN * need_cap))))
        headroom.append(max(int(round(f_rev * demand_rev)), int(math.ceil(LOCAL_MARGIN * need_rev))))
    return local_cap, headroom


def _tables(s: GeneratorSettings, years: list[int], systems: _Systems, local_cap: list[int], headroom: list[int],
            orgs: list[dict[str, Any]], projects: list[_Project],
            envelope: dict[str, list[int]]) -> dict[str, pd.DataFrame]:
    """The six tables, typed as the readers type them (text as object, money as floats of whole £k)."""
    sys_ids, pop, need = systems.ids, systems.population, systems.need
    systems = pd.DataFrame({
        "system_id": sys_ids,
        "name": [f"Generated system {i + 1}" for i in range(s.systems)],
        "region": [REGIONS[int(r)] for r in systems.region],
        "population": pop.astype(np.int64),
        "weighted_population": np.maximum((pop * need).round(), 1).astype(np.int64),
        "need_index": need,
        "imd_score": systems.imd,
        "local_capital": [_money(v) for v in local_cap],
        "revenue_headroom": [_money(v) for v in headroom],
    })
    organisations = pd.DataFrame({
        "org_id": [o["org_id"] for o in orgs],
        "name": [f"{o['org_id']} {o['org_type'].replace('_', ' ')} trust" for o in orgs],
        "system_id": [sys_ids[o["system"]] for o in orgs],
        "org_type": [o["org_type"] for o in orgs],
        "category": np.array([o["category"] for o in orgs], dtype=np.int64),
        "platform": [o["platform"] for o in orgs],
    })
    cols: dict[str, Any] = {
        "project_id": [p.pid for p in projects],
        "org_id": [p.org for p in projects],
        "system_id": [sys_ids[p.system] for p in projects],
        "name": [p.name for p in projects],
        "kind": [KIND[_code(p.kind)] for p in projects],
        "platform": [p.platform for p in projects],
        "benefit": [p.benefit for p in projects],
        "earliest_start": np.array([p.earliest for p in projects], dtype=np.int64),
        "latest_start": np.array([p.latest for p in projects], dtype=np.int64),
        "duration_years": np.array([p.n for p in projects], dtype=np.int64),
        "run_cost": [_money(p.run_k) for p in projects],
        "match_share": [p.match for p in projects],
        "mandatory": np.array([p.mandatory for p in projects], dtype=bool),
        "committed_start": pd.array([p.committed for p in projects], dtype="Int64"),
        "withdrawal_cost": [_money(p.withdrawal_k) for p in projects],
        "group": [p.group for p in projects],
    }
    if "savings" in readers.ProjectRow.model_fields:   # the optional column, once the readers know it
        cols["savings"] = [_money(p.savings_k) for p in projects]
    costs = pd.DataFrame(
        [(p.pid, k, _money(c), _money(r)) for p in projects for k, (c, r) in enumerate(zip(p.capital, p.revenue))],
        columns=["project_id", "year_offset", "capital", "revenue"])
    costs["year_offset"] = costs["year_offset"].astype(np.int64)
    deps = [(p.pid, p.requires, p.lag) for p in projects if p.requires is not None]
    dependencies = pd.DataFrame(deps, columns=["project_id", "requires", "lag_years"])
    dependencies["lag_years"] = dependencies["lag_years"].astype(np.int64)
    envelope_frame = pd.DataFrame({"year": np.array(years, dtype=np.int64),
                                   "capital": [_money(v) for v in envelope["capital"]],
                                   "revenue": [_money(v) for v in envelope["revenue"]]})
    return {"systems": systems, "organisations": organisations, "projects": pd.DataFrame(cols), "costs": costs,
            "dependencies": dependencies, "envelope": envelope_frame}


def _cell(v: object) -> str:
    """One CSV cell: floats with at most 6 decimals and no trailing zeros, missing values empty."""
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    if isinstance(v, float | np.floating):
        text = f"{float(v):.6f}".rstrip("0").rstrip(".")
        return "0" if text in ("", "-0") else text
    text = str(v)
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_text(frame: pd.DataFrame) -> str:
    """A table as CSV text, formatted here (not by pandas) so that files are byte-identical between runs."""
    lines = [",".join(frame.columns)]
    columns = [frame[c].tolist() for c in frame.columns]
    lines += [",".join(_cell(v) for v in row) for row in zip(*columns)]
    return "\n".join(lines) + "\n"


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _instance_toml(meta: dict[str, Any]) -> str:
    lines = [f"{key} = {_toml_string(meta[key])}" for key in ("name", "description", "currency")]
    lines.append(f"years = [{', '.join(str(y) for y in meta['years'])}]")
    lines.append(f"synthetic = {_toml_string(meta['synthetic'])}")
    lines += ["", "[sources]"] + [f"{k} = {_toml_string(v)}" for k, v in meta["sources"].items()]
    return "\n".join(lines) + "\n"


def _scenario_toml(s: GeneratorSettings) -> str:
    return (f"# Written by: {s.command()}\n"
            f"description = {_toml_string(f'{s.name}, need-first (the default model), full envelope')}\n"
            'instance = "."\n'
            'model = "need-first"\n'
            "\n[solver]\n"
            'backend = "highs"\n')
