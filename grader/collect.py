"""Finding submissions: nbgrader's submitted/<student>/<lab>/ layout, a plain folder of notebooks
(GitHub Classroom style: the student id is the file name, or the folder name for one notebook per
repository folder), or a zip of either.

Submissions are hostile by default, and they are plain files and folders or nothing: a symbolic
link (to a file or a folder, anywhere in a student's tree, in a folder or a zip), a device, a named
pipe, a socket or any other special file is never followed or read. Its student is refused with
the reason (``Submission.problem``) and the rest of the class is collected. A zip is unpacked with
a cap on the bytes actually written, whatever sizes it declares."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from grader import late
from grader import notebook as nbu
from grader.errors import CloudlabsError

#: nbgrader's rule for student ids, made strict: letters, digits, dot, dash, underscore.
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_ZIP_BYTES = 512 * 2**20  #: bytes a zip may unpack to (counted as written, not as declared)
MAX_ZIP_ENTRIES = 100_000  #: entries a zip may hold
MAX_TREE_ENTRIES = 10_000  #: files and folders one student's folder may hold
_NOT_PLAIN = "submissions must be plain files and folders"


@dataclasses.dataclass(frozen=True)
class Submission:
    student: str
    path: Path | None  #: the notebook; None when there is nothing gradable
    problem: str = ""  #: why it cannot be graded (then ``path`` may be None)
    #: when it was handed in, from nbgrader's ``timestamp.txt`` beside it (:mod:`grader.late`)
    submitted_at: dt.datetime | None = dataclasses.field(default=None, compare=False)

    @functools.cached_property
    def digest(self) -> str:
        """SHA-256 of the submitted file ("" when there is none or it cannot be read); read
        once, whether the resume check or the grading asks first."""
        if self.path is None:
            return ""
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]
        except OSError:
            return ""


def _student_from_name(name: str, lab: str) -> str:
    stem = name.removesuffix(".ipynb")
    for affix in (f"{lab}-", f"{lab}_"):
        stem = stem.removeprefix(affix)
    for affix in (f"-{lab}", f"_{lab}"):
        stem = stem.removesuffix(affix)
    return stem


def _check(student: str, path: Path | None, origin: str, problem: str = "") -> Submission:
    if not STUDENT_ID.match(student):
        return Submission(
            student=re.sub(r"[^A-Za-z0-9._-]", "_", student)[:64].lstrip("._-") or "invalid",
            path=None,
            problem=f"{origin!r} does not give a valid student id (letters, digits, '.', '-', '_')"
            + (f"; also, {problem}" if problem else ""),
        )
    return Submission(student, None if problem else path, problem)


def _kind(mode: int) -> str:
    """What a file that is not a plain file or folder is, in words."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _refusal(name: str, mode: int) -> str:
    return f"{name} is {_kind(mode)}, which is never followed or read; {_NOT_PLAIN}"


def collect(source: Path, *, lab: str, unpack_dir: Path | None = None) -> list[Submission]:
    """Every submission under ``source`` for ``lab``, sorted by student id. A zip is unpacked
    into ``unpack_dir`` (a scratch folder: emptied first) or a new temporary folder."""
    try:
        mode = os.lstat(source).st_mode
    except FileNotFoundError:
        raise CloudlabsError(
            f"no submissions at {source}", fix="give a folder, a zip or a notebook"
        ) from None
    except OSError as exc:
        raise CloudlabsError(f"cannot read {source}: {exc.strerror}") from exc
    if stat.S_ISLNK(mode):
        raise CloudlabsError(
            f"{source} is a symbolic link; submissions are never read through links",
            fix="give the real path of the folder, zip or notebook",
        )
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise CloudlabsError(
            f"{source} is {_kind(mode)}, not a folder, a zip or a notebook",
            fix="give a folder, a zip or a notebook",
        )
    refused: list[tuple[PurePosixPath, str]] = []
    if stat.S_ISREG(mode) and source.suffix == ".zip":
        target = unpack_dir or Path(tempfile.mkdtemp(prefix="cloudlabs-zip-"))
        source, refused = _unzip(source, target)
    elif stat.S_ISREG(mode):
        return [_check(_student_from_name(source.name, lab), source, source.name)]
    found: dict[str, Submission] = {}
    for entry in _entries(source):
        submission = None if entry.name.startswith(".") else _submission(Path(entry.path), lab)
        if submission is not None:
            _add(found, submission)
    for where, reason in refused:
        name = where.parts[0]
        if not name.startswith("."):  # hidden entries are never read
            _add(found, _check(_student_from_name(name, lab), None, name, reason))
    return sorted(found.values(), key=lambda s: s.student)


