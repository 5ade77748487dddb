"""Writing an output folder safely.

*Atomic*: everything goes to a temporary sibling folder, which then takes the output's place in one
step — on Linux by exchanging the two folders (``renameat2`` with ``RENAME_EXCHANGE``), so the path
always holds the previous or the new complete folder, whatever moment the run is killed at;
elsewhere by two renames (old aside, new in place), with recovery. Temporary and set-aside folders
have short names in the output's parent, ``.envelope-tmp-<tag>-<pid>-<random>`` and
``.envelope-old-<tag>-<pid>-<random>`` (``tag``: a hash of the output's name, so any legal name
works), and carry the marker from the start; the next run writing to (or checking) the same output
removes those of dead processes and, if the output is missing, puts a set-aside previous output
back.

*Serialised*: a write holds an ``fcntl.flock`` lock on ``.envelope-lock-<tag>`` next to the output;
a second run writing to the same folder waits for it (saying so once on stderr) and then replaces
its output, so the folder always holds one run's complete output. The lock file is removed again.

*Only ours*: only a folder Envelope wrote (it carries the ``.envelope-output`` marker, which lists the
files of the run, and holds nothing else) or an empty one is ever replaced, and never one that contains
an input of the run (scenario, instance files, model); anything else is refused with an
``OutputFolderError`` (exit 2) before anything is written.

Test hooks, inert unless set: ``ENVELOPE_TEST_WRITE_PAUSE=<seconds>`` prints each write step to
stderr (``envelope-write-step: <step>``) and pauses after it, so tests can kill a run at every point
of a write; ``ENVELOPE_TEST_NO_EXCHANGE=1`` uses the portable two-rename replacement.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fnmatch
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from solver.analyses.engine import jsonable
from solver.data.instance import ALL_TABLE_MODELS
from solver.errors import InputError
from solver.pipeline.decisions import Decisions

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; writes are still atomic
    fcntl = None  # type: ignore[assignment]

FLOAT_FORMAT = "%.6f"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_GUARD = "'"

if TYPE_CHECKING:
    from solver.data.scenario import Scenario
    from solver.pipeline.outcome import Outcome


def _guard(v: object) -> object:
    """One text cell made safe: a leading apostrophe before a formula start — and before an
    apostrophe, so that ``unguard`` can undo exactly this."""
    if isinstance(v, str) and v.startswith((*_FORMULA_START, _GUARD)):
        return _GUARD + v
    return v


def unguard(value: object) -> object:
    """The text cell ``spreadsheet_safe`` was given: drops the one apostrophe it added."""
    if isinstance(value, str) and value.startswith(_GUARD):
        return value[1:]
    return value


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula (and, so that reading back is exact,
    text starting with an apostrophe) get a leading apostrophe; floats are rounded to the written
    precision with negative zeros removed."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(6) + 0.0
        elif out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(_guard)
    return out


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV file Envelope wrote, as text exactly as given to it: every cell a string (ids such as
    ``007``, ``NA`` or ``-X`` stay as they were; an empty cell is ``""``), with the spreadsheet
    guard undone."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    return frame.apply(lambda col: col.map(unguard))


MARKER = ".envelope-output"
"""File in every output folder Envelope writes; a folder carrying it may be replaced by a later run."""
MARKER_TEXT = "Written by Envelope. A later run with this folder as its output replaces the whole folder.\n"
_LISTED = "Files that run wrote (a later run refuses the folder if it finds anything else here):"


def marker_text(names: Iterable[str]) -> str:
    """The marker of a folder Envelope writes: what it is, and the entries it holds (a name ending in ``/`` is a
    folder; one with ``*`` a pattern, for a writer's temporary files), so that a later run can tell what someone
    added there (never to be deleted) from its own."""
    return MARKER_TEXT + _LISTED + "\n" + "".join(f"{n}\n" for n in names)


def listed_entries(target: Path) -> set[str] | None:
    """The entries the marker of ``target`` lists, or None for a marker with no list (an older version's)."""
    try:
        text = (target / MARKER).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if _LISTED not in text:
        return None
    return {n for n in text.split(_LISTED, 1)[1].split("\n") if n}


#: Files a file manager or an operating system leaves in any folder it shows: never anybody's work.
_SYSTEM_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", "ehthumbs.db"})


def _foreign_entries(target: Path) -> list[str]:
    """Entries of the Envelope output folder ``target`` that would be lost by replacing it: anything its marker
    does not list (or lists as a file but is a folder, or the other way round), except what a file manager
    leaves and reports or workbooks Envelope wrote that nobody has edited. None for a marker with no list."""
    listed = listed_entries(target)
    if listed is None:
        return []
    foreign = []
    with os.scandir(target) as entries:
        for e in entries:
            if e.name == MARKER or e.name in _SYSTEM_FILES or e.name.startswith("._"):
                continue
            is_file, is_dir = e.is_file(follow_symlinks=False), e.is_dir(follow_symlinks=False)
            if (is_file and e.name in listed) or (is_dir and f"{e.name}/" in listed):
                continue
            if any("*" in n and fnmatch.fnmatchcase(e.name, n) for n in listed):   # a writer's own temporaries
                continue
            if is_file:
                from solver.data.workbook import is_envelope_workbook  # only now: both import heavy libraries
                from solver.present.html_report import is_envelope_report

                if is_envelope_report(Path(e.path)) or is_envelope_workbook(Path(e.path)):
                    continue
            foreign.append(e.name)
    return sorted(foreign)

_WORK = re.compile(r"\.envelope-(tmp|old)-([0-9a-f]{12})-(\d+)-[0-9a-f]{8}")
"""Names of the temporary and set-aside folders of a write: kind, tag of the output's name, pid."""
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class OutputFolderError(InputError, OSError):
    """The output folder cannot be used or written (exit 2). Also an ``OSError``, so code that
    caught the operating system's error from ``write_folder`` still catches it."""

    def __init__(self, file: str | Path | None, rule: str) -> None:
        super().__init__(file, rule)
        self.args = (file, rule)


def input_paths(scenario: Scenario) -> list[Path]:
    """The files a scenario was read from — the scenario file, the instance's ``instance.toml`` and
    tables, the policy model — so that an output folder holding one of them can be refused."""
    instance = scenario.instance
    paths = [scenario.path, scenario.model_path, Path(instance.root) / "instance.toml",
             *(instance.file(table) for table in ALL_TABLE_MODELS)]
    found = []
    for path in map(Path, paths):
        try:
            if os.path.lexists(path):
                found.append(path)
        except (OSError, ValueError):
            continue
    return found


def check_output_folder(target: str | Path, inputs: Iterable[str | Path] = ()) -> Path:
    """The resolved ``target`` if ``write_folder`` may write there: it does not exist, or it is an
    empty folder, or an earlier Envelope output (it carries ``MARKER``), and it holds none of
    ``inputs`` (the files the run reads: replacing the folder would delete them). Otherwise
    ``OutputFolderError``; cheap enough to call before a long solve. Also tidies up after an earlier
    run that was killed while writing here (see the module notes)."""
    target = _resolved(target)
    _check_inputs(target, inputs)
    _tidy(target)
    _check_replaceable(target)
    return target


def _resolved(target: str | Path) -> Path:
    """``target`` absolute with symbolic links resolved, or ``OutputFolderError`` (a link loop, a
    name that is not a path)."""
    try:
        return Path(target).resolve()
    except RuntimeError:  # Python 3.11 reports a symbolic link loop so
        raise OutputFolderError(target, "cannot use this output folder: symbolic link loop") from None
    except (OSError, ValueError) as exc:
        raise OutputFolderError(target, f"cannot use this output folder: {_strerror(exc)}") from None


def _check_inputs(target: Path, inputs: Iterable[str | Path]) -> None:
    """``OutputFolderError`` if ``target`` is or contains one of ``inputs`` (as given, or with its
    symbolic links resolved)."""
    for given in inputs:
        try:
            plain = Path(os.path.abspath(given))
            forms = (plain, Path(os.path.realpath(plain.parent)) / plain.name, Path(os.path.realpath(plain)))
        except (OSError, ValueError):
            continue
        inside = [form for form in forms if form == target or target in form.parents]
        if inside:
            via = f" (given as {plain})" if inside[0] != plain else ""
            raise OutputFolderError(target, f"contains {inside[0]}, an input of this run{via}, which writing the "
                                            "output would delete; choose another output folder (-o)")


def _check_replaceable(target: Path) -> None:
    """``OutputFolderError`` unless ``target`` is missing, empty or an earlier Envelope output."""
    try:
        if not os.path.lexists(target):
            return
        if not target.is_dir():
            raise OutputFolderError(target, "exists and is a file, not a folder; choose another output folder (-o)")
        if (target / MARKER).is_file():
            foreign = _foreign_entries(target)
            if foreign:
                shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
                raise OutputFolderError(target, f"is an Envelope output folder, but holds what Envelope did not write "
                                                f"there ({shown}), which replacing the folder would delete: move "
                                                "it out, or choose another output folder (-o)")
            return
        with os.scandir(target) as entries:
            empty = next(entries, None) is None
    except OSError as exc:
        if isinstance(exc, OutputFolderError):
            raise
        raise OutputFolderError(target, f"cannot use this output folder: {_reason(exc, target)}") from None
    if not empty:
        raise OutputFolderError(target, f"exists and is not an Envelope output folder (no {MARKER} file); "
                                        "choose another output folder (-o) or empty it")


def write_folder(target: str | Path, files: dict[str, pd.DataFrame | dict | str | bytes],
                 inputs: Iterable[str | Path] = ()) -> Path:
    """Write ``files`` (CSV frames, JSON dicts, text, bytes such as a workbook) into ``target`` atomically;
    returns the path.

    ``target`` must not exist, be empty or be an earlier Envelope output, and must not hold any of
    ``inputs`` (see ``check_output_folder``); it is then replaced whole, never merged, and gets the
    ``MARKER`` file. A run killed at any moment leaves the previous or the new complete folder (on
    Linux; elsewhere the next run restores the previous one), and two runs writing to one folder
    take turns. The folder and files get the usual permissions for the umask. Rows are written in
    the order given and floats with a fixed format, so equal results give byte-identical files. An
    operating system error (no permission, read-only, no space) is an ``OutputFolderError`` naming
    the path, with nothing left behind.
    """
    if MARKER in files:
        raise ValueError(f"{MARKER} is written by write_folder itself")
    inputs = list(inputs)
    target = check_output_folder(target, inputs)
    tmp: Path | None = None
    doing = f"creating {target.parent}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        doing = f"locking {target.parent}"
        with _lock(target, wait=True):
            _step("locked")
            _recover(target)
            _check_replaceable(target)  # again, now that no other run writes here (and after a recovery)
            doing = f"creating a temporary folder in {target.parent}"
            tmp = _new_folder(target, "tmp")
            _step("created")
            # the marker first (a stale copy is then ours), listing every file of the run
            for name, content in {MARKER: marker_text(files), **files}.items():
                doing = f"writing {name}"
                path = tmp / name
                if isinstance(content, pd.DataFrame):
                    spreadsheet_safe(content).to_csv(path, index=False, float_format=FLOAT_FORMAT,
                                                     lineterminator="\n")
                elif isinstance(content, dict):      # strict JSON: NaN and infinities become null
                    path.write_text(json.dumps(jsonable(content), indent=2, sort_keys=False, default=str,
                                               allow_nan=False) + "\n", encoding="utf-8")
                elif isinstance(content, bytes):
                    path.write_bytes(content)
                else:
                    path.write_text(str(content), encoding="utf-8")
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
                _step(f"wrote {name}")
            _sync_folder(tmp)
            doing = "moving it into place"
            previous = _put_in_place(tmp, target)
            tmp = None
            _sync_folder(target.parent)
            _step("in place")
            if previous is not None:
                with contextlib.suppress(OSError):  # the new output is in place; a leftover is removed next time
                    _remove_ours(previous)
                _step("removed the previous output")
    except OSError as exc:
        if isinstance(exc, OutputFolderError):
            raise
        raise OutputFolderError(target, f"cannot write the output folder ({doing}): {_reason(exc, target)}") from exc
    finally:
        # only a work folder that is still ours: if a folder that is not (one that arrived at the path
        # while writing) sits under the work name after an interrupted undo, it is left for its owner
        if tmp is not None and (not tmp.exists() or _is_ours(tmp)):
            shutil.rmtree(tmp, ignore_errors=True)
    return target


_FILE_TMP = re.compile(r"\.envelope-file-([0-9a-f]{12})-(\d+)-[0-9a-f]{8}")


def write_file(target: str | Path, content: str | bytes, ours: Callable[[Path], bool], what: str,
               inputs: Iterable[str | Path] = ()) -> Path:
    """Write one file (a report, a workbook) atomically: ``content`` goes to a temporary file beside
    ``target`` (``.envelope-file-<tag>-<pid>-<random>``), is synced and renamed over it in one step, so
    the path holds the previous or the new complete file whatever moment the run is killed at. An
    existing ``target`` is replaced only if ``ours(target)`` says Envelope wrote it (``what`` names
    such a file in the refusal); a folder, an input of the run or any other file is refused with an
    ``OutputFolderError`` (exit 2), untouched. Temporary files of dead runs are removed."""
    target = Path(os.path.abspath(target))
    for given in inputs:
        with contextlib.suppress(OSError):
            if target.exists() and os.path.samefile(target, given) or target == Path(os.path.abspath(given)):
                raise OutputFolderError(target, "is an input of this run; choose another file (-o)")
    try:
        if target.is_dir():
            raise OutputFolderError(target, "is a folder; give a file name (-o FILE)")
        if os.path.lexists(target) and (target.is_symlink() or not target.is_file() or not ours(target)):
            raise OutputFolderError(target, f"exists and is not {what}; choose another file (-o) or remove it")
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if isinstance(exc, OutputFolderError):
            raise
        raise OutputFolderError(target, f"cannot use this output file: {_reason(exc, target)}") from None
    tag = _tag(target)
    with contextlib.suppress(OSError):
        for name in os.listdir(target.parent):
            m = _FILE_TMP.fullmatch(name)
            if m and m[1] == tag and not process_alive(int(m[2])):
                with contextlib.suppress(OSError):
                    os.remove(target.parent / name)
    tmp = target.with_name(f".envelope-file-{tag}-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        data = content.encode("utf-8") if isinstance(content, str) else content
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _sync_folder(target.parent)
    except OSError as exc:
        raise OutputFolderError(target, f"cannot write the file: {_reason(exc, target)}") from exc
    finally:
        with contextlib.suppress(OSError):
            if os.path.lexists(tmp):
                os.remove(tmp)
    return target


def _put_in_place(tmp: Path, target: Path) -> Path | None:
    """Move the finished folder ``tmp`` to ``target`` in one step; returns where the previous folder
    now is (to be removed), if there was one. Linux exchanges the two folders, so ``target`` is never
    missing; elsewhere the previous folder is set aside first and put back if the second rename fails."""
    if not os.path.lexists(target):
        os.rename(tmp, target)
        return None
    if _exchange(tmp, target):
        if not _is_ours(tmp):  # something not ours arrived at the path since the check: undo, refuse
            _exchange(tmp, target)
            raise OutputFolderError(target, "was replaced by something else while writing; nothing was changed")
        return tmp
    if (target / MARKER).is_file():
        aside = _new_name(target, "old")
        os.rename(target, aside)
        _step("set aside")
        try:
            os.rename(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.rename(aside, target)
            raise
        return aside
    if os.name == "nt":  # POSIX renames onto an empty folder, Windows cannot
        os.rmdir(target)
    os.replace(tmp, target)
    return None


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where the system or
    the file system cannot (then nothing was changed)."""
    if not sys.platform.startswith("linux") or os.environ.get("ENVELOPE_TEST_NO_EXCHANGE"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a C library without it (glibc before 2.28)
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _tag(target: Path) -> str:
    """A short fixed-length tag of the output's name, for the names of its work folders and lock."""
    return hashlib.sha256(os.fsencode(target.name)).hexdigest()[:12]


def _new_name(target: Path, kind: str) -> Path:
    """A fresh short name for a work folder of ``target`` in its parent (any legal name fits)."""
    return target.with_name(f".envelope-{kind}-{_tag(target)}-{os.getpid()}-{secrets.token_hex(4)}")


def _new_folder(target: Path, kind: str) -> Path:
    """A new work folder next to ``target``, created like ``mkdir`` (its mode follows the umask,
    unlike ``tempfile.mkdtemp``'s 0700)."""
    while True:
        path = _new_name(target, kind)
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries to disk (where the system allows it)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _is_ours(path: Path) -> bool:
    """``path`` is a real folder (not a link) that carries the marker or is empty."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return False
        if stat.S_ISREG(os.lstat(path / MARKER).st_mode):
            return True
    except FileNotFoundError:
        pass
    except OSError:
        return False
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except OSError:
        return False


def _remove_ours(path: Path) -> None:
    """Remove a folder Envelope wrote, its marker last: a run killed meanwhile leaves a folder the
    next run still knows as its own."""
    with os.scandir(path) as it:
        entries = [e for e in it if e.name != MARKER]
    for entry in sorted(entries, key=lambda e: e.name):
        _step(f"removing {entry.name}")
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path / MARKER)
    os.rmdir(path)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` may still be running (when unsure: yes)."""
    if pid == os.getpid() or os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _stale(target: Path) -> list[tuple[Path, str]]:
    """Work folders of ``target`` left by dead processes, with their kind (tmp or old)."""
    tag = _tag(target)
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []
    found = []
    for name in names:
        m = _WORK.fullmatch(name)
        if m and m[2] == tag and not process_alive(int(m[3])):
            found.append((target.parent / name, m[1]))
    return found


def _recover(target: Path) -> None:
    """(With the lock held.) After a run killed while writing ``target``: if ``target`` is missing,
    put back the previous output it had set aside; remove its other work folders (only folders that
    carry the marker or are empty: never anything Envelope did not write)."""
    stale = _stale(target)
    if not stale:
        return
    if not os.path.lexists(target):
        olds = [p for p, kind in stale if kind == "old" and _is_ours(p)]
        for old in sorted(olds, key=lambda p: p.stat().st_mtime, reverse=True)[:1]:
            with contextlib.suppress(OSError):
                os.rename(old, target)
    for path, _ in stale:
        if _is_ours(path):
            with contextlib.suppress(OSError):
                _remove_ours(path)


def _tidy(target: Path) -> None:
    """Recover ``target`` (see ``_recover``) if a dead run left work folders or its lock file and no
    run writes there now (taking and releasing the lock removes its file)."""
    try:
        left = os.path.lexists(_lock_path(target)) or bool(_stale(target))
    except (OSError, ValueError):
        return
    if not left:
        return
    with contextlib.suppress(OSError), _lock(target, wait=False) as locked:
        if locked:
            _recover(target)


def _lock_path(target: Path) -> Path:
    """The lock file of writes to ``target``."""
    return target.with_name(f".envelope-lock-{_tag(target)}")


@contextlib.contextmanager
def _lock(target: Path, wait: bool) -> Iterator[bool]:
    """Hold the lock of ``target`` (an ``flock`` on ``.envelope-lock-<tag>`` next to it); yields
    whether it is held. If another run holds it: wait (saying so once on stderr), or with ``wait``
    False yield False at once. The lock file is removed on release; a run that then finds its lock
    on a removed file takes the lock again on the current one."""
    if fcntl is None:
        yield True
        return
    path = _lock_path(target)
    told = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0),
                     0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
            except BlockingIOError:
                held = False
            if not held and wait:
                if not told:
                    print(f"waiting for another Envelope run writing to {target}", file=sys.stderr, flush=True)
                    told = True
                fcntl.flock(fd, fcntl.LOCK_EX)
                held = True
            mine = os.fstat(fd)
            try:
                now = os.stat(path, follow_symlinks=False)
                current = (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)
            except FileNotFoundError:
                current = False
        except BaseException:
            os.close(fd)
            raise
        if not held:
            os.close(fd)
            yield False
            return
        if current:
            break
        os.close(fd)
    try:
        yield True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def _step(what: str) -> None:
    """Test hook, inert unless ``ENVELOPE_TEST_WRITE_PAUSE`` is set: report a write step on stderr
    and pause after it, so that tests can kill a run at every point of a write."""
    pause = os.environ.get("ENVELOPE_TEST_WRITE_PAUSE")
    if not pause:
        return
    print(f"envelope-write-step: {what}", file=sys.stderr, flush=True)
    with contextlib.suppress(ValueError):
        time.sleep(float(pause))


def _strerror(exc: BaseException) -> str:
    """The operating system's reason for ``exc`` (or its message)."""
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _reason(exc: OSError, target: Path) -> str:
    """The operating system's reason for ``exc``; when a parent of ``target`` is a file, says so."""
    with contextlib.suppress(OSError, ValueError):
        for parent in target.parents:  # the nearest existing ancestor
            if parent.exists():
                if not parent.is_dir():
                    return f"{parent} is a file, not a folder"
                break
    return _strerror(exc)


def read_decisions(folder: str | Path) -> Decisions:
    """The decisions of a written plan (``plan.csv`` + ``budget.csv`` + ``misses.csv``), so a plan on
    disk can be audited again without the solver. Cells are read as the text written, with the
    spreadsheet guard undone (``read_table``), so every id comes back exactly."""
    folder = Path(folder)
    plan = read_table(folder / "plan.csv")
    starts = {str(p): int(s) for p, s in plan.groupby("project_id", sort=False)["start"].first().items()}
    budget = read_table(folder / "budget.csv")
    flex = {int(r["year"]): float(r["capital_to_revenue"]) for _, r in budget[budget["pot"] == "capital"].iterrows()
            if float(r["capital_to_revenue"] or 0)}
    carry = {(str(r["pot"]), int(r["year"])): float(r["carried_out"]) for _, r in budget.iterrows()
             if float(r["carried_out"] or 0)}
    misses = read_table(folder / "misses.csv")
    chosen = (misses["type"] == "project") & misses["withdrawn"].str.lower().isin(["true", "1"])
    withdrawn = sorted(misses.loc[chosen, "id"])
    return Decisions(starts=dict(sorted(starts.items())), withdrawn=withdrawn, flex=flex, carry=carry)


def read_outcome(folder: str | Path) -> Outcome:
    """A result folder of ``envelope solve`` read back as an audited ``Outcome``: its scenario reloaded from
    the path in ``summary.json`` (refused if it changed since: the content identity must match) and its
    plan (``read_decisions``) re-audited against it, so every figure is recomputed from the tables."""
    from solver.backends.result import SolutionStatus, Termination
    from solver.data.scenario import load_scenario
    from solver.pipeline.audit import audit
    from solver.pipeline.outcome import Outcome

    folder = Path(folder)
    path = folder / "summary.json"
    if not (folder / "plan.csv").is_file() or not path.is_file():
        raise InputError(folder, "not a result folder of envelope solve (no plan.csv and summary.json)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        scenario_path, identity = str(doc["scenario_path"]), str(doc["scenario_id"])
        status, termination = SolutionStatus(doc["status"]), Termination(doc["termination"])
        solver = doc["solver"]
        backend, options = str(solver["backend"]), dict(solver.get("options", {}))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(path, f"not a summary.json written by envelope solve ({type(exc).__name__}: {exc})") from None
    scenario = load_scenario(scenario_path)     # stored resolved (folders of older versions: as it was typed)
    settings = {k: options[k] for k in ("time_limit", "mip_gap", "threads", "seed") if k in options}
    try:
        scenario = scenario.with_solver(backend=backend, **settings)
    except InputError:
        pass                                      # settings this version does not know: the identity decides
    if scenario.identity != identity:
        raise InputError(path, f"its scenario {scenario_path} (or its instance or model) has changed since these "
                               "results were written, or they were written by another version of Envelope; "
                               "solve it again")
    try:
        decisions = read_decisions(folder)
    except (KeyError, FileNotFoundError, ValueError) as exc:
        raise InputError(folder, f"cannot read the plan back ({type(exc).__name__}: {exc}); a result folder of "
                                 "envelope solve has plan.csv, budget.csv and misses.csv with their columns") from None
    report = audit(scenario, decisions)
    if not report.ok:
        raise InputError(folder / "plan.csv", f"the plan breaks a rule of its scenario: {report.violations[0]}")
    return Outcome(scenario=scenario, status=status, termination=termination, backend=backend,
                   objective=report.objective, bound=doc.get("bound"), gap=doc.get("gap"), decisions=decisions,
                   audit=report, label=str(folder))


def output_files(result: object) -> dict[str, object]:
    """The files of a result folder: for a solve ``Outcome`` plan/budget/systems/misses CSVs,
    summary.json and timing.json (as ``envelope solve`` writes them); for an analysis its
    ``files()`` (tables, summary.json, timing.json)."""
    from solver.pipeline.outcome import Outcome

    if isinstance(result, Outcome):
        from solver.present.report import summary, tables, timings

        files: dict[str, object] = {f"{k}.csv": v for k, v in tables(result).items()}
        files["summary.json"] = summary(result)
        files["timing.json"] = timings(result)
        return files
    files_of = getattr(result, "files", None)
    if files_of is None:
        raise TypeError(f"cannot write a {type(result).__name__}: expected an Outcome or an Analysis")
    return dict(files_of())


def write_outputs(folder: str | Path, result: object, inputs: Iterable[str | Path] = ()) -> Path:
    """Write any result — a solve ``Outcome`` or an analysis — to ``folder`` atomically (see
    ``write_folder``, also for ``inputs``); returns the folder written."""
    return write_folder(folder, output_files(result), inputs)  # type: ignore[arg-type]
