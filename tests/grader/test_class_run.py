"""Class runs: resuming, forcing, and surviving an emulator that dies mid-run."""

from __future__ import annotations

import os
import signal
import threading
import time

from grader import emulator as emu
from grader import grade
from grader.config import GradeConfig, load
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


def test_emulator_death_mid_run_is_recovered(tmp_path, minilab_release):
    """Kill the emulator while a slow submission runs: it is restarted and the submission graded
    again from scratch, with its full score."""
    own = emu.create(emulator_config(tmp_path / "emu"))
    own.start()
    try:
        slow = answered(
            minilab_release, kc1_solution='import time\ntime.sleep(6)\nanswer_1 = "B"\n'
        )
        submissions = write_class(tmp_path / "in", {"slow": slow})

        def kill_soon():
            time.sleep(4)
            os.killpg(own.status().pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_soon)
        killer.start()
        result = run(submissions, tmp_path / "out", own)
        killer.join()
        (slow_result,) = result.results
        assert slow_result.status == "graded", slow_result.reason
        assert slow_result.score == 9
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
    slow = answered(minilab_release, kc1_solution='import time\ntime.sleep(6)\nanswer_1 = "B"\n')
    submissions = write_class(tmp_path / "in", {"cara": slow})
    killer = threading.Timer(4, lambda: os.killpg(own.status().pid, signal.SIGKILL))
    killer.start()
    try:
        result = run(submissions, tmp_path / "out", own)
        assert grade.exit_code(result) == 3
        assert result.results[0].status == "infrastructure-error"
        assert "cannot start" in result.results[0].reason
    finally:
        killer.cancel()
        own.stop()
