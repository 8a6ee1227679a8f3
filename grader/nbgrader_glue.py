"""The nbgrader operations cloudlabs uses, run in-process through nbgrader's own API: generating a
lab's student release (which also records the source cells in a gradebook), and recording a graded
submission in that gradebook (for formgrader and nbgrader's own exports)."""

from __future__ import annotations

import contextlib
import datetime
import functools
import io
import logging
import os
import shutil
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbformat import NotebookNode
from traitlets.config import Config

from grader.errors import LabError

if TYPE_CHECKING:
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI

# nbgrader is imported where it is used: importing it takes a second (its package loads its Jupyter
# server extensions), which a self-check spends while its notebook runs (grader.check).

# nbgrader runs the `alembic` command of its own environment: make sure that environment's
# scripts are on PATH even when the interpreter was started without activating the virtualenv.
_SCRIPTS = str(Path(sys.executable).parent)
if _SCRIPTS not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.pathsep.join([_SCRIPTS, os.environ.get("PATH", "")])

# nbgrader's gradebook triggers SQLAlchemy deprecation warnings on every query.
warnings.filterwarnings("ignore", module=r"nbgrader\..*")
warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*_base_cells.*")

#: nbgrader's SQLite gradebook is written from several grading threads: one writer at a time.
GRADEBOOK_LOCK = threading.RLock()

#: How a release is made, shared with nbgrader_config.py (formgrader and the nbgrader CLI).
#: State checks are graded from outside the student's kernel and never released.
IGNORED = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "checks.py"]
CODE_STUB = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}


