"""Grading one submission: the ordered steps, each in its own module.

    read + restore (grader.restore) -> execute (grader.execute) -> verify state (grader.verify)
    -> score with nbgrader's rule, bounded by the state (grader.score, grader.verify)
    -> result (grader.results) -> one gradebook write (grader.nbgrader_glue.record)

Feedback and exports are made from results afterwards (grader.feedback, grader.export).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from grader import late, nbgrader_glue, plain, sandbox, score, summary, verify
from grader import notebook as nbu
from grader.collect import Submission
from grader.config import GradeConfig
from grader.emulator import Emulator, health
from grader.errors import CloudlabsError, EmulatorError, SubmissionError
from grader.execute import Execution, Tests, execute
from grader.kernels import Kernel, KernelPool
from grader.labs import Lab
from grader.restore import restore
from grader.results import GATED, GRADED, INFRA, REJECTED, CellResult, SubmissionResult
from grader.statecheck import session_for
from grader.trusted import TestPool, TestProcess
from grader.workspace import Workspace


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
    tests: TestPool | None = None  #: trusted test processes (one is made when None)
    emulator: Emulator | None = None  #: the backend, to tell a restarted emulator (instance id)
    record: bool = True  #: write the gradebook and the autograded notebook (a self-check: no)
    kernels: KernelPool | None = None  #: kernels started ahead of need (one is started when None)
    forkserver: Path | None = None  #: socket of the kernels' fork server (grader.forkserver)
    late: late.Policy = late.Policy()  #: the due date and late penalty


def new_identity() -> tuple[str, str]:
    """An unguessable account id and resource prefix for one submission."""
    account = str(secrets.randbelow(9 * 10**11) + 10**11)
    prefix = "s" + secrets.token_hex(5)  # lowercase letters and digits: valid in every name
    return account, prefix


def grade(
    submission: Submission, ctx: Context, *, first_graded: datetime.datetime | None = None
) -> SubmissionResult:
    """Grade one submission. Bad input yields a REJECTED result; EmulatorError propagates
    (the caller restarts the emulator and retries); nothing else escapes. ``first_graded``: when
    this notebook was first graded, its submission time if it has none (default: now)."""
    lab = ctx.lab
    result = SubmissionResult(
        submission.student, lab.name, GRADED, max_score=lab.max_score,
        source=str(submission.path or ""), lab_digest=lab.digest,
        source_digest=submission.digest,
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

    parameters = {"endpoint_url": ctx.endpoint_url, "region": ctx.region,
                  "account_id": result.account_id, "prefix": result.prefix}  # fmt: skip
    instance = _instance(ctx)
    if instance is None:
        raise EmulatorError("the emulator is not answering")
    mode = sandbox.resolve_mode(ctx.config.sandbox)
    if mode == "none" and ctx.config.sandbox == "auto":
        result.notes.append("ran without the bwrap sandbox (bubblewrap is not installed)")
    with _test_process(ctx) as process:
        process.begin(parameters=parameters, setup=lab.setup_sources)
        execution = _execute(nb, ctx, parameters, Tests(process, lab.test_inputs))
    result.timings["execute"] = execution.seconds
    result.timings.update(execution.timings)
    result.notes += [f"{e.message} (exercise {e.section})" if e.section else e.message
                     for e in execution.events]  # fmt: skip

    started = time.monotonic()
    executed = execution.notebook
    _answer_outcomes(executed, result)
    aws = session_for(  # the checks are ours and register no handlers: clients are reused
        endpoint_url=ctx.endpoint_url, account_id=result.account_id, region=ctx.region, reuse=True
    )
    checks = verify.verify(lab=lab, aws=aws, prefix=result.prefix)
    if _instance(ctx) != instance:  # a restarted emulator is empty: never score against it
        raise EmulatorError("the emulator stopped or restarted while this submission ran")
    _end_functions(aws)
    result.timings["state checks"] = time.monotonic() - started

    started = time.monotonic()
    result.notes += score.prepare_for_nbgrader(executed, execution.ran)
    points, gated, notes = verify.bound_tests(score.test_points(executed), checks, lab=lab)
    result.notes += notes
    by_id = {nbu.grade_id(c): c for c in executed.cells if nbu.grade_id(c)}
    for graded in lab.graded_cells:
        got, top = points.get(graded.grade_id, 0.0), graded.points
        if graded.kind == "state":
            check = checks.get(graded.grade_id)
            message = check.message if check else ""
        else:
            cell = by_id.get(graded.grade_id)
            message = score.failure_message(cell) if cell is not None else ""
            if not message and graded.grade_id in gated:
                message = (
                    f"{GATED} it earns {summary.points(got)}/{summary.points(top)}: not all the "
                    "resources this exercise asks for were found in your account"
                )
        result.cells.append(
            CellResult(graded.grade_id, graded.kind, graded.section, got, top,
                       passed=got >= top, message=message, hint=graded.hint)
        )  # fmt: skip
    result.add_up()
    now = datetime.datetime.now(datetime.UTC)
    late.apply(result, ctx.late, submission.submitted_at, first_graded=first_graded or now)
    result.timings["score"] = time.monotonic() - started
    if ctx.record:
        started = time.monotonic()
        nbgrader_glue.record(
            executed,
            points,
            lab=lab.name,
            student=result.student,
            db_url=ctx.workspace.db_url,
            lateness=(late.parse_time(result.submitted_at), result.late_penalty),
        )
        path = ctx.workspace.autograded_path(result.student, lab.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(executed, str(path))
        result.timings["record"] = time.monotonic() - started
    return result


def _answer_outcomes(executed: NotebookNode, result: SubmissionResult) -> None:
    """Which exercises were not attempted, and the first error each answer cell raised."""
    for cell, section in zip(executed.cells, nbu.sections(executed), strict=True):
        if not section or not nbu.is_solution(cell) or cell.cell_type != "code":
            continue
        error = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
        if error is None:
            continue
        name, value = str(error.get("ename", "")), str(error.get("evalue", ""))
        if name == "NotImplementedError":
            if section not in result.unattempted:
                result.unattempted.append(section)
        else:
            result.answer_errors.setdefault(section, plain.explain_text(name, value))


def _instance(ctx: Context) -> str | None:
    """Who answers at the endpoint: an id that changes when the emulator restarts (None when
    nothing healthy answers). Read with the grader's admin token, which no student has; an
    external emulator has no instance id, so only its health is known."""
    if ctx.emulator is not None and ctx.emulator.admin_token:
        return ctx.emulator.instance_id()
    return "up" if health(ctx.endpoint_url) else None


def _end_functions(aws: Any) -> None:
    """Once graded, the submission's Lambda functions go: the emulator would otherwise keep
    their execution environments (processes) warm for the rest of the class run."""
    with contextlib.suppress(Exception):  # best effort: the grade is already decided
        lam = aws.client("lambda")
        for page in lam.get_paginator("list_functions").paginate(
            PaginationConfig={"MaxItems": 500}
        ):
            for function in page.get("Functions", []):
                with contextlib.suppress(Exception):
                    lam.delete_function(FunctionName=function["FunctionName"])


@contextlib.contextmanager
def _test_process(ctx: Context) -> Iterator[TestProcess]:
    if ctx.tests is not None:
        with ctx.tests.process() as process:
            yield process
        return
    with TestPool() as pool, pool.process() as process:
        yield process


def new_kernel(ctx: Context) -> Kernel:
    """A sandboxed kernel for one submission of ``ctx.lab``, the lab's imports preloaded."""
    return Kernel(
        parent=ctx.work_root, mode=sandbox.resolve_mode(ctx.config.sandbox),
        memory_mb=ctx.config.memory_mb, preload=ctx.lab.imports, forkserver=ctx.forkserver,
        hide=[*ctx.hide, *([ctx.work_root.parent] if ctx.work_root else [])],
    )  # fmt: skip


def _execute(nb: NotebookNode, ctx: Context, parameters: dict, tests: Tests) -> Execution:
    try:
        kernel = ctx.kernels.take() if ctx.kernels is not None else new_kernel(ctx).start()
    except Exception as exc:  # the kernel could not start at all: an infrastructure failure
        raise EmulatorError(f"no kernel could be started for this submission: {exc}") from exc
    try:
        return execute(
            nb,
            parameters=parameters,
            cwd=kernel.workdir,
            kernel=sandbox.KERNEL_NAME,
            km=kernel.km,
            cell_timeout=ctx.config.cell_timeout,
            budget=ctx.config.notebook_timeout,
            output_limit=ctx.config.output_limit,
            tests=tests,
            emulator_alive=lambda: _instance(ctx) is not None,
        )  # fmt: skip
    except CloudlabsError:
        raise
    except Exception as exc:  # the kernel did not come up: an infrastructure failure
        raise EmulatorError(f"the kernel could not run this submission: {exc}") from exc
    finally:
        kernel.close()


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
