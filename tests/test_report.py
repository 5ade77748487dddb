"""``envelope report`` and ``--report``: which sections appear given which data exists, escaping of
hostile names, the figure files, refusals, and the Lorenz curves against the Gini coefficient.
(Opening the page in a real browser: tests/test_report_browser.py.)"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from solver.cli import main
from solver.present.html_report import build_report, lorenz_points
from solver.present.results import read_result

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "instances" / "tiny"
HOSTILE = "<script>alert(1)</script>"
HOSTILE_SYSTEM = '<img src=x onerror="alert(2)">'


def run(*args: str) -> object:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def section_ids(html: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)">', html)


def cut_scenario(tmp_path: Path, instance: Path = TINY) -> Path:
    """A scenario on ``instance`` with 3 of its first year's capital cut, naming tiny's baseline."""
    (tmp_path / "base.toml").write_text(f'instance = "{instance.as_posix()}"\nmodel = "need-first"\n'
                                        "[solver]\nmip_gap = 0\n")
    path = tmp_path / "cut.toml"
    path.write_text(f'instance = "{instance.as_posix()}"\nmodel = "need-first"\nbaseline = "base.toml"\n'
                    "[[envelope.cuts]]\nyear = 2025\npot = \"capital\"\namount = 3.0\n[solver]\nmip_gap = 0\n")
    return path


def test_solve_report_has_the_plan_sections_and_no_baseline_section_without_one(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = run("solve", TINY / "baseline.toml", "-o", out, "--report")
    assert r.exit_code == 0, r.output
    html = (out / "report.html").read_text(encoding="utf-8")
    assert section_ids(html) == ["headline", "allocation", "spend", "misses", "categories"]
    assert "report.html" in r.output
    assert html.count("<svg") == 3                          # allocation, spend, categories
    assert "<script" not in html
    assert "http://" not in html.replace("http://www.w3.org", "")
    # the headline states what a planner needs first: envelope, spent, unspent, status, rules in force
    for text in ("Envelope per year and pot", "Rules in force", "proved optimal", "Access fee 3.5%", "Unspent"):
        assert text in html, text
    # the same page, byte for byte, as envelope report makes later from the folder
    again = tmp_path / "again.html"
    r2 = run("report", out, "-o", again)
    assert r2.exit_code == 0, r2.output
    assert again.read_text(encoding="utf-8") == html


def test_a_scenario_with_a_baseline_gets_the_changes_section(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = run("solve", cut_scenario(tmp_path), "-o", out, "--report")
    assert r.exit_code == 0, r.output
    html = (out / "report.html").read_text(encoding="utf-8")
    assert section_ids(html)[-1] == "changes"
    assert "The change" in html
    assert "−£3.0m" in html
    assert "By category" in html
    assert "By kind of project" in html


def test_hostile_names_are_text_never_markup(tmp_path: Path) -> None:
    inst = tmp_path / "inst"
    shutil.copytree(TINY, inst)
    projects = pd.read_csv(inst / "projects.csv", dtype=str, keep_default_na=False)
    projects["name"] = [f"{HOSTILE} {i}" for i in range(len(projects))]     # every table that names a project
    projects.to_csv(inst / "projects.csv", index=False)
    systems = pd.read_csv(inst / "systems.csv", dtype=str, keep_default_na=False)
    systems.loc[0, "name"] = HOSTILE_SYSTEM
    systems.to_csv(inst / "systems.csv", index=False)
    out = tmp_path / "out"
    r = run("solve", cut_scenario(tmp_path, inst), "-o", out, "--report")
    assert r.exit_code == 0, r.output
    html = (out / "report.html").read_text(encoding="utf-8")
    assert HOSTILE not in html
    assert "<img" not in html
    assert "onerror=\"" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; " in html
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in html
    assert "<script" not in html                               # the page has no script of its own either


def test_spend_and_categories_add_up_with_the_fee_paid_by_the_centre(tmp_path: Path) -> None:
    """The spend table's national money is budget.csv's spent (the centre's fee included); category shares
    cover all national money, system-wide projects included."""
    scen = tmp_path / "centre.toml"
    scen.write_text(f'instance = "{TINY.as_posix()}"\nmodel = "need-first"\n'
                    '[overrides]\nfee = { payer = "centre" }\n')
    out = tmp_path / "out"
    assert run("solve", scen, "-o", out, "--report").exit_code == 0
    result = read_result(out)
    page = build_report([result])
    spend = next(t for s in page.sections for t in s.tables if t.caption.startswith("Spend per year"))
    budget = result.tables["budget"]
    for row, year in zip(spend.rows, sorted(budget["year"].unique())):
        b = budget[budget["year"] == year].set_index("pot")["spent"]
        assert row[spend.headers.index("National capital spent")] == f"£{b['capital']:,.1f}m"
        assert row[spend.headers.index("National revenue spent")] == f"£{b['revenue']:,.1f}m"
    cats = next(t for s in page.sections for t in s.tables if t.caption == "National money by category")
    plan = result.tables["plan"]
    total = float(plan["national_capital"].sum() + plan["national_revenue"].sum())
    shown = sum(float(r[cats.headers.index("This plan")].strip("£m").replace(",", "")) for r in cats.rows)
    assert shown == pytest.approx(total, abs=0.05 * len(cats.rows))


def test_a_plan_funding_nothing_a_rule_based_plan_and_unique_section_ids(tmp_path: Path) -> None:
    nothing = tmp_path / "nothing.toml"
    nothing.write_text(f'instance = "{TINY.as_posix()}"\nmodel = "need-first"\n[envelope]\nscale = 0.0\n'
                       '[overrides]\nmandatory = { enabled = false }\ncommitments = { mode = "ignore" }\n')
    rule = tmp_path / "rule.toml"
    rule.write_text(f'instance = "{TINY.as_posix()}"\nmodel = "capitation"\n')
    for scen, expected in ((nothing, "0 of 10"), (rule, "a rule&#39;s plan: no bound claimed")):
        out = tmp_path / scen.stem
        r = run("solve", scen, "-o", out, "--report", "--xlsx")
        assert r.exit_code == 0, r.output
        assert expected in (out / "report.html").read_text(encoding="utf-8")
        assert (out / "results.xlsx").stat().st_size > 0
    # a solve with a baseline and the diff of the same two plans: both have a changes section, ids stay unique
    cut = cut_scenario(tmp_path)
    assert run("solve", cut, "-o", tmp_path / "cut").exit_code == 0
    assert run("diff", tmp_path / "base.toml", cut, "-o", tmp_path / "diff").exit_code == 0
    html = build_report([read_result(tmp_path / "cut"), read_result(tmp_path / "diff")]).html
    ids = section_ids(html)
    assert "changes" in ids
    assert "changes-2" in ids
    assert len(ids) == len(set(ids))


def test_a_failing_report_still_writes_the_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import solver.present.html_report as html_report

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(html_report, "build_report", broken)
    out = tmp_path / "out"
    r = run("solve", TINY / "baseline.toml", "-o", out, "--report")
    assert r.exit_code == 1
    assert "the tables were written, but report.html could not be made" in r.output
    assert (out / "plan.csv").exists()
    assert not (out / "report.html").exists()


def test_report_refuses_what_it_does_not_own_and_names_bad_folders(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("solve", TINY / "baseline.toml", "-o", out).exit_code == 0
    mine = tmp_path / "notes.html"
    mine.write_text("my own notes")
    r = run("report", out, "-o", mine)
    assert r.exit_code == 2
    assert "is not an Envelope report" in r.output
    assert mine.read_text() == "my own notes"
    ours = tmp_path / "ours.html"
    assert run("report", out, "-o", ours).exit_code == 0
    assert run("report", out, out, "-o", ours).exit_code == 0     # an unedited report is replaced; a folder twice
    assert len(section_ids(ours.read_text(encoding="utf-8"))) == 5                # is reported once
    ours.write_text(ours.read_text(encoding="utf-8").replace("Envelope report", "Board paper"), encoding="utf-8")
    edited = ours.read_text(encoding="utf-8")
    r = run("report", out, "-o", ours)
    assert r.exit_code == 2
    assert "nobody has edited since" in r.output
    assert ours.read_text(encoding="utf-8") == edited
    r = run("report", tmp_path / "missing", "-o", tmp_path / "r.html")
    assert r.exit_code == 2
    assert "missing" in r.output
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run("report", empty, "-o", tmp_path / "r.html")
    assert r.exit_code == 2
    assert "summary.json" in r.output
    (empty / "summary.json").write_text("{not json")
    r = run("report", empty, "-o", tmp_path / "r.html")
    assert r.exit_code == 2
    assert "summary.json" in r.output
    assert "JSON" in r.output
    assert not (tmp_path / "r.html").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".envelope-file-")]   # no temporary left


def test_a_result_folder_edited_out_of_shape_is_bad_input(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("solve", TINY / "baseline.toml", "-o", out).exit_code == 0
    plan = pd.read_csv(out / "plan.csv").drop(columns=["national_capital"])
    plan.to_csv(out / "plan.csv", index=False)
    r = run("report", out, "-o", tmp_path / "r.html")
    assert r.exit_code == 2, r.output
    assert "cannot be reported" in r.output
    assert "national_capital" in r.output
    assert not (tmp_path / "r.html").exists()


def test_figures_are_written_as_png_and_svg(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("solve", TINY / "baseline.toml", "-o", out).exit_code == 0
    r = run("report", out, "-o", tmp_path / "r.html", "--figures", tmp_path / "figs")
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (tmp_path / "figs").iterdir() if not p.name.startswith("."))
    assert names == ["allocation.png", "allocation.svg", "categories.png", "categories.svg", "spend.png", "spend.svg"]
    assert (tmp_path / "figs" / "spend.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "figs" / "spend.svg").read_text().lstrip().startswith("<?xml")


def test_lorenz_curve_gives_the_gini_of_the_metrics() -> None:
    """The report's Lorenz curve and compare's Gini coefficient are one definition: Gini = 1 − 2·(area under)."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(2, 30))
        money = rng.gamma(1.0, 5.0, n) * (rng.random(n) > 0.2)
        weights = rng.uniform(1e4, 1e6, n)
        if money.sum() <= 0:
            continue
        x, y = lorenz_points(money, weights)
        area = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))
        w = weights / weights.sum()
        v = money / weights
        mean = float(w @ v)
        gini = float((w[:, None] * w[None, :] * np.abs(v[:, None] - v[None, :])).sum() / (2 * mean))
        assert 1 - 2 * area == pytest.approx(gini, abs=1e-9)


