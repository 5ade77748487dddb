"""``envelope export``: the exact MIP as MPS and LP. Each file, read back by HiGHS and by CBC and solved,
gives Envelope's own optimum (sense and objective offset kept); names are safe and unique whatever the
ids and platform names; the files are written atomically, never over an input or a file export did not
write; a bad --format exits 2."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import highspy
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from solver.api import solve
from solver.backends import backends_with, get_backend
from solver.backends.base import SolveOptions
from solver.cli import main
from solver.data.generate import GeneratorSettings, generate
from solver.data.scenario import Scenario, load_scenario
from solver.errors import BackendError
from solver.mip.formulation import formulate
from solver.present.export import SAFE_NAME, safe_names, write_export
from solver.present.outputs import read_table

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "instances" / "tiny" / "baseline.toml"


def run(args: list[str]) -> Result:
    return CliRunner().invoke(main, args)


def export(scenario: Path, fmt: str, out: Path) -> Path:
    result = run(["export", str(scenario), "--format", fmt, "-o", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    return out


def highs_optimum(path: Path) -> tuple[float, highspy.HighsLp]:
    """Read a model file with HiGHS, solve it to a zero gap; (objective with offset, the model read)."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    assert h.readModel(str(path)) == highspy.HighsStatus.kOk
    h.setOptionValue("mip_rel_gap", 0.0)
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return float(h.getInfo().objective_function_value), h.getLp()


def cbc_optimum(path: Path) -> float:
    """Solve a model file with the CBC binary that ships with PuLP. CBC 2.10 ignores an MPS file's
    OBJSENSE section, so it is told to maximise (-max); it reads the LP file's 'max' itself."""
    import warnings

    import pulp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # PULP_CBC_CMD is deprecated for PuLP 4
        cbc = pulp.apis.PULP_CBC_CMD().path
    args = [cbc, str(path)] + (["-max"] if path.suffix == ".mps" else []) + ["-ratio", "0", "-solve", "-quit"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False).stdout
    assert "Result - Optimal solution found" in out, out[-2000:]
    return float(re.search(r"Objective value:\s+(\S+)", out)[1])


def envelope_optimum(scenario: Scenario) -> float:
    outcome = solve(scenario, mip_gap=0.0)
    assert outcome.status.value == "optimal"
    return outcome.objective


def generated(tmp_path: Path, model: str = "need-first") -> Path:
    """A small England-like generated instance (3 systems × 3 trusts × 4 projects) and its scenario."""
    folder = tmp_path / "gen"
    folder.mkdir()
    for name, text in generate(GeneratorSettings(3, 3, 4, 3, 0.3, seed=5)).files().items():
        (folder / name).write_text(text)
    if model != "need-first":
        scenario = folder / "scenario.toml"
        scenario.write_text(scenario.read_text().replace('model = "need-first"', f'model = "{model}"'))
    return folder / "scenario.toml"


# --------------------------------------------------------------------------- the optimum, by two other readers


@pytest.mark.parametrize("fmt", ["mps", "lp"])
@pytest.mark.parametrize("case", ["tiny", pytest.param("generated", marks=pytest.mark.slow),
                                  pytest.param("fair-share", marks=pytest.mark.slow)])
def test_the_exported_mip_has_envelopes_optimum_in_highs_and_cbc(tmp_path: Path, fmt: str, case: str) -> None:
    scenario = TINY if case == "tiny" else generated(tmp_path, "need-first" if case == "generated" else case)
    own = envelope_optimum(load_scenario(scenario))
    assert own > 1.0                    # a maximisation read as a minimisation would give 0 (fund nothing) or less
    path = export(scenario, fmt, tmp_path / f"model.{fmt}")
    got, lp = highs_optimum(path)
    assert lp.sense_ == highspy.ObjSense.kMaximize
    assert got == pytest.approx(own, rel=1e-6)
    assert cbc_optimum(path) == pytest.approx(own, rel=1e-6)
    form = formulate(load_scenario(scenario))
    assert lp.num_col_ == form.model.n_cols
    assert lp.num_row_ == form.model.n_rows
    assert int(np.sum(np.asarray(lp.integrality_) != highspy.HighsVarType.kContinuous)) == form.model.n_integer


