"""Compare allocation policies on the same scenarios with the same metrics (``envelope compare``).

Every (scenario, policy) pair is one task on the execution context: the scenario with its policy
model replaced whole (``variants.SetPolicy``), solved by the one pipeline (a rule-based policy is
allocated by its rule there). The reference policy (need-first unless told otherwise) is solved
for every scenario too: it is the yardstick of ``pct_of_need_first`` and of each policy's price.
A pair that fails (e.g. a rule that needs ballots on an instance without them) is a row with its
status and message; the others still complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from solver.analyses.engine import Analysis, Task, analysis_context, header, jsonable, solve_many
from solver.analyses.metrics import metrics
from solver.data.instance import read_toml
from solver.data.policy import Policy
from solver.data.scenario import Scenario, load_policy, load_scenario
from solver.data.variants import SetPolicy
from solver.errors import InputError
from solver.pipeline.outcome import Outcome
from solver.run.context import Context

REFERENCE = "need-first"


def load_models(refs: Sequence[str | Path], base_dir: Path | None = None) -> list[tuple[Policy, str]]:
    """Policy models by built-in name or path, validated, with their paths; refuses two with one name."""
    out: list[tuple[Policy, str]] = []
    seen: dict[str, str] = {}
    for ref in refs:
        text = str(ref)
        if text.endswith(".toml") and Path(text).is_file() and "instance" in read_toml(Path(text)):
            raise InputError(text, "is a scenario (it names an instance), not a policy model: give scenarios before "
                                   "--models, or the model a scenario uses (its 'model' key)")
        policy, path = load_policy(text, base_dir or Path.cwd())
        if policy.name in seen:
            first = next(p for p, where in out if p.name == policy.name)
            if first != policy:      # two models named alike may be one model (a built-in and its copy)
                raise InputError(path, f"policy name '{policy.name}' is also the name of {seen[policy.name]}, "
                                       "a different model; give each compared model its own name")
            continue
        seen[policy.name] = str(path)
        out.append((policy, str(path)))
    return out


def compare_policies(scenarios: Sequence[Scenario], models: Sequence[tuple[Policy, str]],
                     reference: str | Path = REFERENCE, context: Context | None = None,
                     workers: int = 1) -> Analysis:
    """Solve every scenario under every model and tabulate the metrics (``solver.analyses.metrics``).

    Tables: ``metrics`` (one row per scenario × policy, the reference first), ``prices`` (each policy against
    the reference and against fair-share when it is compared: benefit, category-0/1 money, systems below
    50% / 90% of fair share) and ``plans`` (every funded project of every plan: scenario, policy, project,
    start, national funding)."""
    if not scenarios:
        raise InputError(None, "compare needs at least one scenario")
    if not models:
        raise InputError(None, "compare needs at least one policy model (--models)")
    ref_policy, ref_path = load_models([reference])[0]
    for p, path in models:
        if p.name == ref_policy.name and p != ref_policy:
            raise InputError(path, f"policy name '{p.name}' is the reference's ({ref_path}), a different model; "
                                   "rename the model or pass it as --reference")
    policies = [(ref_policy, ref_path)] + [(p, path) for p, path in models if p.name != ref_policy.name]
    tasks = [Task(sc, ops=(SetPolicy.of(p, path),), label=f"{sc.name} / {p.name}")
             for sc in scenarios for p, path in policies]
    with analysis_context(context, workers) as ctx:
        outcomes = solve_many(tasks, ctx, label="comparing policies")
    rows, plans, systems = [], [], []
    n = len(policies)
    for i, sc in enumerate(scenarios):
        ref = outcomes[i * n]
        # fair shares on the baseline's envelope when the scenario names one (as solve does), else its own
        basis = load_scenario(sc.baseline).envelope if sc.baseline else None
        for (policy, _), o in zip(policies, outcomes[i * n:(i + 1) * n]):
            row = metrics(o, ref if ref.has_plan else None, basis)
            row["scenario"], row["policy"] = sc.name, policy.name
            rows.append(row)
            plans += _plan_rows(sc.name, policy.name, o)
            systems += _system_rows(sc.name, policy.name, o)
    table = pd.DataFrame(rows)
    prices = _prices(table, [ref_policy.name] + [n for n in ("fair-share",) if n != ref_policy.name
                                                  and n in {p.name for p, _ in policies}])
    first = ["scenario", "policy", "status", "objective", "need_first_value", "pct_of_need_first",
             "benefit_given_up", "cat01_money_change"]
    table = table[[c for c in first if c in table.columns] + [c for c in table.columns if c not in first]]
    summary = {
        **header(scenarios[0], "compare", {"models": [p.name for p, _ in policies], "reference": ref_policy.name,
                                           "scenarios": [s.name for s in scenarios]}),
        "policies": [{"name": p.name, "description": p.description, "model": path} for p, path in policies],
        "failed": jsonable([{k: r.get(k) for k in ("scenario", "policy", "status", "message")}
                            for r in rows if r["status"] not in ("optimal", "feasible", "heuristic")]),
    }
    return Analysis("compare", {
        "metrics": table, "prices": prices,
        "plans": pd.DataFrame(plans, columns=["scenario", "policy", "project_id", "start", "national_funding"]),
        "systems": pd.DataFrame(systems, columns=["scenario", "policy", "system_id", "name", "weighted_population",
                                                  "allocation"])}, summary)


PRICE_FIGURES = {"benefit": "need_first_value", "cat01_money": "cat01_money",
                 "systems_below_50pct": "systems_below_50pct", "systems_below_90pct": "systems_below_90pct"}


def _prices(table: pd.DataFrame, against: list[str]) -> pd.DataFrame:
    """What each policy gives up against each comparator on the same scenario (the reference, and fair-share
    when compared): yardstick benefit, category-0/1 money, and systems below 50% / 90% of fair share (each as
    policy minus comparator)."""
    t = table
    rows = []
    for scenario, block in t.groupby("scenario", sort=False):
        by = block.set_index("policy")
        for policy, r in by.iterrows():
            for other in against:
                if other == policy or other not in by.index:
                    continue
                row: dict[str, object] = {"scenario": scenario, "policy": policy, "against": other}
                for name, col in PRICE_FIGURES.items():
                    row[f"{name}_change"] = (r[col] - by.at[other, col]) if col in by.columns else float("nan")
                rows.append(row)
    return pd.DataFrame(rows, columns=["scenario", "policy", "against",
                                       *[f"{n}_change" for n in PRICE_FIGURES]])


def _system_rows(scenario: str, policy: object, o: Outcome) -> list[list[object]]:
    """National money per system of one plan, with the weighted population the inequality metrics use."""
    if not o.has_plan:
        return []
    s = o.scenario.instance.systems
    return [[scenario, policy, sid, name, float(wp), o.accounts.allocation[sid]]
            for sid, name, wp in zip(s["system_id"], s["name"], s["weighted_population"])]


def _plan_rows(scenario: str, policy: object, o: Outcome) -> list[list[object]]:
    """The funded projects of one plan, with their national funding."""
    if not o.has_plan or o.decisions is None:
        return []
    money = o.accounts.national()
    return [[scenario, policy, p, s, money.get(p, 0.0)] for p, s in sorted(o.decisions.starts.items())]
