"""Finding submissions: nbgrader's submitted/<student>/<lab>/ layout, a plain folder of notebooks
(GitHub Classroom style: the student id is the file name, or the folder name for one notebook per
repository folder), or a zip of either."""

from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

from grader.errors import CloudlabsError

#: nbgrader's rule for student ids, made strict: letters, digits, dot, dash, underscore.
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_ZIP_BYTES = 512 * 2**20


@dataclasses.dataclass(frozen=True)
class Submission:
    student: str
    path: Path | None  #: the notebook; None when there is nothing gradable
    problem: str = ""  #: why it cannot be graded (then ``path`` may be None)


def _student_from_name(name: str, lab: str) -> str:
    stem = name.removesuffix(".ipynb")
    for affix in (f"{lab}-", f"{lab}_"):
        stem = stem.removeprefix(affix)
    for affix in (f"-{lab}", f"_{lab}"):
        stem = stem.removesuffix(affix)
    return stem


def _check(student: str, path: Path | None, origin: str) -> Submission:
    if not STUDENT_ID.match(student):
        return Submission(
            student=re.sub(r"[^A-Za-z0-9._-]", "_", student)[:64].lstrip("._-") or "invalid",
            path=None,
            problem=f"{origin!r} does not give a valid student id (letters, digits, '.', '-', '_')",
        )
    return Submission(student, path)


def collect(source: Path, *, lab: str, unpack_dir: Path | None = None) -> list[Submission]:
    """Every submission under ``source`` for ``lab``, sorted by student id."""
    if not source.exists():
        raise CloudlabsError(
            f"no submissions at {source}", fix="give a folder, a zip or a notebook"
        )
    if source.is_file() and source.suffix == ".zip":
        source = _unzip(source, unpack_dir or Path(tempfile.mkdtemp(prefix="cloudlabs-zip-")))
    if source.is_file():
        return [_check(_student_from_name(source.name, lab), source, source.name)]
    found: dict[str, Submission] = {}
    for entry in sorted(source.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            nested = entry / lab
            candidates = sorted((nested if nested.is_dir() else entry).glob("*.ipynb"))
            candidates = [c for c in candidates if ".ipynb_checkpoints" not in c.parts]
            preferred = [c for c in candidates if c.stem == lab] or candidates
            student = _student_from_name(entry.name, lab)
            if not preferred:
                found[student] = Submission(student, None, f"no notebook in {entry.name}/")
                continue
            found[student] = _check(student, preferred[0], entry.name)
        elif entry.suffix == ".ipynb":
            student = _student_from_name(entry.name, lab)
            found[student] = _check(student, entry, entry.name)
    return sorted(found.values(), key=lambda s: s.student)


def _unzip(archive: Path, target: Path) -> Path:
    try:
        with zipfile.ZipFile(archive) as zf:
            total = sum(info.file_size for info in zf.infolist())
            if total > MAX_ZIP_BYTES:
                raise CloudlabsError(f"{archive.name} unpacks to {total / 2**20:.0f} MiB; refused")
            for info in zf.infolist():
                name = Path(info.filename)
                if name.is_absolute() or ".." in name.parts or info.is_dir():
                    continue  # no path traversal out of the target
                if "__MACOSX" in name.parts:
                    continue
                destination = target / name
                destination.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, destination.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
    except zipfile.BadZipFile as exc:
        raise CloudlabsError(f"{archive.name} is not a valid zip file") from exc
    entries = [p for p in target.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        inside = [p for p in entries[0].iterdir() if not p.name.startswith(".")]
        if len(inside) > 1 or any(p.is_dir() for p in inside):
            return entries[0]  # a zip of one top folder holding the class
    return target
