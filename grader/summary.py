"""What a student reads about one graded notebook, made once and shown three ways: the terminal
(``cloudlabs check``), the notebook's check cell and the HTML feedback.

One line per exercise with its points; "not attempted" once when the answer cell still raises
the release's ``NotImplementedError``; otherwise the first cause (the answer cell's own error, or
the first failed test or state check) with that check's hint; the total at the end."""

from __future__ import annotations

import dataclasses
import re

from grader import html as pages
from grader import late
from grader import notebook as nbu
from grader.labs import Lab
from grader.results import GATED, GRADED, MAX_NOTES, MESSAGE_LIMIT, NOTE_LIMIT, SubmissionResult
from grader.text import clean, clean_lines

DONE, NOT_ATTEMPTED, FAILED = "done", "not attempted", "to fix"


def points(value: float) -> str:
    """Points as a student reads them: one decimal at most (6.66667 -> 6.7, 5.0 -> 5)."""
    return f"{round(value, 1):g}"


@dataclasses.dataclass(frozen=True)
class ExerciseLine:
    section: str
    title: str
    score: float
    max_score: float
    state: str  #: DONE, NOT_ATTEMPTED or FAILED
    cause: str = ""  #: the first thing that went wrong, in plain words
    hint: str = ""
    failed_checks: tuple[str, ...] = ()  #: every failed check, "grade id: message"

    @property
    def points(self) -> str:
        return f"{points(self.score)}/{points(self.max_score)}"


def _title(lab: Lab, section: str) -> str:
    """ "Exercise 2 — Versioning" (without the heading's "(7 points)"); "Knowledge check 3"."""
    if section.startswith("kc"):
        return f"Knowledge check {section[2:]}".strip()
    title = nbu.exercise_title(lab.notebook, section)
    return re.sub(r"\s*\(\d+(\.\d+)? points?\)\s*$", "", title)


def exercise_lines(result: SubmissionResult, lab: Lab) -> list[ExerciseLine]:
    lines = []
    for section, (got, top) in result.exercises.items():
        title = _title(lab, section)
        failed = [c for c in result.cells if c.section == section and not c.passed]
        checks = tuple(f"{c.grade_id}: {c.message or 'failed'}" for c in failed)
        if not failed:
            lines.append(ExerciseLine(section, title, got, top, DONE))
        elif section in result.unattempted and got == 0:
            lines.append(
                ExerciseLine(section, title, got, top, NOT_ATTEMPTED, failed_checks=checks)
            )
        else:
            first = next((c for c in failed if not c.message.startswith(GATED)), failed[0])
            cause = result.answer_errors.get(section) or first.message or "a check failed"
            lines.append(
                ExerciseLine(section, title, got, top, FAILED, clean(cause, MESSAGE_LIMIT),
                             clean(first.hint, MESSAGE_LIMIT), checks)
            )  # fmt: skip
    return lines


def notes(result: SubmissionResult) -> list[str]:
    """The result's notes as shown: each cleaned and capped, and at most MAX_NOTES of them."""
    return clean_lines(result.notes, limit=NOTE_LIMIT, count=MAX_NOTES)


def total_line(result: SubmissionResult) -> str:
    """The total, after any late penalty, which the line then explains."""
    total = f"Total: {points(result.final_score)} / {points(result.max_score)}"
    lateness = late.summary(result)
    return f"{total} ({points(result.score)} earned, {lateness})" if lateness else total


def text(result: SubmissionResult, lab: Lab, *, heading: str = "") -> str:
    """The summary as plain text, for a terminal."""
    if result.status != GRADED:
        return f"{lab.name}: not graded — {clean(result.reason, MESSAGE_LIMIT)}"
    out = [heading or lab.name, ""]
    for line in exercise_lines(result, lab):
        mark = {DONE: "✓", NOT_ATTEMPTED: "·", FAILED: "✗"}[line.state]
        out.append(f" {mark} {line.points:>9}  {line.title}")
        if line.state == NOT_ATTEMPTED:
            out.append(f"{'':13}not attempted")
        elif line.state == FAILED:
            out.append(f"{'':13}{line.cause}")
            if line.hint:
                out.append(f"{'':13}hint: {line.hint}")
    out += ["", *[f"note: {n}" for n in notes(result)], total_line(result)]
    return "\n".join(out)


def html_table(result: SubmissionResult, lab: Lab) -> str:
    """The summary as an HTML fragment: a table, each exercise's details folded."""
    graded = result.status == GRADED
    return pages.render(
        "summary_table.html.j2", graded=graded, reason=result.reason,
        lines=exercise_lines(result, lab) if graded else [], total=total_line(result),
        DONE=DONE, NOT_ATTEMPTED=NOT_ATTEMPTED,
    )  # fmt: skip
