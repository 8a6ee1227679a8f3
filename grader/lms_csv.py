"""Gradebook files for an LMS without LTI: Canvas's gradebook import CSV and Moodle's grade import
from CSV, from the same results as every other export.

Scores are final scores (after the late penalty); a student with no score (rejected, or an
infrastructure failure) has an empty cell, never a 0: both LMSs leave an empty cell's grade as it
was. Students are named as the LMS knows them through an optional roster (a CSV file with a
``student`` column, the cloudlabs id, and the LMS's identifiers); without one, the student id is
the login id (Canvas's SIS Login ID, Moodle's username)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from grader import late
from grader.errors import ConfigError
from grader.results import GRADED, REASON_LIMIT, SubmissionResult, write_atomically
from grader.text import clean

FORMATS = ("canvas", "moodle")
#: Canvas's gradebook columns before the assignments, as its export writes them
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
#: roster column -> Canvas column
CANVAS_ROSTER = {
    "name": "Student", "id": "ID", "sis_user_id": "SIS User ID", "sis_login_id": "SIS Login ID",
    "section": "Section",
}  # fmt: skip
#: how Moodle's import can identify a user (its "Map from" choices we fill in)
MOODLE_IDENTIFIERS = ("username", "email", "idnumber")


def read_results(workspace: Path) -> list[SubmissionResult]:
    """The results a grading run (or merge) saved in ``workspace``, by student."""
    paths = sorted((workspace / "results").glob("*.json"))
    if not paths:
        raise ConfigError(
            f"{workspace} has no results", fix="give the --out folder of a grading run"
        )
    return sorted((SubmissionResult.load(p) for p in paths), key=lambda r: r.student)


def read_roster(path: Path) -> dict[str, dict[str, str]]:
    """cloudlabs student id -> the LMS's identifiers (the roster file's other columns)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"cannot read the roster {path}: {exc}",
                          fix="give a UTF-8 CSV file with a header row") from exc  # fmt: skip
    if not rows or "student" not in rows[0]:
        raise ConfigError(
            f"the roster {path} has no 'student' column",
            fix="its header must name the cloudlabs student id 'student', then the LMS's "
            f"identifiers ({', '.join([*CANVAS_ROSTER, 'username', 'email', 'idnumber'])})",
        )
    roster: dict[str, dict[str, str]] = {}
    for row in rows:
        student = (row.pop("student") or "").strip()
        if student in roster:
            raise ConfigError(f"the roster {path} names {student!r} twice",
                              fix="keep one row per student")  # fmt: skip
        if student:
            roster[student] = {k.strip(): (v or "").strip() for k, v in row.items() if k}
    return roster


def _score(result: SubmissionResult) -> str:
    return f"{result.final_score:g}" if result.status == GRADED else ""


def canvas(
    lab: str,
    results: list[SubmissionResult],
    *,
    max_score: float,
    roster: dict[str, dict[str, str]] | None = None,
    assignment_id: str = "",
) -> str:
    """Canvas's gradebook import: one column for the lab, named ``lab (assignment_id)`` to update
    an existing assignment (as Canvas exports it), or ``lab`` to create one; the points possible
    row as Canvas's export has it."""
    column = f"{lab} ({assignment_id})" if assignment_id else lab
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CANVAS_COLUMNS, column])
    writer.writerow(["    Points Possible", "", "", "", "", f"{max_score:g}"])
    for r in results:
        known = (roster or {}).get(r.student)
        if known is None:
            row = {"Student": r.student, "SIS Login ID": r.student}
        else:
            row = {CANVAS_ROSTER[k]: v for k, v in known.items() if k in CANVAS_ROSTER}
        writer.writerow([clean(row.get(c, ""), 200) for c in CANVAS_COLUMNS] + [_score(r)])
    return out.getvalue()


def moodle(
    lab: str,
    results: list[SubmissionResult],
    *,
    roster: dict[str, dict[str, str]] | None = None,
    identifier: str = "username",
) -> str:
    """Moodle's grade import from CSV: the user's ``identifier`` (map it to the same field in
    Moodle's "Identify user by"), the lab's grade and its feedback (map them to the lab's grade
    item and its feedback)."""
    if identifier not in MOODLE_IDENTIFIERS:
        raise ConfigError(f"Moodle cannot identify users by {identifier!r}",
                          fix=f"use one of {', '.join(MOODLE_IDENTIFIERS)}")  # fmt: skip
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([identifier, lab, f"{lab} feedback"])
    for r in results:
        known = (roster or {}).get(r.student)
        who = known.get(identifier, "") if known is not None else r.student
        if r.status == GRADED:
            feedback = late.summary(r)
        else:
            feedback = f"not graded: {' '.join(clean(r.reason, REASON_LIMIT).split())}"
        writer.writerow([clean(who, 200), _score(r), feedback])
    return out.getvalue()


def write(
    *,
    lab: str,
    results: list[SubmissionResult],
    format: str,
    out: Path,
    max_score: float | None = None,
    roster: Path | None = None,
    assignment_id: str = "",
    identifier: str = "username",
) -> Path:
    """Write the ``format`` ("canvas" or "moodle") gradebook file of ``lab`` to ``out``."""
    people = read_roster(roster) if roster else None
    missing = sorted(r.student for r in results if people is not None and r.student not in people)
    if missing:
        raise ConfigError(
            f"the roster has no row for {', '.join(missing[:5])}"
            f"{' and more' if len(missing) > 5 else ''}",
            fix="add them to the roster (student, then their LMS identifiers)",
        )
    if format == "canvas":
        top = max_score if max_score is not None else max((r.max_score for r in results), default=0)
        text = canvas(lab, results, max_score=top, roster=people, assignment_id=assignment_id)
    elif format == "moodle":
        text = moodle(lab, results, roster=people, identifier=identifier)
    else:
        raise ConfigError(f"unknown LMS format {format!r}", fix=f"use one of {', '.join(FORMATS)}")
    write_atomically(out, text)
    return out