@pytest.mark.parametrize("fmt", ["mps", "lp"])
def test_the_sense_and_the_offset_are_written(tmp_path: Path, fmt: str) -> None:
    """A model with a constant in its objective: both readers see it (its own optimum includes it), and
    the MPS file says OBJSENSE MAX with the offset as the objective row's RHS (minus it, by convention)."""
    model = formulate(load_scenario(TINY)).model
    shifted = model.extended(objective=(model.c, 12.5))
    result = get_backend("highs").solve(shifted, SolveOptions(mip_gap=0.0))
    assert result.objective is not None
    assert result.objective > 12.5 + 1
    path = tmp_path / f"offset.{fmt}"
    done = write_export(shifted, path, fmt, title="tiny with an offset")
    assert done.offset == 12.5
    got, lp = highs_optimum(path)
    assert lp.offset_ == pytest.approx(12.5)
    assert got == pytest.approx(result.objective, rel=1e-9)
    assert cbc_optimum(path) == pytest.approx(result.objective, rel=1e-6)
    text = path.read_text()
    if fmt == "mps":
        assert re.search(r"^OBJSENSE\s*\n\s+MAX\s*$", text, re.M)
        assert re.search(r"^\s+\S+\s+Obj\s+-12\.5\s*$", text, re.M)
    else:
        assert re.search(r"^max\s*$", text, re.M)
        assert "+12.5" in text
        assert re.search(r"^binary\s*$", text, re.M)
        assert not re.search(r"^bin\s*$", text, re.M)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["mps", "lp"])
def test_england_exports_and_reads_back(tmp_path: Path, fmt: str) -> None:
    scenario = ROOT / "instances" / "england" / "cut-350m.toml"
    path = export(scenario, fmt, tmp_path / f"england.{fmt}")
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    assert h.readModel(str(path)) == highspy.HighsStatus.kOk
    form = formulate(load_scenario(scenario))
    lp = h.getLp()
    assert (lp.num_col_, lp.num_row_) == (form.model.n_cols, form.model.n_rows)
    h.setOptionValue("mip_rel_gap", 1e-3)
    h.run()
    own = solve(load_scenario(scenario), mip_gap=1e-3)
    assert h.getInfo().objective_function_value == pytest.approx(own.objective, rel=2e-3)


# --------------------------------------------------------------------------- names


def hostile(tmp_path: Path) -> Path:
    """The tiny instance with ids that sanitise alike (A-1, A_1), ids starting with '-' and '.', and
    platform names with spaces, brackets, a comma, quotes and an accent."""
    folder = tmp_path / "hostile"
    shutil.copytree(TINY.parent, folder)
    rename = {"OPT-A2": "A-1", "OPT-B1": "A_1", "FAX-B2": "-X.9", "SCR-A": ".sc", "EPR-A1": "a-1"}
    platforms = {"Epic": 'Ep ic [v2], "new" é', "Cerner": "Cer-ner<>"}
    for name in ("projects.csv", "costs.csv", "dependencies.csv", "organisations.csv"):
        frame = pd.read_csv(folder / name, dtype=str, keep_default_na=False)
        for col in ("project_id", "requires", "group"):
            if col in frame:
                frame[col] = frame[col].replace(rename)
        if "platform" in frame:
            frame["platform"] = frame["platform"].replace(platforms)
        frame.to_csv(folder / name, index=False)
    return folder / "baseline.toml"


@pytest.mark.parametrize("fmt", ["mps", "lp"])
def test_names_are_safe_unique_and_mapped(tmp_path: Path, fmt: str) -> None:
    scenario = hostile(tmp_path)
    sc = load_scenario(scenario)
    model = formulate(sc).model
    assert any("[" in n and " " in n for n in model.col_names)        # platform[A,Ep ic [v2], "new" é]
    path = export(scenario, fmt, tmp_path / f"h.{fmt}")
    got, lp = highs_optimum(path)
    assert got == pytest.approx(envelope_optimum(sc), rel=1e-6)
    names = read_table(Path(f"{path}.names.csv"))
    cols, rows = names[names["kind"] == "col"], names[names["kind"] == "row"]
    if fmt == "mps":   # an LP file lists columns as they first appear in the objective and rows, not in order
        assert list(cols["name"]) == list(lp.col_names_)
        assert list(rows["name"]) == list(lp.row_names_)
    assert sorted(cols["name"]) == sorted(lp.col_names_)
    assert sorted(rows["name"]) == sorted(lp.row_names_)
    assert list(cols["original"]) == list(model.col_names)
    assert list(rows["original"]) == list(model.row_names)
    every = list(cols["name"]) + list(rows["name"])
    assert all(SAFE_NAME.fullmatch(n) for n in every), [n for n in every if not SAFE_NAME.fullmatch(n)]
    assert len({n.lower() for n in every} | {"obj"}) == len(every) + 1
    assert {"x_A_1_2025", "x_A_1_2025_2", "once_A_1_2", "x__X.9_2025", "mandatory__X.9", "x_.sc_2026",
            "platform_A_Ep_ic__v2____new", "platform_B_Cer_ner", "dependency_.sc__a_1_2026"} <= set(every)
    assert names.iloc[0]["kind"] == "objective"
    assert "maximise" in names.iloc[0]["meaning"]
    x = cols[cols["original"] == "x[A-1@2025]"].iloc[0]
    assert x["meaning"] == "1 if project A-1 is funded, starting in 2025"
    assert cbc_optimum(path) == pytest.approx(got, rel=1e-6)


