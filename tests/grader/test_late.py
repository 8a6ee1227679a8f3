"""Late work: the policy's arithmetic, where a submission time comes from, and a class graded
with a due date on the real emulator: penalties in the results, the CSV, the JUnit report, the
pages and nbgrader's own gradebook; a new policy without running notebooks again; one student
regraded alone."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import xml.etree.ElementTree as ET

import pytest

from grader import late
from grader.config import LateConfig, load
from grader.errors import ConfigError
from grader.results import GRADED, SubmissionResult
from grader.summary import points
from tests import factories as f
from tests.grader.conftest import FILES
from tests.grader.test_grade import answered

UTC = dt.UTC
DUE = dt.datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _policy(**fields) -> late.Policy:
    fields = {"due": DUE.isoformat(), "penalty_per_day": 10.0, "max_penalty": 30.0, **fields}
    return late.Policy.from_config(LateConfig(**fields))


# -- the arithmetic --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01T13:00:00+01:00", DUE),
        ("2026-12-01T12:00Z", DUE),
        ("2026-12-01 12:00:00.000000 UTC", DUE),  # nbgrader's own format
        ("  2026-12-01 12:00:00\n", DUE),  # no zone: UTC, as nbgrader reads it
        ("yesterday", None),
        ("", None),
        ("2026-13-45T00:00", None),
    ],
)
def test_times_are_read_as_nbgrader_writes_them(text, expected):
    assert late.parse_time(text) == expected


@pytest.mark.parametrize(
    ("submitted", "penalty", "seconds"),
    [
        (DUE - dt.timedelta(days=3), 0.0, 0.0),  # early
        (DUE, 0.0, 0.0),  # on the dot
        (DUE + dt.timedelta(minutes=15), 0.0, 0.0),  # within the grace period
        (DUE + dt.timedelta(minutes=15, seconds=1), 4.0, 901.0),  # one second late: one day
        (DUE + dt.timedelta(days=1, minutes=15), 4.0, 87300.0),  # exactly one day
        (DUE + dt.timedelta(days=1, minutes=16), 8.0, 87360.0),  # into the second day
        (DUE + dt.timedelta(days=30), 12.0, 30 * 86400.0),  # capped at 30 %
    ],
)
def test_each_day_or_part_of_a_day_costs_a_share_up_to_the_cap(submitted, penalty, seconds):
    policy = _policy(grace_minutes=15)
    assert policy.assess(submitted, score=35.0, max_score=40.0) == (seconds, penalty)


def test_a_penalty_never_takes_more_than_was_earned_and_no_due_date_costs_nothing():
    two_weeks = DUE + dt.timedelta(days=14)
    assert _policy().assess(two_weeks, score=5.0, max_score=40.0) == (14 * 86400.0, 5.0)
    assert _policy().assess(two_weeks, score=0.0, max_score=40.0)[1] == 0.0
    assert late.Policy().assess(two_weeks, 40.0, 40.0) == (0.0, 0.0)
    assert late.Policy().describe() == "no due date"
    assert "10% per day late, at most 30%" in _policy().describe()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"due": "next friday"}, "is not a time"),
        ({"penalty_per_day": -5.0}, "cannot be negative"),
        ({"grace_minutes": -1.0}, "cannot be negative"),
        ({"max_penalty": 150.0}, "from 0 to 100"),
    ],
)
def test_an_impossible_policy_is_refused_with_the_fix(fields, message):
    with pytest.raises(ConfigError, match=message) as caught:
        _policy(**fields)
    assert caught.value.fix


def test_the_policy_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("CLOUDLABS_LATE_DUE", "2026-12-01T12:00Z")
    monkeypatch.setenv("CLOUDLABS_LATE_PENALTY_PER_DAY", "5")
    policy = late.Policy.from_config(load(LateConfig, "late"))
    assert policy.due == DUE and policy.per_day == 5.0 and policy.cap == 100.0


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(1, "1 min"), (3600, "1 h"), (3 * 3600 + 1200, "3 h 20 min"), (86400, "1 day"),
     (2 * 86400 + 3600 + 59, "2 days 1 h")],
)  # fmt: skip
def test_lateness_in_words(seconds, words):
    assert late.days_late(seconds) == words


def test_a_timestamp_file_is_read_only_when_it_is_a_short_plain_file(tmp_path):
    assert late.read_timestamp(tmp_path) is None  # none at all
    (tmp_path / "timestamp.txt").write_text("2026-12-01 12:00:00 UTC\n")
    assert late.read_timestamp(tmp_path) == DUE
    (tmp_path / "timestamp.txt").write_text("2026-12-01 12:00:00 UTC" + " " * 500)
    assert late.read_timestamp(tmp_path) is None  # too long to be a time
    (tmp_path / "timestamp.txt").unlink()
    (tmp_path / "elsewhere.txt").write_text("2026-12-01 12:00:00 UTC")
    (tmp_path / "timestamp.txt").symlink_to(tmp_path / "elsewhere.txt")
    assert late.read_timestamp(tmp_path) is None  # never through a link
    (tmp_path / "timestamp.txt").unlink()
    (tmp_path / "timestamp.txt").mkdir()
    assert late.read_timestamp(tmp_path) is None


def test_without_a_submission_time_the_first_grading_counts():
    result = SubmissionResult("ann", "minilab", GRADED, score=20.0, max_score=40.0,
                              source_digest="abc")  # fmt: skip
    graded_at = DUE + dt.timedelta(days=2)
    assert late.apply(result, _policy(), None, first_graded=graded_at)
    assert (result.submitted_from, result.late_penalty) == (late.FIRST_GRADED, 8.0)  # 2 days
    assert "counted from when it was first graded" in late.summary(result)
    # a rerun a week later keeps that time for the same notebook, not for a new one
    assert late.first_graded(result, "abc") == graded_at
    now = dt.datetime.now(UTC)
    assert late.first_graded(result, "new") >= now  # another notebook: now
    assert not late.apply(result, _policy(), None, first_graded=graded_at)  # nothing changed
    assert late.apply(result, _policy(max_penalty=10.0), None, first_graded=graded_at)
    assert result.final_score == 16.0


# -- a class with a due date, on the real emulator --------------------------------------------

#: student -> when the exchange says it was handed in ("" for no timestamp.txt, or raw text)
HANDED_IN = {
    "early": "2026-11-30 09:00:00.000000 UTC",
    "grace": "2026-12-01T12:10:00+00:00",
    "late": "2026-12-02 18:00:00 UTC",  # 30 h 50 min after the grace period: 2 days
    "latest": "2026-12-20T00:00:00Z",  # capped
    "blank-late": "2026-12-03 00:00:00 UTC",  # scored 0: loses nothing
    "forged": "not a time; do not count me late",
}


def _write_collected(root, release) -> None:
    """nbgrader's collected layout: submitted/<student>/minilab/{minilab.ipynb,timestamp.txt}."""
    for student, stamp in HANDED_IN.items():
        folder = root / student / "minilab"
        folder.mkdir(parents=True)
        f.write(release if student.startswith("blank") else answered(release),
                folder / "minilab.ipynb")  # fmt: skip
        (folder / "timestamp.txt").write_text(stamp)


