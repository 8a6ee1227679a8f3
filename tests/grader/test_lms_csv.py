"""Gradebook files for Canvas and Moodle from the results of a small class: final scores after the
late penalty, a rejected student's cell empty (never 0), the roster's identifiers."""

from __future__ import annotations

import pytest

from grader import lms_csv
from grader.errors import ConfigError
from grader.results import GRADED, REJECTED, SubmissionResult


def _class() -> list[SubmissionResult]:
    return [
        SubmissionResult("alice", "minilab", GRADED, score=8.0, max_score=10.0),
        SubmissionResult("carol", "minilab", REJECTED, max_score=10.0, reason="not\na notebook"),
        SubmissionResult("dave", "minilab", GRADED, score=9.5, max_score=10.0,
                         submitted_from="timestamp.txt", late_seconds=90_000.0, late_penalty=3.0),
    ]  # fmt: skip


@pytest.fixture
def workspace(tmp_path):
    for result in _class():
        result.save(tmp_path / "ws" / "results" / f"{result.student}.json")
    return tmp_path / "ws"


@pytest.fixture
def roster(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text(
        "student,name,id,sis_user_id,sis_login_id,section,username,email,idnumber\n"
        'alice,"Liddell, Alice",101,S-1,aliddell,CL101-A,aliddell,alice@example.edu,2001\n'
        'carol,"Ann, Carol",102,S-2,cann,CL101-A,cann,carol@example.edu,2002\n'
        'dave,"Bowman, Dave",103,S-3,dbowman,CL101-B,dbowman,dave@example.edu,2003\n'
    )
    return path


def test_canvas_without_roster(workspace, tmp_path):
    out = lms_csv.write(lab="minilab", results=lms_csv.read_results(workspace), format="canvas",
                        out=tmp_path / "canvas.csv")  # fmt: skip
    assert out.read_text() == (
        "Student,ID,SIS User ID,SIS Login ID,Section,minilab\n"
        "    Points Possible,,,,,10\n"
        "alice,,,alice,,8\n"
        "carol,,,carol,,\n"
        "dave,,,dave,,6.5\n"
    )


def test_canvas_with_roster_and_assignment(workspace, roster, tmp_path):
    out = lms_csv.write(lab="minilab", results=lms_csv.read_results(workspace), format="canvas",
                        out=tmp_path / "canvas.csv", roster=roster, assignment_id="5521")  # fmt: skip
    assert out.read_text() == (
        "Student,ID,SIS User ID,SIS Login ID,Section,minilab (5521)\n"
        "    Points Possible,,,,,10\n"
        '"Liddell, Alice",101,S-1,aliddell,CL101-A,8\n'
        '"Ann, Carol",102,S-2,cann,CL101-A,\n'
        '"Bowman, Dave",103,S-3,dbowman,CL101-B,6.5\n'
    )


def test_moodle(workspace, roster, tmp_path):
    results = lms_csv.read_results(workspace)
    plain = lms_csv.write(lab="minilab", results=results, format="moodle", out=tmp_path / "m.csv")
    assert plain.read_text() == (
        "username,minilab,minilab feedback\n"
        "alice,8,\n"
        "carol,,not graded: not a notebook\n"
        "dave,6.5,handed in 1 day 1 h after the due time: -3 points\n"
    )
    by_email = lms_csv.write(lab="minilab", results=results, format="moodle", roster=roster,
                             identifier="email", out=tmp_path / "e.csv")  # fmt: skip
    assert by_email.read_text().splitlines()[:2] == [
        "email,minilab,minilab feedback",
        "alice@example.edu,8,",
    ]


def test_refusals(workspace, roster, tmp_path):
    results = lms_csv.read_results(workspace)
    short = tmp_path / "short.csv"
    short.write_text("student,username\nalice,aliddell\n")
    with pytest.raises(ConfigError, match="no row for carol, dave"):
        lms_csv.write(lab="minilab", results=results, format="canvas", roster=short,
                      out=tmp_path / "x.csv")  # fmt: skip
    with pytest.raises(ConfigError, match="unknown LMS format"):
        lms_csv.write(lab="minilab", results=results, format="blackboard", out=tmp_path / "x.csv")
    with pytest.raises(ConfigError, match="has no results"):
        lms_csv.read_results(tmp_path / "empty")
    assert not (tmp_path / "x.csv").exists()
