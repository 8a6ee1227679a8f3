"""Grading one submission: the ordered steps, each in its own module.

    read + restore (grader.restore) -> execute (grader.execute) -> score with nbgrader
    (grader.score) -> verify state (grader.verify) -> result (grader.results)

Feedback and exports are made from results afterwards (grader.feedback, grader.export).
"""

from __future__ import annotations

import dataclasses
import secrets
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from grader import nbgrader_glue, sandbox, score, verify
from grader import notebook as nbu
from grader.collect import Submission
from grader.config import GradeConfig
from grader.emulator import health
from grader.errors import CloudlabsError, EmulatorError, SubmissionError
from grader.execute import execute
from grader.labs import Lab
from grader.restore import restore
from grader.results import GRADED, INFRA, REJECTED, CellResult, SubmissionResult


@dataclasses.dataclass(frozen=True)
class Workspace:
    """Where one grading run keeps its files (an nbgrader course workspace)."""

    root: Path

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.root / 'gradebook.db'}"

    def result_path(self, student: str) -> Path:
        return self.root / "results" / f"{student}.json"

    def autograded_path(self, student: str, lab: str) -> Path:
        return self.root / "autograded" / student / lab / f"{lab}.ipynb"

    def feedback_path(self, student: str, lab: str) -> Path:
        return self.root / "feedback" / student / lab / f"{lab}.html"


@dataclasses.dataclass(frozen=True)
class Context:
    """Everything grading one submission needs besides the submission."""

    lab: Lab
    release: NotebookNode  #: the student release, with nbgrader's checksums
    workspace: Workspace
    endpoint_url: str
    config: GradeConfig
    region: str = "us-east-1"
    hide: tuple[Path, ...] = ()  #: paths the sandboxed kernel must not read
    work_root: Path | None = None  #: parent of the kernels' working directories (hidden too)
    visible_tests_only: bool = False  #: self-check: grade with the release's tests


def new_identity() -> tuple[str, str]:
    """An unguessable account id and resource prefix for one submission."""
    account = str(secrets.randbelow(9 * 10**11) + 10**11)
    prefix = "s" + secrets.token_hex(5)  # lowercase letters and digits: valid in every name
    return account, prefix


def grade(submission: Submission, ctx: Context) -> SubmissionResult:
    """Grade one submission. Bad input yields a REJECTED result; EmulatorError propagates
    (the caller restarts the emulator and retries); nothing else escapes."""
    lab = ctx.lab
    result = SubmissionResult(
        submission.student, lab.name, GRADED, max_score=lab.max_score,
        source=str(submission.path or ""), lab_digest=lab.digest,
    )  # fmt: skip
    if submission.problem or submission.path is None:
        return _rejected(result, submission.problem or "nothing to grade")
    started = time.monotonic()
    try:
        restored = restore(nbu.read(submission.path), lab=lab, release=ctx.release)
    except SubmissionError as exc:
        return _rejected(result, exc.message)
    result.notes += restored.notes
    nb = restored.notebook
    if ctx.visible_tests_only:
        _use_visible_tests(nb, ctx.release)
    result.account_id, result.prefix = new_identity()
    result.timings["prepare"] = time.monotonic() - started

    workdir = Path(tempfile.mkdtemp(prefix=f"{lab.name}-", dir=ctx.work_root))
    try:
        execution = _execute(nb, ctx, result, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result.timings["execute"] = execution.seconds
    result.notes += [f"{e.message} (exercise {e.section})" if e.section else e.message
                     for e in execution.events]  # fmt: skip
    if not health(ctx.endpoint_url):
        raise EmulatorError("the emulator stopped while this submission ran")

    started = time.monotonic()
    executed = execution.notebook
    result.notes += score.autograde(
        executed, lab=lab.name, student=result.student, db_url=ctx.workspace.db_url
    )
    checks = verify.verify(
        lab=lab, endpoint_url=ctx.endpoint_url, account_id=result.account_id,
        prefix=result.prefix, region=ctx.region,
    )  # fmt: skip
    verify.record(checks, lab=lab, student=result.student, db_url=ctx.workspace.db_url)
    result.notes += verify.gate_tests(
        checks, lab=lab, student=result.student, db_url=ctx.workspace.db_url
    )
    result.timings["score"] = time.monotonic() - started

    scores = nbgrader_glue.scores(lab=lab.name, student=result.student, db_url=ctx.workspace.db_url)
    by_id = {nbu.grade_id(c): c for c in executed.cells if nbu.grade_id(c)}
    for graded in lab.graded_cells:
        got, top = scores.get(graded.grade_id, (0.0, graded.points))
        if graded.kind == "state":
            check = checks.get(graded.grade_id)
            message = check.message if check else ""
        else:
            message = (
                score.failure_message(by_id[graded.grade_id]) if graded.grade_id in by_id else ""
            )
        result.cells.append(
            CellResult(graded.grade_id, graded.kind, graded.section, got, top,
                       passed=got >= top, message=message, hint=graded.hint)
        )  # fmt: skip
    result.score = sum(c.points for c in result.cells)
    path = ctx.workspace.autograded_path(result.student, lab.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(executed, str(path))
    return result


def _execute(nb: NotebookNode, ctx: Context, result: SubmissionResult, workdir: Path):
    mode = sandbox.resolve_mode(ctx.config.sandbox)
    if mode == "none" and ctx.config.sandbox == "auto":
        result.notes.append("ran without the bwrap sandbox (bubblewrap is not installed)")
    kernel_dir = sandbox.write_kernelspec(
        workdir / ".kernels", mode=mode, memory_mb=ctx.config.memory_mb,
        hide=[*ctx.hide, *([ctx.work_root.parent] if ctx.work_root else [])], workdir=workdir,
    )  # fmt: skip
    try:
        return execute(
            nb,
            parameters={"endpoint_url": ctx.endpoint_url, "region": ctx.region,
                        "account_id": result.account_id, "prefix": result.prefix},
            cwd=workdir,
            kernel=sandbox.KERNEL_NAME,
            kernel_dirs=[kernel_dir],
            cell_timeout=ctx.config.cell_timeout,
            budget=ctx.config.notebook_timeout,
            output_limit=ctx.config.output_limit,
        )  # fmt: skip
    except CloudlabsError:
        raise
    except Exception as exc:  # the kernel could not start at all: an infrastructure failure
        raise EmulatorError(f"the kernel could not run this submission: {exc}") from exc


def _use_visible_tests(nb: NotebookNode, release: NotebookNode) -> None:
    """For a self-check: test cells as students see them (hidden tests stay hidden)."""
    visible = {nbu.grade_id(c): c.source for c in release.cells if nbu.grade_id(c)}
    for cell in nb.cells:
        gid = nbu.grade_id(cell)
        if gid in visible and nbu.is_graded(cell) and not nbu.is_solution(cell):
            cell.source = visible[gid]


def _rejected(result: SubmissionResult, reason: str) -> SubmissionResult:
    result.status = REJECTED
    result.reason = reason
    return result


def infrastructure_failure(submission: Submission, lab: Lab, reason: str) -> SubmissionResult:
    return SubmissionResult(
        submission.student, lab.name, INFRA, max_score=lab.max_score,
        source=str(submission.path or ""), lab_digest=lab.digest, reason=reason,
    )  # fmt: skip
