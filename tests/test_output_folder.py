"""Output folders: Envelope only ever replaces a folder it wrote itself (it carries the
``.envelope-output`` marker) or an empty one; anything else at ``-o`` is refused with exit 2 and left
untouched. Folders and files get the usual permissions for the umask, and an unwritable location is
one clear message (exit 2), not a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from solver.cli import main
from solver.errors import InputError
from solver.present.outputs import MARKER, MARKER_TEXT, OutputFolderError, _tag, check_output_folder, write_folder

TINY = Path(__file__).resolve().parent.parent / "instances" / "tiny"
SOLVE_FILES = {"plan.csv", "systems.csv", "misses.csv", "trusts.csv", "budget.csv", "summary.json", "timing.json"}
FILES = {"a.csv": pd.DataFrame({"x": [1.0, 2.5]}), "s.json": {"ok": True}, "note.txt": "hello\n"}


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A private copy of the tiny instance (with its baseline scenario)."""
    folder = tmp_path / "tiny"
    shutil.copytree(TINY, folder)
    return folder


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def solve(scenario: Path, out: Path) -> Result:
    return CliRunner().invoke(main, ["solve", str(scenario), "-o", str(out)], catch_exceptions=False)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (recursively) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(result: Result) -> str:
    """Exit 2, a single line on stderr starting 'error: ', nothing on stdout, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def no_leftovers(parent: Path) -> None:
    """No temporary or set-aside folders and no lock file from a write are left next to the output."""
    assert not [p.name for p in parent.iterdir() if p.name.startswith(".envelope-")]


# --------------------------------------------------------------------------- refused: not ours


def test_non_empty_foreign_folder_is_refused_and_untouched(tiny: Path, tmp_path: Path) -> None:
    thesis = tmp_path / "thesis"
    (thesis / "chapters").mkdir(parents=True)
    (thesis / "thesis.docx").write_bytes(b"PK\x03\x04 four years of work")
    (thesis / "chapters" / "one.tex").write_text("\\chapter{One}\n")
    before = snapshot(thesis)

    message = one_error_line(solve(tiny / "baseline.toml", thesis))
    assert message == (f"error: {thesis.resolve()}: exists and is not an Envelope output folder "
                       f"(no {MARKER} file); choose another output folder (-o) or empty it")
    assert snapshot(thesis) == before
    assert sorted(p.name for p in thesis.iterdir()) == ["chapters", "thesis.docx"]  # no marker added either
    no_leftovers(tmp_path)


def test_instance_folder_and_working_directory_are_refused(tiny: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(tiny)
    message = one_error_line(solve(tiny / "baseline.toml", tiny))
    assert f"error: {tiny.resolve()}: contains {tiny / 'baseline.toml'}, an input of this run" in message
    assert snapshot(tiny) == before

    monkeypatch.chdir(tmp_path)  # `-o .` where the input lives
    message = one_error_line(solve(Path("tiny") / "baseline.toml", Path(".")))
    assert f"error: {tmp_path.resolve()}: contains {tmp_path / 'tiny' / 'baseline.toml'}, an input" in message
    assert snapshot(tiny) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]


def test_file_at_the_target_is_refused(tiny: Path, tmp_path: Path) -> None:
    target = tmp_path / "results"
    target.write_bytes(b"not a folder")
    with pytest.raises(InputError, match="exists and is a file, not a folder") as info:
        write_folder(target, FILES)
    assert info.value.exit_code == 2
    assert target.read_bytes() == b"not a folder"
    result = solve(tiny / "baseline.toml", target)  # the CLI refuses it too (click's own check)
    assert result.exit_code == 2, result.output
    assert target.read_bytes() == b"not a folder"
    no_leftovers(tmp_path)


def test_folder_that_gained_foreign_files_is_refused(tmp_path: Path) -> None:
    # a marker is what counts: a folder without one is not replaced even if it looks like an output
    target = tmp_path / "out"
    target.mkdir()
    (target / "plan.csv").write_text("mine\n")
    with pytest.raises(OutputFolderError, match="is not an Envelope output folder"):
        write_folder(target, FILES)
    assert snapshot(target) == {"plan.csv": b"mine\n"}


# --------------------------------------------------------------------------- accepted: ours, empty, new


def test_earlier_envelope_output_is_replaced_whole(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = solve(tiny / "baseline.toml", out)
    assert first.exit_code == 0, first.stderr
    assert {p.name for p in out.iterdir()} == SOLVE_FILES | {MARKER}
    before = snapshot(out)

    second = solve(tiny / "baseline.toml", out)
    assert second.exit_code == 0, second.stderr
    assert {p.name for p in out.iterdir()} == SOLVE_FILES | {MARKER}
    after = snapshot(out)
    for name in sorted(SOLVE_FILES - {"timing.json"} | {MARKER}):
        assert after[name] == before[name], name  # equal runs, byte-identical files (marker included)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "tiny"]


def test_an_output_folder_holding_what_envelope_did_not_write_there_is_refused(tiny: Path, tmp_path: Path) -> None:
    """The marker lists the run's files: a file or folder someone added (a board paper, notes) is never deleted
    by the next run into the folder, which refuses (exit 2) naming it; once moved out, the folder is replaced.
    A marker without a list (an older Envelope's) keeps the older rule: the folder is replaced whole."""
    out = tmp_path / "out"
    assert solve(tiny / "baseline.toml", out).exit_code == 0
    (out / "board-paper.html").write_text("mine")
    (out / "old-sub").mkdir()
    before = snapshot(out)
    refused = solve(tiny / "baseline.toml", out)
    assert refused.exit_code == 2
    assert "board-paper.html" in refused.stderr
    assert "old-sub" in refused.stderr
    assert snapshot(out) == before
    (out / "board-paper.html").unlink()
    (out / "old-sub").rmdir()
    assert solve(tiny / "baseline.toml", out).exit_code == 0
    (out / MARKER).write_text(MARKER_TEXT)            # an older version's marker: no list
    (out / "stale.txt").write_text("left from an older run")
    assert solve(tiny / "baseline.toml", out).exit_code == 0
    assert {p.name for p in out.iterdir()} == SOLVE_FILES | {MARKER}


def test_what_a_file_manager_leaves_and_envelope_reports_do_not_block_a_rerun(tiny: Path, tmp_path: Path) -> None:
    """.DS_Store, Thumbs.db and unedited reports or workbooks Envelope wrote are not anybody's work: the next run
    replaces the folder; a folder named like a listed file is somebody's, and is refused, kept."""
    out = tmp_path / "out"
    assert solve(tiny / "baseline.toml", out).exit_code == 0
    (out / ".DS_Store").write_bytes(b"\0")
    (out / "Thumbs.db").write_bytes(b"\0")
    report = CliRunner().invoke(main, ["report", str(out), "-o", str(out / "board.html")])
    assert report.exit_code == 0, report.output
    assert solve(tiny / "baseline.toml", out).exit_code == 0
    assert {p.name for p in out.iterdir()} == SOLVE_FILES | {MARKER}
    (out / "plan.csv").unlink()
    (out / "plan.csv").mkdir()                              # listed as a file, found as a folder: not ours
    (out / "plan.csv" / "mine.txt").write_text("mine")
    refused = solve(tiny / "baseline.toml", out)
    assert refused.exit_code == 2
    assert "plan.csv" in refused.stderr
    assert (out / "plan.csv" / "mine.txt").read_text() == "mine"


def test_empty_existing_folder_is_used(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    result = solve(tiny / "baseline.toml", out)
    assert result.exit_code == 0, result.stderr
    assert {p.name for p in out.iterdir()} == SOLVE_FILES | {MARKER}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "tiny"]


def test_every_written_folder_carries_the_same_marker(tmp_path: Path) -> None:
    a = write_folder(tmp_path / "a", FILES)
    b = write_folder(tmp_path / "deeper" / "b", FILES)  # missing parents are created
    assert snapshot(a) == snapshot(b)
    assert (a / MARKER).is_file()
    assert check_output_folder(a) == a.resolve()
    with pytest.raises(ValueError, match=MARKER):
        write_folder(tmp_path / "c", {**FILES, MARKER: "x"})


# --------------------------------------------------------------------------- permissions


def test_permissions_follow_the_umask(tmp_path: Path, umask_022: None) -> None:
    for target in (tmp_path / "new", tmp_path / "new"):  # first written, then replaced
        write_folder(target, FILES)
        assert target.stat().st_mode & 0o777 == 0o755
        modes = {p.name: p.stat().st_mode & 0o777 for p in target.iterdir()}
        assert modes == {name: 0o644 for name in [*FILES, MARKER]}
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o755)
    write_folder(empty, FILES)
    assert empty.stat().st_mode & 0o777 == 0o755
    nested = write_folder(tmp_path / "p" / "q" / "r", FILES)
    assert (tmp_path / "p").stat().st_mode & 0o777 == 0o755
    assert nested.stat().st_mode & 0o777 == 0o755


