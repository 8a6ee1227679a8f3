"""nbgrader's exchange on the class hub, on the hub's side: releasing labs and collecting what
students handed in.

A student's server sees the released labs read-only and an inbound folder of its own
(``<data>/inbound/<user>/``, :mod:`grader.hub_spawner`), where nbgrader's ``submit`` writes
``<student>+<lab>+<timestamp>[+<random>]/``. Everything in that folder is the student's writing, so
:func:`collect` trusts only what the hub decides:

- **who**: the inbound folder's owner is its user name; a submission naming another student is
  refused, so nobody hands in for someone else;
- **when**: the newest change time (ctime) of what was read, which a student cannot set back,
  never the ``timestamp.txt`` they could edit;
- **what**: plain files and folders; a symbolic link or special file anywhere refuses the
  submission (as :mod:`grader.collect` does), and a tree over the caps is refused.

The newest submission of each student is copied to ``<out>/<user>/<lab>/`` with a
``timestamp.txt`` of our own, the layout ``cloudlabs grade`` reads (:mod:`grader.collect`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import stat
import tempfile
from pathlib import Path

from grader import ROOT
from grader import labs as lab_index
from grader.collect import MAX_TREE_ENTRIES, STUDENT_ID
from grader.config import load
from grader.hub import HubConfig
from grader.late import TIMESTAMP_FILE

MAX_SUBMISSION_BYTES = 64 * 2**20  #: bytes one submission may hold
#: files nbgrader's submit writes that the student could have edited: never copied
STUDENT_WRITTEN = {TIMESTAMP_FILE, "submission_secret.txt"}
NBGRADER_TIME = "%Y-%m-%d %H:%M:%S.%f UTC"


@dataclasses.dataclass(frozen=True)
class Collected:
    student: str
    folder: Path  #: ``<out>/<student>/<lab>``
    submitted_at: dt.datetime
    submissions: int  #: how many times the student handed this lab in (the newest is kept)


@dataclasses.dataclass(frozen=True)
class Refused:
    student: str  #: the inbound folder's user name
    name: str  #: the entry refused
    reason: str


@dataclasses.dataclass(frozen=True)
class Collection:
    lab: str
    collected: list[Collected]
    refused: list[Refused]


def outbound(config: HubConfig) -> Path:
    return config.data.resolve() / "exchange" / config.course_id / "outbound"


def inbound_root(config: HubConfig) -> Path:
    return config.data.resolve() / "inbound"


def release(*, labs: list[str], config: HubConfig | None = None) -> list[Path]:
    """Publish each lab's student release (``labs/<lab>/``) to the exchange's outbound folder,
    replacing an earlier release; students then see it in their assignment list."""
    config = config or load(HubConfig, "hub")
    published = []
    for name in labs:
        lab = lab_index.find(name)
        source = ROOT / "labs" / lab.name
        target = outbound(config) / lab.name
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{lab.name}-", dir=target.parent))
        shutil.copytree(source, staging, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints"))  # fmt: skip
        for path in [staging, *staging.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        old = target.with_name(f".{lab.name}.old")
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
        published.append(target)
    return published


def collect(*, lab: str, out: Path, config: HubConfig | None = None) -> Collection:
    """Copy each student's newest submission of ``lab`` to ``out/<student>/<lab>/``."""
    config = config or load(HubConfig, "hub")
    lab = lab_index.find(lab).name
    collected: list[Collected] = []
    refused: list[Refused] = []
    root = inbound_root(config)
    for entry in sorted(os.scandir(root), key=lambda e: e.name) if root.is_dir() else []:
        if not STUDENT_ID.match(entry.name) or not entry.is_dir(follow_symlinks=False):
            refused.append(Refused(entry.name, entry.name, "not a student's inbound folder"))
            continue
        mine = [e for e in os.scandir(entry.path) if e.name.split("+")[1:2] == [lab]]
        candidates = []
        for submission in mine:
            reason = _problem(submission, entry.name)
            if reason:
                refused.append(Refused(entry.name, submission.name, reason))
            else:
                candidates.append(submission)
        if candidates:  # the newest by the hub's clock: a student cannot set a ctime back
            newest = max(
                candidates, key=lambda e: (e.stat(follow_symlinks=False).st_ctime_ns, e.name)
            )
            target = out / entry.name / lab
            try:
                when = _copy(Path(newest.path), target)
            except _Refusal as exc:
                refused.append(Refused(entry.name, newest.name, str(exc)))
                continue
            collected.append(Collected(entry.name, target, when, len(candidates)))
    return Collection(lab, collected, refused)


def _problem(entry: os.DirEntry, user: str) -> str:
    parts = entry.name.split("+")
    if not entry.is_dir(follow_symlinks=False):
        return "not a folder (submissions must be plain files and folders)"
    if len(parts) not in (3, 4):
        return "not named <student>+<lab>+<time> as nbgrader's submit names it"
    if parts[0] != user:
        return f"handed in as {parts[0]!r} from {user!r}'s account: nobody submits for another"
    return ""


class _Refusal(Exception):
    pass


def _copy(source: Path, target: Path) -> dt.datetime:
    """Copy ``source``'s plain files to ``target`` (replacing it); the newest ctime read, as an
    aware time. Refuses links, special files and trees over the caps."""
    staging = Path(tempfile.mkdtemp(prefix=".collect-", dir=_parent(target)))
    try:
        newest = os.lstat(source).st_ctime_ns
        entries = size = 0
        for folder, dirs, files in os.walk(source, followlinks=False):
            here = Path(folder)
            for name in dirs + files:
                entries += 1
                mode = os.lstat(here / name).st_mode
                if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                    raise _Refusal(f"{(here / name).relative_to(source)} is a link or special "
                                   "file (submissions must be plain files and folders)")  # fmt: skip
            if entries > MAX_TREE_ENTRIES:
                raise _Refusal(f"more than {MAX_TREE_ENTRIES} files and folders")
            relative = here.relative_to(source)
            (staging / relative).mkdir(parents=True, exist_ok=True)
            for name in files:
                if relative == Path(".") and name in STUDENT_WRITTEN:
                    continue
                newest_file, written = _copy_file(here / name, staging / relative / name)
                newest, size = max(newest, newest_file), size + written
                if size > MAX_SUBMISSION_BYTES:
                    raise _Refusal(f"more than {MAX_SUBMISSION_BYTES // 2**20} MiB")
        when = dt.datetime.fromtimestamp(newest / 1e9, dt.UTC)
        (staging / TIMESTAMP_FILE).write_text(when.strftime(NBGRADER_TIME))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        return when
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _parent(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.parent


def _copy_file(source: Path, target: Path) -> tuple[int, int]:
    """Copy one file without following a link; its ctime (from the descriptor read) and size."""
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as src:
        info = os.fstat(src.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _Refusal(f"{source.name} is not a plain file")
        with target.open("wb") as dst:
            written = 0
            while chunk := src.read(2**20):
                written += len(chunk)
                if written > MAX_SUBMISSION_BYTES:
                    raise _Refusal(f"more than {MAX_SUBMISSION_BYTES // 2**20} MiB")
                dst.write(chunk)
        return max(info.st_ctime_ns, os.fstat(fd).st_ctime_ns), written
