"""Class runs: resuming, forcing, and surviving an emulator that dies mid-run."""

from __future__ import annotations

import os
import signal

import pytest

from grader import emulator as emu
from grader import grade
from grader.config import GradeConfig, load
from grader.results import GRADED, INFRA
from tests.conftest import emulator_config
from tests.grader.conftest import FILES, write_class
from tests.grader.test_grade import answered


def run(submissions, out, emulator, **kwargs):
    return grade.main(
        lab="minilab", submissions=submissions, out=out, source_dir=FILES,
        release_dir=FILES / "release", emulator_config=emulator.config,
        grade_config=load(GradeConfig, "grade", cell_timeout=20.0, workers=2), **kwargs,
    )  # fmt: skip


def test_rerun_skips_graded_submissions_and_force_regrades(tmp_path, minilab_release, emulator):
    submissions = write_class(tmp_path / "in", {"ann": answered(minilab_release)})
    first = run(submissions, tmp_path / "out", emulator)
    assert first.skipped == 0 and first.results[0].score == 9
    write_class(submissions, {"ben": minilab_release})  # a late submission arrives
    second = run(submissions, tmp_path / "out", emulator)
    assert second.skipped == 1
    assert {r.student: r.score for r in second.results} == {"ann": 9, "ben": 0}
    write_class(submissions, {"ben": answered(minilab_release)})  # ben hands in a new notebook
    third = run(submissions, tmp_path / "out", emulator)
    assert third.skipped == 1  # ann's is kept; ben's changed, so it is graded again
    assert {r.student: r.score for r in third.results} == {"ann": 9, "ben": 9}
    forced = run(submissions, tmp_path / "out", emulator, force=True)
    assert forced.skipped == 0
    assert forced.results[0].account_id != first.results[0].account_id


@pytest.mark.parametrize("fault", ["killed", "restarted"])
def test_an_emulator_lost_mid_submission_is_noticed_and_the_submission_regraded(
    tmp_path, minilab_release, monkeypatch, fault
):
    """The emulator dies (or is restarted behind the grader's back, empty but healthy) while a
    submission's tests run: the grader notices (health, instance id), restarts it if needed and
    grades the submission again from scratch, with its full score. The fault is injected at a
    fixed point, the first test of the run, never by a timer."""
    from grader.trusted import TestProcess

    own = emu.create(emulator_config(tmp_path / "emu"))
    own.start()
    real_run = TestProcess.run
    pending = {"faults": 1}

    def faulty_run(self, *args, **kwargs):
        if pending["faults"]:
            pending["faults"] -= 1
            if fault == "killed":
                os.killpg(own.status().pid, signal.SIGKILL)
            else:
                own.stop()
                own.start()
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(TestProcess, "run", faulty_run)
    try:
        submissions = write_class(tmp_path / "in", {"ann": answered(minilab_release)})
        result = run(submissions, tmp_path / "out", own)
        (ann,) = result.results
        assert pending["faults"] == 0  # the fault happened
        assert (ann.status, ann.score) == (GRADED, 9), (ann.reason, ann.notes)
        assert grade.exit_code(result) == 0
        assert own.status().running
    finally:
        own.stop()


def test_unrecoverable_emulator_is_an_infrastructure_failure(
    tmp_path, minilab_release, monkeypatch
):
    """When the emulator dies and cannot come back, the run says so with exit code 3."""
    from grader.emulator.embedded import EmbeddedEmulator
    from grader.errors import EmulatorError

    own = emu.create(emulator_config(tmp_path / "emu"))
    real_start = EmbeddedEmulator.start
    starts = {"n": 0}

    def flaky_start(self):
        starts["n"] += 1
        if starts["n"] > 1:
            raise EmulatorError("the emulator cannot start (simulated)")
        real_start(self)

    own.start()  # healthy before the run, so the kill below can only land while grading
    monkeypatch.setattr(EmbeddedEmulator, "start", flaky_start)
    from grader.trusted import TestProcess

    real_run = TestProcess.run

    def killing_run(self, *args, **kwargs):  # the fault, at the first test of the run
        if own.status().running:
            os.killpg(own.status().pid, signal.SIGKILL)
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(TestProcess, "run", killing_run)
    submissions = write_class(tmp_path / "in", {"cara": answered(minilab_release)})
    try:
        result = run(submissions, tmp_path / "out", own)
        assert grade.exit_code(result) == 3
        assert result.results[0].status == INFRA
        assert "cannot start" in result.results[0].reason
    finally:
        own.stop()
