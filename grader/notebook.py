"""Reading notebooks and their nbgrader cell metadata, shared by every grading step."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from grader.errors import SubmissionError

#: ``ex3_test_a`` belongs to exercise ``ex3``; ``kc2_solution`` to knowledge check ``kc2``.
_SECTION = re.compile(r"^((?:ex|kc)\d+)_")
_HEADING = re.compile(r"^##\s+(Exercise\s+(\d+)|Knowledge check)", re.IGNORECASE)
MAX_NOTEBOOK_BYTES = 20 * 2**20
#: Tags of the cells the lab runs before any answer (and again after a kernel restart).
SETUP_TAGS = frozenset({"parameters", "injected-parameters", "setup"})


def read(path: Path) -> NotebookNode:
    """A notebook from disk, or a SubmissionError saying plainly why it is not one.

    Only a regular file is read, never through a symbolic link (``O_NOFOLLOW``; ``O_NONBLOCK`` so
    that a named pipe cannot hang the grader), and its size is what is actually read from the
    open file: at most ``MAX_NOTEBOOK_BYTES`` + 1 bytes, whatever ``stat`` said before."""
    name = path.name
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SubmissionError(
                f"{name} is a symbolic link; submissions must be plain files"
            ) from exc
        raise SubmissionError(f"cannot read {name}: {exc.strerror}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SubmissionError(f"{name} is not a regular file (a folder, device or pipe?)")
        os.set_blocking(fd, True)
        chunks, left = [], MAX_NOTEBOOK_BYTES + 1
        while left > 0 and (chunk := os.read(fd, min(left, 2**20))):
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise SubmissionError(f"cannot read {name}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_NOTEBOOK_BYTES:
        limit = MAX_NOTEBOOK_BYTES
        size = f"{limit // 2**20} MiB" if limit >= 2**20 else f"{limit:,} bytes"
        raise SubmissionError(f"{name} is larger than {size}; larger notebooks are refused")
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise SubmissionError(f"{path.name} is not valid JSON, so not a notebook ({exc})") from exc
    if not isinstance(raw, dict) or "cells" not in raw:
        raise SubmissionError(f"{path.name} is JSON but not a Jupyter notebook (no cells)")
    try:
        nb = nbformat.reads(json.dumps(raw), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several kinds for malformed documents
        raise SubmissionError(f"{path.name} is not a valid Jupyter notebook: {exc}") from exc
    return nb


def nbgrader(cell: NotebookNode) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def grade_id(cell: NotebookNode) -> str | None:
    return nbgrader(cell).get("grade_id")


def is_graded(cell: NotebookNode) -> bool:
    return bool(nbgrader(cell).get("grade"))


def is_solution(cell: NotebookNode) -> bool:
    return bool(nbgrader(cell).get("solution"))


_STATE_ID = re.compile(r"^(?:ex|kc)\d+_state(?:_[a-z0-9_]+)?$")


def is_state_check(cell: NotebookNode) -> bool:
    """A graded cell whose grade id is ``exN_state`` or ``exN_state_<x>`` (not any id that
    merely contains "_state", such as ``ex2_test_statement``)."""
    return is_graded(cell) and bool(_STATE_ID.match(grade_id(cell) or ""))


def is_test(cell: NotebookNode) -> bool:
    return is_graded(cell) and not is_solution(cell) and not is_state_check(cell)


def points(cell: NotebookNode) -> float:
    return float(nbgrader(cell).get("points", 0) or 0)


def tags(cell: NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def hint(cell: NotebookNode) -> str:
    """The ``# Hint: ...`` comment at the top of a test or state-check cell."""
    lines = []
    for line in cell.source.splitlines():
        stripped = line.strip()
        if stripped.lower().startswith("# hint:"):
            lines.append(stripped[7:].strip())
        elif (
            lines
            and stripped.startswith("# ")  # not "### BEGIN HIDDEN TESTS" and other markers
            and not stripped.lower().startswith("# state check")
        ):
            lines.append(stripped.lstrip("#").strip())
        else:
            break
    return " ".join(lines)


def normalized_source(text: str) -> str:
    """A cell's source compared loosely: no trailing spaces, no blank lines around it."""
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def has_code(source: str) -> bool:
    """True when a cell holds something besides comments and blank lines."""
    return any(line.strip() and not line.strip().startswith("#") for line in source.splitlines())


def section_of(grade: str | None) -> str | None:
    match = _SECTION.match(grade or "")
    return match.group(1) if match else None


def sections(nb: NotebookNode) -> list[str | None]:
    """The exercise (``ex1``), knowledge check (``kc``) or None of every cell, in order."""
    current: str | None = None
    result: list[str | None] = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = _HEADING.match(cell.source.lstrip())
            if match:
                current = f"ex{match.group(2)}" if match.group(2) else "kc"
        own = section_of(grade_id(cell))
        result.append(own or current)
    return result


def exercise_title(nb: NotebookNode, section: str) -> str:
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        match = _HEADING.match(cell.source.lstrip())
        if match and match.group(2) and f"ex{match.group(2)}" == section:
            return cell.source.lstrip().splitlines()[0].lstrip("#").strip()
    return "Knowledge check" if section.startswith("kc") else section