def test_empty_results_list_and_a_result_of_every_kind_without_rows(tmp_path: Path) -> None:
    """A result whose tables have no rows gives its section without a figure, never an error."""
    from solver.present.results import Result

    with pytest.raises(ValueError, match="at least one"):
        build_report([])
    empty = {"kind": "robust", "tables": {"projects": pd.DataFrame(columns=["project_id", "name", "core_index",
                                                                              "ci_low", "ci_high", "nominal_funded"])}}
    page = build_report([Result(kind=empty["kind"], name="r", path=str(tmp_path), tables=empty["tables"],
                                summary={"analysis": "robust", "scenario": {"name": "s"}})])
    assert section_ids(page.html) == ["robust"]
    assert "<svg" not in page.html


@pytest.mark.slow
def test_every_kind_of_result_gets_its_section(tmp_path: Path) -> None:
    """One report of a solve, the six analyses, a diff, a comparison and a batch: a section each."""
    scen = TINY / "baseline.toml"
    runs = {
        "solve": ["solve", scen],
        "ladder": ["ladder", scen, "--from", "1", "--to", "0.8", "--step", "0.1"],
        "value": ["value", scen],
        "rules": ["rules", scen],
        "robust": ["robust", scen, "--samples", "8"],
        "alternatives": ["alternatives", scen, "--k", "2", "--samples", "4"],
        "thresholds": ["thresholds", scen, "--k", "1"],
        "diff": ["diff", scen, cut_scenario(tmp_path)],
        "compare": ["compare", scen, "--models", "need-first", "--models", "fair-share", "--models", "capitation"],
    }
    folders = []
    for name, args in runs.items():
        folder = tmp_path / name
        r = run(*args, "-o", folder)
        assert r.exit_code == 0, (name, r.output)
        folders.append(folder)
    batch = tmp_path / "batch"
    r = run("batch", scen, "-o", batch, "--engine", "serial")
    assert r.exit_code == 0, r.output
    folders.append(batch)
    kinds = [read_result(f).kind for f in folders]
    assert kinds == [*runs, "batch"]
    out = tmp_path / "all.html"
    r = run("report", *folders, "-o", out)
    assert r.exit_code == 0, r.output
    ids = section_ids(out.read_text(encoding="utf-8"))
    for kind in ("headline", "ladder", "value", "rules", "robust", "alternatives", "thresholds", "changes",
                 "compare", "batch"):
        assert any(i.endswith(kind) for i in ids), (kind, ids)
    compare = read_result(tmp_path / "compare")
    gini = compare.tables["metrics"].set_index("policy")["gini"]
    for policy, block in compare.tables["systems"].groupby("policy"):      # the curves drawn give the Gini listed
        x, y = lorenz_points(block["allocation"].to_numpy(float), block["weighted_population"].to_numpy(float))
        assert 1 - float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]))) == pytest.approx(gini[policy], abs=1e-6)
    html = out.read_text(encoding="utf-8")
    assert "Lorenz curves" in html
    assert "Survival under cuts" in html
    assert "Core index" in html
    assert len(set(re.findall(r'\bid="([^"]+)"', html))) == len(re.findall(r'\bid="([^"]+)"', html))  # ids unique
