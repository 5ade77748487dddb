"""Output folders: Envelope only ever replaces a folder it wrote itself (it carries the
``.envelope-output`` marker) or an empty one; anything else at ``-o`` is refused with exit 2 and left
untouched. Folders and files get the usual permissions for the umask, and an unwritable location is
one clear message (exit 2), not a traceback."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from solver.cli import main
from solver.errors import InputError
from solver.present.outputs import MARKER, OutputFolderError, check_output_folder, write_folder

TINY = Path(__file__).resolve().parent.parent / "instances" / "tiny"
SOLVE_FILES = {"plan.csv", "systems.csv", "misses.csv", "budget.csv", "summary.json", "timing.json"}
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
    """No temporary or old folders from a write are left next to the output."""
    assert not [p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


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
    assert "is not an Envelope output folder" in message
    assert snapshot(tiny) == before

    monkeypatch.chdir(tmp_path)  # `-o .` where the input lives
    message = one_error_line(solve(Path("tiny") / "baseline.toml", Path(".")))
    assert f"error: {tmp_path.resolve()}: exists and is not an Envelope output folder" in message
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
    (out / "stale.txt").write_text("left from an older run")
    (out / "old-sub").mkdir()

    second = solve(tiny / "baseline.toml", out)
    assert second.exit_code == 0, second.stderr
    assert {p.name for p in out.iterdir()} == SOLVE_FILES | {MARKER}  # stale file and folder gone
    after = snapshot(out)
    for name in sorted(SOLVE_FILES - {"timing.json"} | {MARKER}):
        assert after[name] == before[name], name  # equal runs, byte-identical files (marker included)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "tiny"]


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
        if self.parent == tmp_path.resolve() and self.name.startswith(".out.tmp-"):
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