def _locked(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with GRADEBOOK_LOCK:
            return function(*args, **kwargs)

    return wrapper


@functools.cache
def _alembic_head() -> str:
    """nbgrader's newest gradebook schema revision. nbgrader asks the ``alembic`` command for it
    whenever it makes a gradebook, which costs a new interpreter (3 s on a busy machine) at the
    start of every run: here alembic reads the same migration scripts in this process."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import _temp_alembic_ini

    with _temp_alembic_ini("sqlite://") as ini:
        head = ScriptDirectory.from_config(AlembicConfig(ini)).get_current_head()
    if not head:
        raise LabError("nbgrader's gradebook migrations name no head revision: run `make setup`")
    return head


def _gradebook(db_url: str) -> Gradebook:
    import nbgrader.api

    nbgrader.api.get_alembic_version = _alembic_head  # read in process (see _alembic_head)
    return nbgrader.api.Gradebook(db_url)


def _api(source_dir: Path, release_dir: Path, db_url: str) -> NbGraderAPI:
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    config = Config()
    config.CourseDirectory.root = str(source_dir.parent)
    config.CourseDirectory.source_directory = str(source_dir)
    config.CourseDirectory.release_directory = str(release_dir)
    config.CourseDirectory.db_url = db_url
    config.CourseDirectory.ignore = IGNORED
    config.Exchange.root = str(release_dir / ".exchange")  # unused, but nbgrader checks it
    config.ClearSolutions.code_stub = CODE_STUB
    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)
    api.log.setLevel(logging.ERROR)
    return api


@_locked
def generate_release(lab: str, *, source_dir: Path, release_dir: Path, db_url: str) -> Path:
    """Run ``nbgrader generate_assignment`` for ``lab``; returns ``release_dir/lab``."""
    with _gradebook(db_url) as gb:
        gb.update_or_create_assignment(lab)
    api = _api(source_dir, release_dir, db_url)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        result = api.generate_assignment(lab, force=True)
    if not result.get("success"):
        raise LabError(
            f"nbgrader generate_assignment failed:\n{result.get('error') or result.get('log')}",
            lab=lab,
            fix="fix the nbgrader metadata of the source notebook (cloudlabs validate explains)",
        )
    return release_dir / lab


def release_to_temp(lab: str, *, source_dir: Path, db_url: str) -> Path:
    """A fresh release of ``lab`` in a temporary directory (caller removes it)."""
    target = Path(tempfile.mkdtemp(prefix=f"cloudlabs-release-{lab}-"))
    try:
        return generate_release(lab, source_dir=source_dir, release_dir=target, db_url=db_url)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


#: When one submission was handed in (aware) and the points it lost for lateness.
Lateness = tuple[datetime.datetime | None, float]


@_locked
def record(
    nb: NotebookNode, points: dict[str, float], *, lab: str, student: str, db_url: str,
    lateness: Lateness = (None, 0.0),
) -> None:  # fmt: skip
    """Write one graded submission into the gradebook, in one transaction: every graded cell's
    points (computed in memory, :mod:`grader.score` and :mod:`grader.verify`) as its autograded
    score, so an instructor may still override any of them in formgrader; nbgrader's "No
    response." comment on answer cells left as released; and when it was handed in with its late
    penalty (:mod:`grader.late`)."""
    record_all([(student, nb, points)], lab=lab, db_url=db_url, lateness={student: lateness})


@_locked
def record_all(
    graded: list[tuple[str, NotebookNode, dict[str, float]]], *, lab: str, db_url: str,
    lateness: dict[str, Lateness] | None = None,
) -> None:  # fmt: skip
    """:func:`record` for many submissions (student, notebook, points) in one transaction, as
    ``cloudlabs merge`` writes a class."""
    from nbgrader import utils
    from nbgrader.api import MissingEntry

    with _gradebook(db_url) as gb:
        for student, nb, points in graded:
            gb.update_or_create_student(student)
            with contextlib.suppress(MissingEntry):
                gb.remove_submission(lab, student)
            gb.add_submission(lab, student)
            # the new submission's grades and comments, read at once (not a query per cell)
            submitted = gb.find_submission_notebook(lab, lab, student)
            grades = {grade.name: grade for grade in submitted.grades}
            comments = {comment.name: comment for comment in submitted.comments}
            for cell in nb.cells:
                gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                if not gid:
                    continue
                if utils.is_grade(cell) and gid in grades:
                    grade = grades[gid]
                    grade.auto_score = points.get(gid)
                    grade.needs_manual_grade = grade.auto_score is None
                if (utils.is_solution(cell) or utils.is_task(cell)) and gid in comments:
                    comment = comments[gid]
                    unchanged = cell.metadata.nbgrader.get("checksum") == utils.compute_checksum(
                        cell
                    )
                    comment.auto_comment = (
                        "No response." if unchanged and not utils.is_task(cell) else None
                    )
        _set_lateness(gb, lab, lateness or {})
        gb.db.commit()


@_locked
def set_lateness(lab: str, lateness: dict[str, Lateness], *, db_url: str) -> None:
    """Update the submission times and late penalties of students already in the gradebook
    (a rerun with another late policy), in one transaction."""
    with _gradebook(db_url) as gb:
        _set_lateness(gb, lab, lateness)
        gb.db.commit()


def _set_lateness(gb: Any, lab: str, lateness: dict[str, Lateness]) -> None:
    from nbgrader.api import MissingEntry

    for student, (submitted, penalty) in lateness.items():
        try:
            submission = gb.find_submission(lab, student)
            notebook = gb.find_submission_notebook(lab, lab, student)
        except MissingEntry:
            continue
        # nbgrader keeps times as naive UTC
        submission.timestamp = (
            submitted.astimezone(datetime.UTC).replace(tzinfo=None) if submitted else None
        )
        notebook.late_submission_penalty = penalty


@_locked
def set_due(lab: str, due: datetime.datetime | None, *, db_url: str) -> None:
    """The lab's due time in the gradebook (None: no due date), as nbgrader's tools show it."""
    with _gradebook(db_url) as gb:
        assignment = gb.update_or_create_assignment(lab)
        assignment.duedate = due.astimezone(datetime.UTC).replace(tzinfo=None) if due else None
        gb.db.commit()


@_locked
def add_students(students: list[str], *, db_url: str) -> None:
    """Every student of the class, graded or not, so that the CSV export lists them all."""
    with _gradebook(db_url) as gb:
        for student in students:
            gb.update_or_create_student(student)