def test_solve_output_permissions_follow_the_umask(tiny: Path, tmp_path: Path, umask_022: None) -> None:
    out = tmp_path / "out"
    result = solve(tiny / "baseline.toml", out)
    assert result.exit_code == 0, result.stderr
    assert out.stat().st_mode & 0o777 == 0o755
    assert {p.stat().st_mode & 0o777 for p in out.iterdir()} == {0o644}


# --------------------------------------------------------------------------- unwritable locations


def test_parent_that_is_a_file_gives_one_clear_message(tiny: Path, tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    target = afile / "out"
    message = one_error_line(solve(tiny / "baseline.toml", target))
    assert message == (f"error: {target.resolve()}: cannot write the output folder "
                       f"(creating {afile.resolve()}): {afile.resolve()} is a file, not a folder")
    assert afile.read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "tiny"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="needs POSIX permissions and a non-root user (root writes into 0o555 folders)")
def test_read_only_parent_gives_one_clear_message(tiny: Path, tmp_path: Path) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        message = one_error_line(solve(tiny / "baseline.toml", parent / "out"))
        assert message.startswith(f"error: {(parent / 'out').resolve()}: cannot write the output folder")
        assert "Permission denied" in message
        assert list(parent.iterdir()) == []
    finally:
        parent.chmod(0o755)


