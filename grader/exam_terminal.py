"""``cloudlabs exam``: a practice exam or a quiz in the terminal.

Each item shows with the time left; the student types letters (``B``, ``A,C``), Enter to skip,
or ``q`` to stop and be scored. A quiz reviews each answer at once with the explanations; an
exam, like the real one, reviews them all at the end. An unfinished attempt (the terminal was
closed) resumes where it stopped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from grader import exam as exams
from grader import exam_report as report
from grader.errors import LabError

Ask = Callable[[str], str]
Echo = Callable[[str], None]


def main(*, attempt: exams.Attempt, ask: Ask, echo: Echo, chart: Path | None = None,
         now: exams.Clock = exams.utcnow) -> exams.Result:  # fmt: skip
    """Ask every item of ``attempt`` not answered yet, then score it and show the review."""
    is_quiz = attempt.exam is None
    items = attempt.items
    echo(f"{attempt.title}: {len(items)} items in {attempt.minutes:g} minutes. "
         "Type the letters of your answer (A or A,C), Enter to skip, q to stop.")  # fmt: skip
    for number, item in enumerate(items, start=1):
        if item.id in attempt.answers:
            continue
        left = attempt.seconds_left(now)
        if left <= 0:
            echo("Time is up.")
            break
        echo("")
        echo(f"[{int(left // 60)} min {int(left % 60):02d} s left]")
        echo(report.item_text(item, number))
        while True:
            given = ask(f"answer ({item.choose} letter{'s' if item.choose > 1 else ''})").strip()
            if given.lower() in {"q", "quit"}:
                break
            try:
                recorded = attempt.answer(number, given, now=now)
                break
            except LabError as error:
                echo(error.message)
        if given.lower() in {"q", "quit"}:
            break
        if not recorded:
            echo("Time is up: that answer came after the deadline and does not count.")
            break
        if is_quiz:
            echo(report.review_text(exams.outcome(attempt, item), number))
    result = attempt.finish(now=now)
    if not is_quiz:
        echo("")
        echo("Review:")
        for number, outcome in enumerate(result.outcomes, start=1):
            echo(report.review_text(outcome, number))
    echo("")
    echo(report.summary_text(result))
    if chart is not None:
        report.readiness_chart(result, chart)
        echo(f"chart: {chart}")
    return result
