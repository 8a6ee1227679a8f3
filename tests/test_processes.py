"""Grading leaves no process behind: no kernel, no bwrap, no trusted test worker, no Lambda
runtime outlives the self-check or the class run that started it.

``process_watch`` (tests/conftest.py) makes this process a child subreaper while the test runs,
so whatever a kernel, bwrap or the emulator orphans comes back here instead of init; processes it
cannot catch that way (children of init) are counted when they name the test's tmp_path, where
the kernels' working directories are. What was started is waited for, with a bound, and
whatever is still there then was left behind.
"""

from __future__ import annotations

import contextlib
import shutil

import psutil
import pytest

from grader import check, grade
from grader.config import GradeConfig, load
from grader.results import GRADED
from tests import factories as f
from tests.grader import conftest as grading
from tests.grader.conftest import FILES, write_class
from tests.grader.test_grade import answered

# The minilab fixtures of tests/grader/conftest.py (this file is not below it).
minilab, minilab_release = grading.minilab, grading.minilab_release

needs_bwrap = pytest.mark.skipif(not shutil.which("bwrap"), reason="bubblewrap is not installed")
SANDBOXES = ["none", pytest.param("bwrap", marks=needs_bwrap)]


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_self_check_leaves_no_process(
    tmp_path, minilab_release, emulator, process_watch, sandbox
):
    path = tmp_path / "minilab.ipynb"
    f.write(answered(minilab_release), path)
    result = check.main(
        target=str(path), source_dir=FILES, release_dir=FILES / "release",
        emulator_config=emulator.config, grade_config=load(GradeConfig, "grade", sandbox=sandbox),
    )  # fmt: skip
    assert result.status == GRADED and result.score == result.max_score
    left = process_watch.left(timeout=15)
    assert not left, process_watch.describe(left)


def running_kernels(watch) -> list:
    """The kernels this process started that still run: its children that are a kernel (``none``)
    or a kernel's bwrap. A kernel manager waits for that process when it ends a kernel, so the
    count is exact at any moment, unlike that of the processes inside bwrap, which die after it."""
    found = []
    for process in watch.new():
        with contextlib.suppress(psutil.Error):
            command = process.cmdline()
            if (
                process.ppid() == watch.me.pid
                and process.status() != psutil.STATUS_ZOMBIE
                and ("ipykernel_launcher" in command or command[:1] == ["bwrap"])
            ):
                found.append(process)
    return found


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_class_run_leaves_no_process(tmp_path, minilab_release, emulator, process_watch, sandbox):
    students = {
        "ann": answered(minilab_release),
        "ben": answered(minilab_release),
        "exiter": answered(minilab_release, ex2_solution="import os\nos._exit(1)\n"),  # restarted
        "looper": answered(minilab_release, ex1_solution="while True:\n    pass\n"),  # stopped
        "zoe": answered(minilab_release),
    }
    workers = 2
    kernels: list[int] = []  # kernels running each time a submission is done

    def progress(result, done, total):
        kernels.append(len(running_kernels(process_watch)))

    run = grade.main(
        lab="minilab", submissions=write_class(tmp_path / "submitted", students),
        out=tmp_path / "out", source_dir=FILES, release_dir=FILES / "release",
        emulator_config=emulator.config, progress=progress,
        grade_config=load(GradeConfig, "grade", cell_timeout=5.0, notebook_timeout=120.0,
                          workers=workers, sandbox=sandbox),
    )  # fmt: skip
    assert {r.status for r in run.results} == {GRADED}
    # each submission's kernel ends with its grading, not with the worker thread or the run; at
    # most one kernel per worker boots ahead, and none for a submission that is not there
    assert len(kernels) == len(students) and max(kernels) <= 2 * workers, kernels
    assert kernels[-1] == 0, kernels
    left = process_watch.left(timeout=15)
    assert not left, process_watch.describe(left)


LAMBDA = r"""
import io, json, zipfile
lam, iam = session.client("lambda", endpoint_url=endpoint_url), client("iam")
role = iam.create_role(RoleName=f"{prefix}-role", AssumeRolePolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": []}))["Role"]["Arn"]
code = io.BytesIO()
with zipfile.ZipFile(code, "w") as archive:
    archive.writestr("app.py", "def handler(event, context):\n    return 1\n")
lam.create_function(FunctionName=f"{prefix}-f", Runtime="python3.11", Role=role,
                    Handler="app.handler", Code={"ZipFile": code.getvalue()})
lam.get_waiter("function_active_v2").wait(FunctionName=f"{prefix}-f")
lam.invoke(FunctionName=f"{prefix}-f")
answer_1 = "B"
"""


def test_a_class_run_leaves_no_lambda_runtime(tmp_path, minilab_release, emulator, process_watch):
    students = {"lambda": answered(minilab_release, kc1_solution=LAMBDA)}
    run = grade.main(
        lab="minilab", submissions=write_class(tmp_path / "submitted", students),
        out=tmp_path / "out", source_dir=FILES, release_dir=FILES / "release",
        emulator_config=emulator.config,
        grade_config=load(GradeConfig, "grade", cell_timeout=60.0, workers=1),
    )  # fmt: skip
    assert run.results[0].status == GRADED and run.results[0].score == 9
    left = process_watch.left(timeout=15)
    assert not left, process_watch.describe(left)