def test_safe_names_handles_collisions_length_and_keywords() -> None:
    long = "x[" + "P" * 300 + "@2026]"
    cols, rows = safe_names(["x[a-b@1]", "x[a_b@1]", "x[a_b_1]", long, long.replace("2026", "2027"), "9lives", "e"],
                            ["obj", "OBJ[1]", "budget[é]"])
    every = cols + rows
    assert cols[:3] == ["x_a_b_1", "x_a_b_1_2", "x_a_b_1_3"]
    assert all(SAFE_NAME.fullmatch(n) for n in every)
    assert len(set(every)) == len(every)
    assert len(cols[3]) == 255
    assert cols[3] != cols[4]
    assert cols[5] == "c_9lives"
    assert cols[6] == "e_"
    assert rows[0] == "obj_"
    assert rows[1] == "OBJ_1"
    assert rows[2] == "budget"


# --------------------------------------------------------------------------- writing safely


def test_a_second_export_replaces_the_first_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    out = tmp_path / "m.lp"
    export(TINY, "lp", out)
    first = out.read_text()
    export(TINY, "lp", out)
    assert out.read_text() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.lp", "m.lp.names.csv"]


def test_a_failed_write_leaves_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "m.mps"
    export(TINY, "mps", out)
    before = (out.read_bytes(), Path(f"{out}.names.csv").read_bytes())
    from solver.backends.highs import HighsBackend

    def half(self: object, model: object, path: str, fmt: str, comment: str = "") -> None:
        Path(path).write_text("NAME half\n")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(HighsBackend, "write_model", half)
    result = run(["export", str(TINY), "--format", "mps", "-o", str(out)])
    assert result.exit_code == 2
    assert "No space left" in result.stderr
    assert (out.read_bytes(), Path(f"{out}.names.csv").read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.mps", "m.mps.names.csv"]


def test_an_input_or_a_foreign_file_is_never_overwritten(tmp_path: Path) -> None:
    folder = tmp_path / "tiny"
    shutil.copytree(TINY.parent, folder)
    scenario = folder / "baseline.toml"
    before = scenario.read_bytes()
    result = run(["export", str(scenario), "--format", "lp", "-o", str(scenario)])
    assert result.exit_code == 2
    assert "an input of this run" in result.stderr
    assert scenario.read_bytes() == before
    notes = tmp_path / "notes.lp"
    notes.write_text("my own model\n")
    result = run(["export", str(scenario), "--format", "lp", "-o", str(notes)])
    assert result.exit_code == 2
    assert "not written by envelope export" in result.stderr
    assert notes.read_text() == "my own model\n"
    result = run(["export", str(scenario), "--format", "lp", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "is a directory" in result.stderr


@pytest.mark.parametrize(("model", "phrase"), [("greedy-need", "makes its plan by a rule"),
                                               ("levelling-up", "tiered objective (5 tiers"),
                                               ("max-min", "tiered objective (2 tiers")])
def test_a_policy_that_is_not_one_mip_is_refused(tmp_path: Path, model: str, phrase: str) -> None:
    """A rule-based baseline solves no MIP, and a tiered (lexicographic) objective solves several."""
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'instance = "{TINY.parent.as_posix()}"\nmodel = "{model}"\n')
    result = run(["export", str(scenario), "--format", "lp", "-o", str(tmp_path / "m.lp")])
    assert result.exit_code == 2, result.output
    assert phrase in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


@pytest.mark.parametrize("fmt", ["xlsx", "", "mpsx"])
def test_a_bad_format_exits_2(tmp_path: Path, fmt: str) -> None:
    result = run(["export", str(TINY), "--format", fmt, "-o", str(tmp_path / "m")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert "--format" in lines[0]
    assert "mps, lp" in lines[0]
    assert not any(tmp_path.iterdir())


def test_the_default_file_and_the_capability(tmp_path: Path) -> None:
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path):
        result = runner.invoke(main, ["export", str(TINY), "--format", "MPS"])
        assert result.exit_code == 0, result.output
        assert Path("out/baseline.mps").is_file()
        assert Path("out/baseline.mps.names.csv").is_file()
        assert "maximise" in result.stdout
    assert "highs" in backends_with("writes")
    assert get_backend("highs").capabilities.writes == frozenset({"mps", "lp"})
    assert get_backend("cbc").capabilities.writes == frozenset()
    with pytest.raises(BackendError, match="does not write MPS files; backends that can: highs"):
        get_backend("cbc").write_model(formulate(load_scenario(TINY)).model, str(tmp_path / "m.mps"), "mps")