def _entries(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as listing:
            return sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        raise CloudlabsError(f"cannot read {folder}: {exc.strerror}") from exc


def _add(found: dict[str, Submission], submission: Submission) -> None:
    """Record ``submission``; a refusal is never replaced by another entry of the same student."""
    previous = found.get(submission.student)
    if previous is None or not previous.problem:
        found[submission.student] = submission


def _submission(path: Path, lab: str) -> Submission | None:
    """The submission at ``path``, an entry of the class folder (never followed if a link);
    None for a plain file that is not a notebook."""
    name = path.name
    student = _student_from_name(name, lab)
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        return _check(student, None, name, f"cannot read {name}: {exc.strerror}")
    if stat.S_ISREG(mode):
        if name.endswith(".ipynb"):
            return _check(student, path, name)
        return None  # another file: not a submission
    if not stat.S_ISDIR(mode):  # a link (to a notebook, a folder, /dev/zero...) or special file
        return _check(student, None, name, _refusal(name, mode))
    problem = _plain_tree(path)
    if problem:
        return _check(student, None, name, problem)
    nested = path / lab
    folder = nested if nested.is_dir() else path  # the tree holds no links: is_dir is safe
    candidates = sorted(c for c in folder.glob("*.ipynb") if c.is_file())
    preferred = [c for c in candidates if c.stem == lab] or candidates
    if not preferred:
        return _check(student, None, name, f"no notebook in {name}/")
    found = _check(student, preferred[0], name)
    return dataclasses.replace(found, submitted_at=late.read_timestamp(folder))


def _plain_tree(folder: Path) -> str:
    """Why the tree under ``folder`` is not only plain files and folders, or ''."""
    todo, seen = [folder], 0
    while todo:
        current = todo.pop()
        try:
            with os.scandir(current) as listing:
                entries = list(listing)
        except OSError as exc:
            return f"cannot read {_relative(current, folder)}/: {exc.strerror}"
        for entry in entries:
            seen += 1
            if seen > MAX_TREE_ENTRIES:
                return f"{folder.name}/ holds more than {MAX_TREE_ENTRIES:,} files and folders"
            path = Path(entry.path)
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError as exc:
                return f"cannot read {_relative(path, folder)}: {exc.strerror}"
            if stat.S_ISDIR(mode):
                todo.append(path)
            elif not stat.S_ISREG(mode):
                return _refusal(_relative(path, folder), mode)
    return ""


def _relative(path: Path, folder: Path) -> str:
    return str(PurePosixPath(folder.name, *path.relative_to(folder).parts))


def _unzip(archive: Path, target: Path) -> tuple[Path, list[tuple[PurePosixPath, str]]]:
    """Unpack ``archive`` into ``target``: the folder holding the class, and the entries refused
    (links, special files, entries that cannot be unpacked) with why, relative to that folder."""
    if target.exists():
        shutil.rmtree(target)  # a scratch folder: no student of an earlier zip may linger
    target.mkdir(parents=True)
    refused: list[tuple[PurePosixPath, str]] = []
    try:
        fd = os.open(archive, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise CloudlabsError(f"cannot read {archive.name}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "rb") as raw, zipfile.ZipFile(raw) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ZIP_ENTRIES:
                raise CloudlabsError(
                    f"{archive.name} holds over {MAX_ZIP_ENTRIES:,} files; refused"
                )
            total = sum(info.file_size for info in infos)
            if total > MAX_ZIP_BYTES:
                raise CloudlabsError(f"{archive.name} unpacks to {total / 2**20:.0f} MiB; refused")
            written = 0
            for info in infos:
                name = PurePosixPath(info.filename)
                if name.is_absolute() or ".." in name.parts or not name.parts:
                    continue  # no path traversal out of the target
                if "__MACOSX" in name.parts:
                    continue
                problem, size = _unzip_entry(zf, info, name, target, MAX_ZIP_BYTES - written)
                written += size
                if problem:
                    refused.append((name, problem))
                if written > MAX_ZIP_BYTES:
                    raise CloudlabsError(
                        f"{archive.name} unpacks to more than {MAX_ZIP_BYTES / 2**20:.0f} MiB "
                        "(it declares less: a zip bomb?); refused"
                    )
    except zipfile.BadZipFile as exc:
        raise CloudlabsError(f"{archive.name} is not a valid zip file") from exc
    if _one_top_folder(target, [w for w, _ in refused]):
        (root,) = (p for p in target.iterdir() if not p.name.startswith("."))
        return root, [(PurePosixPath(*w.parts[1:]), why) for w, why in refused]
    return target, refused


def _one_top_folder(target: Path, refused: list[PurePosixPath]) -> bool:
    """Whether the zip is one top folder holding the class (rather than one student's folder),
    counting the entries that were refused (and so not unpacked) as well."""
    top = _visible({p.name for p in target.iterdir()} | {w.parts[0] for w in refused})
    if len(top) != 1 or not (target / next(iter(top))).is_dir():
        return False
    only = target / next(iter(top))
    unpacked = [p for p in only.iterdir() if not p.name.startswith(".")]
    inside = _visible(
        {p.name for p in unpacked} | {w.parts[1] for w in refused if len(w.parts) > 1}
    )
    deeper = any(len(w.parts) > 2 for w in refused)
    return len(inside) > 1 or deeper or any(p.is_dir() for p in unpacked)


def _visible(names: set[str]) -> set[str]:
    return {n for n in names if not n.startswith(".")}


_UNZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)


def _unzip_entry(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: PurePosixPath, target: Path, room: int
) -> tuple[str, int]:
    """Unpack one entry; (why it was refused or '', bytes written). At most ``room`` + 1 bytes,
    and a file at most one byte over a notebook's limit (so that reading it says it is too big)."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        return _refusal(str(name), mode), 0
    destination = target.joinpath(*name.parts)
    try:
        if info.is_dir() or kind == stat.S_IFDIR:
            destination.mkdir(parents=True, exist_ok=True)
            return "", 0
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file of the zip is named like a folder of it
        return f"{name} cannot be unpacked: {exc.strerror or exc}", 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        out = os.open(destination, flags, 0o644)
    except FileExistsError:
        return f"{name} appears more than once in the zip", 0
    except OSError as exc:
        return f"{name} cannot be unpacked: {exc.strerror}", 0
    written = 0
    left = min(room, nbu.MAX_NOTEBOOK_BYTES) + 1
    try:
        with os.fdopen(out, "wb") as dst, zf.open(info) as src:
            while left > 0 and (chunk := src.read(min(left, 2**20))):
                dst.write(chunk)
                written += len(chunk)
                left -= len(chunk)
    except (*_UNZIP_ERRORS, OSError) as exc:
        with contextlib.suppress(OSError):
            destination.unlink()
        return f"{name} cannot be unpacked ({exc})", written
    return "", written
