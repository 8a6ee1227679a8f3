"""``cloudlabs grade <lab> <submissions>``: a whole class, in parallel, on one emulator.

Every submission gets its own account and prefix, so they run side by side on one emulator. A run
is resumable: a submission whose result exists for the same lab version is skipped unless
``force``. If the emulator dies mid-run it is restarted and the submissions it was running are
graded again; nothing already graded is lost (each result is written when it is done). One bad
submission never stops the class: it gets a result that says why.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import functools
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from grader import emulator as emu
from grader import export, feedback, forkserver, late, nbgrader_glue, sandbox
from grader import workspace as workspaces
from grader.collect import Submission, collect
from grader.config import EmulatorConfig, GradeConfig, LateConfig, load
from grader.errors import ConfigError, EmulatorError, ExitCode
from grader.kernels import KernelPool
from grader.labs import RELEASE_DIR, SOURCE_DIR, Lab, find
from grader.pipeline import Context, grade, infrastructure_failure, new_kernel
from grader.results import INFRA, SubmissionResult
from grader.shard import MANIFEST, Manifest, Shard
from grader.trusted import TestPool

MAX_ATTEMPTS = 3


@dataclasses.dataclass
class ClassRun:
    """The outcome of grading a class."""

    lab: Lab
    workspace: workspaces.Workspace
    results: list[SubmissionResult]
    skipped: int = 0
    #: seconds spent on the class as a whole: release, feedback (all pages), exports
    timings: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def infrastructure_failed(self) -> bool:
        return any(r.status == INFRA for r in self.results)


class _EmulatorGuard:
    """Restarts the emulator once when several workers find it dead at the same time."""

    def __init__(self, emulator: emu.Emulator) -> None:
        self.emulator = emulator
        self.lock = threading.Lock()
        self.generation = 0

    def recover(self, seen_generation: int) -> None:
        with self.lock:
            if self.generation != seen_generation:
                return  # another worker already restarted it
            if not emu.health(self.emulator.endpoint_url, token=self.emulator.admin_token):
                self.emulator.stop()
                self.emulator.start()
            self.generation += 1


def main(
    *,
    lab: str,
    submissions: Path,
    out: Path | None = None,
    workers: int | None = None,
    force: bool = False,
    shard: Shard | None = None,
    students: tuple[str, ...] = (),
    late_config: LateConfig | None = None,
    source_dir: Path = SOURCE_DIR,
    release_dir: Path = RELEASE_DIR,
    emulator_config: EmulatorConfig | None = None,
    grade_config: GradeConfig | None = None,
    progress: Callable[[SubmissionResult, int, int], None] | None = None,
) -> ClassRun:
    """Grade every submission of ``lab`` found at ``submissions`` (only ``shard``'s share of
    them when given); results go to ``out``. With ``students``, grade those again and nobody
    else: the others keep the results they have. Lateness follows ``late_config``."""
    the_lab = find(lab, source_dir=source_dir, release_dir=release_dir)
    config = grade_config or load(GradeConfig, "grade", workers=workers)
    policy = late.Policy.from_config(late_config or load(LateConfig, "late"))
    out = (out or Path("cloudlabs-grades") / lab).resolve()
    # the input first: a wrong path fails at once, and leaves no workspace behind
    found = collect(submissions, lab=lab, unpack_dir=out / "unpacked")
    if shard is not None:
        found = [s for s in found if shard.owns(s.student)]
    missing = sorted(set(students) - {s.student for s in found})
    if missing:
        raise ConfigError(
            f"no submission of {', '.join(missing)} in {submissions}",
            fix="give the student ids as `cloudlabs grade` names them (see its class table)",
        )
    timings: dict[str, float] = {}
    timings_lock = threading.Lock()
    started = time.monotonic()
    workspace, release = workspaces.prepare(the_lab, out)
    timings["release"] = time.monotonic() - started
    if shard is not None:  # written first: a shard killed half-way is known to be incomplete
        owned = tuple(sorted(s.student for s in found))
        due = policy.due.isoformat() if policy.due else ""
        manifest = Manifest(lab, the_lab.digest, shard.index, shard.count, owned)
        dataclasses.replace(manifest, late=policy.describe(), due=due).write(out)
    else:
        (out / MANIFEST).unlink(missing_ok=True)  # a whole class now, no longer a shard
    nbgrader_glue.set_due(lab, policy.due, db_url=workspace.db_url)

    todo: list[Submission] = []
    done: list[SubmissionResult] = []
    first_graded: dict[str, datetime.datetime] = {}
    relate: list[SubmissionResult] = []  #: resumed results whose lateness changed
    for submission in found:
        path = workspace.result_path(submission.student)
        previous = SubmissionResult.load(path) if path.exists() else None
        first_graded[submission.student] = late.first_graded(previous, submission.digest)
        kept = previous is not None and previous.lab_digest == the_lab.digest
        if students:  # only those asked for are graded; the others keep the result they have
            resume = kept and submission.student not in students
        else:
            same = kept and previous.source_digest == submission.digest
            resume = same and not force and previous.status != INFRA
        if resume:
            if late.reapply(previous, policy, submission.submitted_at, submission.digest):
                relate.append(previous)
            done.append(previous)
            continue
        if students and submission.student not in students:
            continue  # not asked for, and no result to keep
        todo.append(submission)
    skipped = len(done)
    for result in relate:  # another late policy: new penalties, no notebook run again
        result.save(workspace.result_path(result.student))
        feedback.write(result, the_lab, workspace, release)
    nbgrader_glue.set_lateness(
        lab, {r.student: (late.parse_time(r.submitted_at), r.late_penalty) for r in relate},
        db_url=workspace.db_url,
    )  # fmt: skip

    emulator = emu.create(emulator_config)
    emulator.start()
    guard = _EmulatorGuard(emulator)
    # Student kernels must not read the lab sources, the results, the submissions, the emulator's
    # state (other students' Lambda code) or each other's working directories.
    hide = (source_dir.resolve(), out, submissions.resolve(), emulator.config.home.resolve())
    nbgrader_glue.add_students([s.student for s in found], db_url=workspace.db_url)
    work_root = sandbox.work_root()
    # the kernels are forked from a process with the imports done (where it can be)
    server = forkserver.start(
        mode=sandbox.resolve_mode(config.sandbox), parent=work_root, preload=the_lab.imports,
        services=the_lab.services,
    ) if len(todo) > 1 else None  # fmt: skip
    tests = TestPool()  # the trusted processes where test cells run, one per worker
    base = Context(
        lab=the_lab, release=release, workspace=workspace, endpoint_url=emulator.endpoint_url,
        config=config, hide=hide, region=emulator.config.region, work_root=work_root,
        tests=tests, emulator=emulator, late=policy,
        forkserver=server.socket if server else None,
    )  # fmt: skip
    # the kernels of the next submissions boot while the current ones run
    workers = max(1, config.workers)
    kernels = KernelPool(functools.partial(new_kernel, base), ahead=workers, total=len(todo))
    ctx = dataclasses.replace(base, kernels=kernels)

    def one(submission: Submission) -> SubmissionResult:
        result = _attempts(submission)
        # saved the moment it is done (a killed run keeps it), then its page (rejected students
        # get one that says why)
        result.save(workspace.result_path(result.student))
        started = time.monotonic()
        feedback.write(result, the_lab, workspace, release)
        with timings_lock:
            timings["feedback"] = timings.get("feedback", 0.0) + time.monotonic() - started
        return result

    def _attempts(submission: Submission) -> SubmissionResult:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            generation = guard.generation
            try:
                return grade(submission, ctx, first_graded=first_graded[submission.student])
            except EmulatorError as exc:
                if attempt == MAX_ATTEMPTS:
                    return infrastructure_failure(
                        submission, the_lab, f"{exc.message} ({attempt} attempts)"
                    )
                try:
                    guard.recover(generation)
                except EmulatorError as restart_error:
                    return infrastructure_failure(submission, the_lab, restart_error.message)
            except Exception as exc:  # a grader bug must not lose the rest of the class
                return infrastructure_failure(submission, the_lab, f"internal error: {exc!r}")
        raise AssertionError("unreachable")

    try:
        kernels.fill()
        if todo:
            tests.warm(min(len(todo), workers))
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(one, submission) for submission in todo]
            for count, future in enumerate(concurrent.futures.as_completed(futures), start=1):
                result = future.result()
                done.append(result)
                if progress:
                    progress(result, count, len(todo))
    finally:
        kernels.close()
        tests.close()
        if server:
            server.close()
        shutil.rmtree(work_root, ignore_errors=True)
    results = sorted(done, key=lambda r: r.student)
    started = time.monotonic()
    export.write_all(the_lab, results, workspace, due=policy.due.isoformat() if policy.due else "")
    timings["exports"] = time.monotonic() - started
    return ClassRun(the_lab, workspace, results, skipped, timings)


def exit_code(run: ClassRun) -> ExitCode:
    """OK when the class was graded (whatever the scores); INFRASTRUCTURE when an
    infrastructure failure left work undone."""
    return ExitCode.INFRASTRUCTURE if run.infrastructure_failed else ExitCode.OK