@pytest.fixture(scope="module")
def late_class(minilab_release, tmp_path_factory, emulator):
    from grader import grade
    from grader.config import GradeConfig

    root = tmp_path_factory.mktemp("late")
    _write_collected(root / "submitted", minilab_release)

    def run(policy: LateConfig, out=root / "out", **options):
        return grade.main(
            lab="minilab", submissions=root / "submitted", out=out, source_dir=FILES,
            release_dir=FILES / "release", emulator_config=emulator.config,
            grade_config=load(GradeConfig, "grade", workers=2, cell_timeout=20.0,
                              notebook_timeout=120.0),
            late_config=policy, **options,
        )  # fmt: skip

    policy = LateConfig(due=DUE.isoformat(), grace_minutes=15, penalty_per_day=10, max_penalty=30)
    first = run(policy)
    return run, first, {r.student: r for r in first.results}


def test_late_students_lose_their_share_and_nobody_else(late_class):
    results = late_class[2]
    assert {r.status for r in results.values()} == {GRADED}
    top = results["early"].max_score
    assert results["early"].score == top  # every answered notebook earns full marks
    penalties = {s: r.late_penalty for s, r in results.items()}
    assert penalties == pytest.approx({
        "early": 0.0, "grace": 0.0, "late": 0.2 * top, "latest": 0.3 * top, "blank-late": 0.0,
        # no readable time: counted from the first grading, today, days after the due date
        "forged": 0.3 * top,
    })  # fmt: skip
    assert results["late"].final_score == pytest.approx(0.8 * top)
    assert results["late"].submitted_at == "2026-12-02T18:00:00+00:00"
    assert results["late"].submitted_from == "timestamp.txt"
    assert results["forged"].submitted_from == late.FIRST_GRADED