def test_permission_denied_gives_one_clear_message(tiny: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # what a read-only parent does for a non-root user, simulated so that it also runs as root
    real = Path.mkdir

    def denied(self: Path, *args: object, **kwargs: object) -> None:
        if self.parent == tmp_path.resolve() and self.name.startswith(".envelope-tmp-"):
            raise PermissionError(13, "Permission denied", str(self))
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "mkdir", denied)
    message = one_error_line(solve(tiny / "baseline.toml", tmp_path / "out"))
    assert message == (f"error: {(tmp_path / 'out').resolve()}: cannot write the output folder "
                       f"(creating a temporary folder in {tmp_path.resolve()}): Permission denied")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]


def test_failure_while_writing_is_input_error_and_keeps_the_previous_output(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out"
    write_folder(target, FILES)
    before = snapshot(target)
    real = Path.write_text

    def full(self: Path, *args: object, **kwargs: object) -> int:
        if self.name == "note.txt":
            raise OSError(28, "No space left on device", str(self))
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(InputError) as info:
        write_folder(target, {**FILES, "more.csv": pd.DataFrame({"y": [1.0]})})
    assert str(info.value) == (f"{target.resolve()}: cannot write the output folder (writing note.txt): "
                               "No space left on device")
    assert info.value.exit_code == 2
    assert isinstance(info.value, OSError)  # callers that caught the OS error still do
    assert snapshot(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# --------------------------------------------------------------------------- an output folder holding an input


def earlier_output_holding(tiny: Path, tmp_path: Path, *, what: str) -> tuple[Path, Path]:
    """An earlier Envelope output ``out`` that then received the scenario, the instance or the
    model of the next run; returns (out, scenario)."""
    out = tmp_path / "out"
    assert solve(tiny / "baseline.toml", out).exit_code == 0
    text = (tiny / "baseline.toml").read_text()
    if what == "scenario":
        scenario = out / "baseline.toml"
        scenario.write_text(text.replace('instance = "."', f'instance = "{tiny.as_posix()}"'))
    elif what == "instance":
        shutil.copytree(tiny, out / "inst")
        scenario = tmp_path / "s.toml"
        scenario.write_text(text.replace('instance = "."', 'instance = "out/inst"'))
    elif what == "model":
        shutil.copy(TINY.parent.parent / "models" / "need-first.toml", out / "m.toml")
        scenario = tiny / "s.toml"
        scenario.write_text(text.replace('model = "need-first"', f'model = "{(out / "m.toml").as_posix()}"'))
    else:  # the scenario reached through a link outside the folder
        (out / "real.toml").write_text(text.replace('instance = "."', f'instance = "{tiny.as_posix()}"'))
        scenario = tmp_path / "link.toml"
        scenario.symlink_to(out / "real.toml")
    return out, scenario


@pytest.mark.parametrize(("what", "named"), [("scenario", "baseline.toml"), ("instance", "inst/instance.toml"),
                                             ("model", "m.toml"), ("link", "real.toml")])
@pytest.mark.parametrize("command", ["solve", "rules"])
def test_output_folder_holding_an_input_is_refused_before_solving(
        tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str, named: str, command: str) -> None:
    out, scenario = earlier_output_holding(tiny, tmp_path, what=what)
    before = snapshot(out)

    def no_solving(*args: object, **kwargs: object) -> None:
        raise AssertionError("solved before refusing the output folder")

    monkeypatch.setattr("solver.api.solve", no_solving)
    monkeypatch.setattr("solver.analyses.prices.rule_prices", no_solving, raising=False)
    result = CliRunner().invoke(main, [command, str(scenario), "-o", str(out)], catch_exceptions=False)
    message = one_error_line(result)
    assert message.startswith(f"error: {out.resolve()}: contains {out.resolve()}/{named}"), message
    assert message.endswith(", which writing the output would delete; "
                            "choose another output folder (-o)")
    assert snapshot(out) == before
    no_leftovers(tmp_path)


def test_write_folder_refuses_a_folder_holding_an_input(tmp_path: Path) -> None:
    out = write_folder(tmp_path / "out", FILES)
    (out / "scenario.toml").write_text("instance = '.'\n")
    before = snapshot(out)
    for target in (out, tmp_path):  # the folder holding the input, and a folder holding that folder
        with pytest.raises(OutputFolderError, match="an input of this run"):
            write_folder(target, FILES, inputs=[out / "scenario.toml"])
    assert snapshot(out) == before
    write_folder(out / "deeper", FILES, inputs=[out / "scenario.toml"])  # inside the input's folder: fine


def test_output_folder_inside_the_instance_folder_is_fine(tiny: Path) -> None:
    before = snapshot(tiny)
    result = solve(tiny / "baseline.toml", tiny / "out")
    assert result.exit_code == 0, result.stderr
    assert {k: v for k, v in snapshot(tiny).items() if not k.startswith("out/")} == before


# --------------------------------------------------------------------------- names, links, deep documents


@pytest.mark.parametrize("length", [242, 250, 255])
def test_longest_legal_folder_names_are_written_and_replaced(tmp_path: Path, length: int) -> None:
    target = tmp_path / ("n" * length)
    for _ in range(2):  # written, then replaced
        assert write_folder(target, FILES) == target.resolve()
        assert {p.name for p in target.iterdir()} == {*FILES, MARKER}
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


@pytest.mark.parametrize("where", ["output", "output-below", "instance", "model", "scenario", "output-too-long"])
def test_link_loops_and_overlong_paths_are_bad_input(tiny: Path, tmp_path: Path, where: str) -> None:
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    text = (tiny / "baseline.toml").read_text()
    scenario, out = tiny / "baseline.toml", tmp_path / "out"
    if where == "output":
        out = tmp_path / "loop1"
    elif where == "output-below":
        out = tmp_path / "loop1" / "out"
    elif where == "output-too-long":
        out = tmp_path.joinpath(*["d" * 200] * 25)  # longer than PATH_MAX (4096)
    elif where == "instance":
        scenario = tiny / "s.toml"
        scenario.write_text(text.replace('instance = "."', 'instance = "../loop1"'))
    elif where == "model":
        scenario = tiny / "s.toml"
        scenario.write_text(text.replace('model = "need-first"', 'model = "../loop1/m.toml"'))
    else:
        scenario = tmp_path / "loop1" / "baseline.toml"
    message = one_error_line(solve(scenario, out))
    if where.startswith("output") and where != "output-too-long":
        assert message == f"error: {out}: cannot use this output folder: symbolic link loop"
    elif where == "output-too-long":
        assert "File name too long" in message
    elif where == "scenario":
        assert message == f"error: {scenario}: cannot read file (symbolic link loop)"
    else:
        key = "instance" if where == "instance" else "model"
        assert message == f"error: {scenario}: key '{key}': not a usable path (symbolic link loop)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop1", "loop2", "tiny"]


@pytest.mark.parametrize("depth", [500, 5000])
@pytest.mark.parametrize("where", ["scenario", "overrides", "model", "instance"])
def test_deeply_nested_toml_is_bad_input(tiny: Path, tmp_path: Path, where: str, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    scenario = tiny / "baseline.toml"
    if where == "scenario":
        scenario.write_text(scenario.read_text() + f"x = {nested}\n")
        named = scenario
    elif where == "overrides":
        scenario.write_text('instance = "."\noverrides = ' + "{a = " * depth + "1" + "}" * depth + "\n")
        named = scenario
    elif where == "model":
        named = tiny / "m.toml"
        named.write_text((TINY.parent.parent / "models" / "need-first.toml").read_text() + f"\nx = {nested}\n")
        scenario.write_text('instance = "."\nmodel = "m.toml"\n')
    else:
        named = tiny / "instance.toml"
        named.write_text(named.read_text() + f"x = {nested}\n")
    message = one_error_line(solve(scenario, tmp_path / "out"))
    assert message == f"error: {named.resolve() if where != 'scenario' and where != 'overrides' else named}: " \
                      "invalid TOML: tables or arrays nested too deeply"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]


# --------------------------------------------------------------------------- ids round-trip through the files


@pytest.mark.parametrize("text", ["-x", "=1+1", "+44", "@SUM(A1)", "'quoted", "''", "'", "\tTab", "plain",
                                  "", "NA", "nan", "007", "1e5", "TRUE", " x ", "a,b", 'say "hi"', "line\nbreak"])
def test_csv_text_reads_back_exactly(tmp_path: Path, text: str) -> None:
    from solver.present.outputs import read_table

    frame = pd.DataFrame({"id": [text, "other"], "v": [1.5, -0.0]})
    write_folder(tmp_path / "o", {"t.csv": frame})
    back = read_table(tmp_path / "o" / "t.csv")
    assert list(back["id"]) == [text, "other"]
    cell = (tmp_path / "o" / "t.csv").read_text().splitlines()[1].lstrip('"')
    if text.startswith(("=", "+", "-", "@")):
        assert cell.startswith("'" + text[0])  # still guarded against spreadsheet formulas


def test_ids_starting_with_a_formula_character_survive_solve_and_audit(tiny: Path, tmp_path: Path) -> None:
    from solver.data.scenario import load_scenario
    from solver.pipeline.audit import audit
    from solver.present.outputs import read_decisions

    renames = {"COM-A2": "-COM-A2", "FAX-B2": "-FAX-B2", "EPR-B1-EPIC": "-EPR-B1-EPIC", "OPT-A2": "NA",
               "CYB-B2": "007", "SCR-A": "-SCR-A"}
    for name in ("projects.csv", "costs.csv", "dependencies.csv"):
        frame = pd.read_csv(tiny / name, dtype=str, keep_default_na=False)
        for col in ("project_id", "requires"):
            if col in frame:
                frame[col] = frame[col].replace(renames)
        frame.to_csv(tiny / name, index=False)
    out = tmp_path / "out"
    result = solve(tiny / "baseline.toml", out)
    assert result.exit_code == 0, result.stderr
    assert "'-COM-A2" in (out / "plan.csv").read_text()  # written guarded
    assert "'-EPR-B1-EPIC" in (out / "misses.csv").read_text()

    scenario = load_scenario(tiny / "baseline.toml")
    decisions = read_decisions(out)
    assert {"-COM-A2", "-FAX-B2"} <= set(decisions.starts)
    assert set(decisions.starts) <= set(scenario.instance.projects["project_id"])
    import json

    report = audit(scenario, decisions, claimed_objective=json.loads((out / "summary.json").read_text())["objective"])
    assert report.ok, report.violations


# --------------------------------------------------------------------------- what a killed run leaves behind


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, timeout=60, check=True)
    return int(proc.stdout)


