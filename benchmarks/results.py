"""One section of benchmarks/RESULTS.md, replaced atomically between its markers (each benchmark
script owns one section, so running one never erases another's figures)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(begin: str, end: str, section: str, path: Path = RESULTS) -> None:
    """Put ``section`` (which starts with ``begin`` and ends with ``end``) in place of the old one,
    or append it; written to a temp file and renamed, so a killed run leaves the old file."""
    text = path.read_text() if path.exists() else ""
    if begin in text:
        text = text[:text.index(begin)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".RESULTS", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