def test_the_csv_and_junit_carry_the_penalty(late_class):
    _, run, results = late_class
    rows = {r["student_id"]: r for r in csv.DictReader((run.workspace.root / "grades.csv").open())}
    top = results["late"].max_score
    assert rows["late"]["duedate"] == "2026-12-01T12:00:00+00:00"
    assert rows["late"]["timestamp"] == "2026-12-02T18:00:00+00:00"
    assert float(rows["late"]["raw_score"]) == top
    assert float(rows["late"]["late_submission_penalty"]) == pytest.approx(0.2 * top)
    assert float(rows["late"]["score"]) == pytest.approx(0.8 * top)
    assert float(rows["early"]["late_submission_penalty"]) == 0.0
    assert float(rows["early"]["score"]) == top
    suites = {s.get("name"): s for s in ET.parse(run.workspace.root / "junit.xml").getroot()}
    on_time = [c for c in suites["minilab.late"] if c.get("name") == "on time"]
    assert len(on_time) == 1
    penalty = results["late"].late_penalty
    assert on_time[0][0].get("message") == (
        f"handed in 1 day 6 h after the due time: -{penalty:g} points"
    )
    assert not [c for c in suites["minilab.early"] if c.get("name") == "on time"]


def test_the_pages_say_how_late_and_what_it_cost(late_class):
    _, run, results = late_class
    result = results["late"]
    page = run.workspace.feedback_path("late", "minilab").read_text()
    assert f"Score: {points(result.final_score)} / {points(result.max_score)}" in page
    assert f"Late: handed in 1 day 6 h after the due time: -{result.late_penalty:g} points" in page
    assert "Late:" not in run.workspace.feedback_path("early", "minilab").read_text()
    summary = (run.workspace.root / "summary.html").read_text()
    assert f"{result.final_score:g}/{result.max_score:g}" in summary
    assert "handed in 1 day 6 h after the due time" in summary


def _gradebook(run) -> tuple:
    from nbgrader.api import Gradebook

    with Gradebook(run.workspace.db_url) as gb:
        due = gb.find_assignment("minilab").duedate
        rows = {
            s.student.id: (s.timestamp, s.late_submission_penalty, s.score)
            for s in gb.assignment_submissions("minilab")
        }
    return due, rows


def test_nbgrader_s_gradebook_holds_the_same_times_and_penalties(late_class):
    _, run, results = late_class
    due, rows = _gradebook(run)
    assert due == DUE.replace(tzinfo=None)  # nbgrader keeps naive UTC
    top = results["late"].max_score
    assert rows["late"] == (dt.datetime(2026, 12, 2, 18, 0), pytest.approx(0.2 * top), top)
    for student, result in results.items():
        assert rows[student][1:] == (result.late_penalty, result.score)


def _copy(run, tmp_path):
    """The class run's workspace, copied: a test that grades again leaves the module's alone."""
    shutil.copytree(run.workspace.root, tmp_path / "out")
    return tmp_path / "out"


def test_a_new_policy_updates_every_result_without_running_a_notebook(late_class, tmp_path):
    run_again, first, results = late_class
    out = _copy(first, tmp_path)
    waived = run_again(
        LateConfig(due="2026-12-03T00:00Z", penalty_per_day=5, max_penalty=10), out=out
    )
    assert waived.skipped == len(results)  # nothing graded again
    again = {r.student: r for r in waived.results}
    assert {s: r.account_id for s, r in again.items()} == {
        s: r.account_id for s, r in results.items()
    }  # fmt: skip
    top = results["late"].max_score
    assert again["late"].late_penalty == 0.0
    assert again["latest"].late_penalty == pytest.approx(0.1 * top)  # the new cap
    saved = SubmissionResult.load(waived.workspace.result_path("latest"))
    assert saved.late_penalty == pytest.approx(0.1 * top)
    assert saved.final_score == pytest.approx(0.9 * top)
    assert _gradebook(waived)[1]["latest"][1] == pytest.approx(0.1 * top)
    page = waived.workspace.feedback_path("late", "minilab").read_text()
    assert "Late:" not in page and f"Score: {points(top)} / {points(top)}" in page


def test_one_student_is_regraded_alone(late_class, tmp_path):
    run_again, first, results = late_class
    out = _copy(first, tmp_path)
    policy = LateConfig(due=DUE.isoformat(), penalty_per_day=20, max_penalty=100)
    one = run_again(policy, out=out, students=("late",))
    assert one.skipped == len(results) - 1
    after = {r.student: r for r in one.results}
    assert set(after) == set(results)  # the exports still list the whole class
    assert after["late"].account_id != results["late"].account_id  # graded again
    others = {s: r.account_id for s, r in after.items() if s != "late"}
    assert others == {s: r.account_id for s, r in results.items() if s != "late"}
    # the policy given applies to everyone: 2 days late at 20 % a day
    top = results["late"].max_score
    assert after["late"].late_penalty == pytest.approx(0.4 * top)
    assert after["grace"].late_penalty == pytest.approx(0.2 * top)
    rows = list(csv.DictReader((one.workspace.root / "grades.csv").open()))
    assert len(rows) == len(results)
    with pytest.raises(ConfigError, match="no submission of nobody"):
        run_again(policy, out=out, students=("nobody",))