def work_name(target: Path, kind: str, pid: int) -> Path:
    return target.with_name(f".envelope-{kind}-{_tag(target)}-{pid}-0123abcd")


def test_next_run_removes_a_dead_runs_temporary_folders(tmp_path: Path) -> None:
    target = write_folder(tmp_path / "out", FILES)
    before = snapshot(target)
    pid = dead_pid()
    half = work_name(target, "tmp", pid)  # killed while writing: the marker and part of the files
    half.mkdir()
    (half / MARKER).write_text(MARKER_TEXT)
    (half / "a.csv").write_text("x\n")
    empty = work_name(target, "old", pid)  # killed just after creating it
    empty.mkdir()
    live = work_name(target, "tmp", os.getpid())  # a run still going: left alone
    live.mkdir()
    foreign = work_name(target, "tmp", pid + 1 if pid + 1 != os.getpid() else pid + 2)
    foreign = foreign.with_name(foreign.name.replace(f"-{pid + 1}-", f"-{pid}-").replace(f"-{pid + 2}-", f"-{pid}-"))
    foreign = foreign.with_name(foreign.name[:-8] + "fedcba98")
    foreign.mkdir()
    (foreign / "mine.txt").write_text("not Envelope's: no marker")  # same pattern, not ours: never removed
    other = tmp_path / ".out.tmp-1234"  # an older version's name, or the user's: not touched
    other.mkdir()

    assert check_output_folder(target) == target.resolve()
    assert snapshot(target) == before
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["out", live.name, foreign.name, other.name])
    write_folder(target, FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == left


def test_next_run_restores_a_stranded_previous_output(tmp_path: Path) -> None:
    target = write_folder(tmp_path / "out", FILES)
    before = snapshot(target)
    pid = dead_pid()
    aside = work_name(target, "old", pid)
    target.rename(aside)  # killed between the two renames of the portable replacement
    half = work_name(target, "tmp", pid)
    half.mkdir()
    (half / MARKER).write_text(MARKER_TEXT)
    assert check_output_folder(target) == target.resolve()
    assert snapshot(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_portable_replacement_when_the_exchange_is_unavailable(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVELOPE_TEST_NO_EXCHANGE", "1")
    target = write_folder(tmp_path / "out", FILES)
    write_folder(target, {"b.csv": pd.DataFrame({"y": [2.0]})})
    assert {p.name for p in target.iterdir()} == {"b.csv", MARKER}     # the previous files are gone
    before = snapshot(target)
    real = os.rename

    def second_rename_fails(src: object, dst: object) -> None:
        if Path(str(src)).name.startswith(".envelope-tmp-"):
            raise OSError(28, "No space left on device")
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "rename", second_rename_fails)
    with pytest.raises(OutputFolderError, match="No space left on device"):
        write_folder(target, FILES)
    assert snapshot(target) == before  # the set-aside previous output is put back
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_foreign_files_arriving_during_the_write_are_never_replaced(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import solver.present.outputs as outputs

    target = tmp_path / "empty"
    target.mkdir()

    def intruder(what: str) -> None:
        if what == "created":
            (target / "thesis.docx").write_text("arrived after the check")

    monkeypatch.setattr(outputs, "_step", intruder)
    with pytest.raises(OutputFolderError):
        write_folder(target, FILES)
    assert snapshot(target) == {"thesis.docx": b"arrived after the check"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_write_hooks_are_inert_unless_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("ENVELOPE_TEST_WRITE_PAUSE", raising=False)
    write_folder(tmp_path / "out", FILES)
    write_folder(tmp_path / "out", FILES)
    assert capsys.readouterr().err == ""
