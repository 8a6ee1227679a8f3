"""Practice exams: drawn in the exam guide's weights, timed by a clock the test controls, scored
as the exams score (all right options, nothing else), kept after every answer, and shown in the
terminal and as charts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools

import pytest
from click.testing import CliRunner

from grader import bank, exam, exam_report, exam_terminal
from grader.cli import cli
from grader.errors import LabError
from grader.exam_guides import EXAMS
from tests.factories import bank_item, write_bank

START = dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.UTC)


class Clock:
    """Time that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """A bank of 20 SAA-C03 items per exam domain (storage) and 10 DVA-C02 ones (serverless)."""
    numbers = itertools.count(1)
    storage = [bank_item("storage", next(numbers), task=f"{d}.1", answer="ABCD"[n % 4])
               for d in "1234" for n in range(20)]  # fmt: skip
    storage.append(bank_item("storage", next(numbers), task="2.2", answer="A,C"))
    serverless = [bank_item("serverless", n + 1, exam="DVA-C02", task="1.2", answer="ABCD"[n % 4])
                  for n in range(10)]  # fmt: skip
    write_bank(tmp_path / "src", "storage", storage)
    write_bank(tmp_path / "src", "serverless", serverless)
    bank.release(source_dir=tmp_path / "src", out_dir=tmp_path / "bank")
    values = {"history": tmp_path / "history", "bank": tmp_path / "bank"}
    for name, value in values.items():
        monkeypatch.setenv(f"CLOUDLABS_EXAM_{name.upper()}", str(value))
    return values


def test_shares_follow_the_published_weights():
    saa, dva = EXAMS["SAA-C03"], EXAMS["DVA-C02"]
    assert exam.shares({d.number: d.weight for d in saa.domains}, 65) == {
        "1": 19, "2": 17, "3": 16, "4": 13}  # fmt: skip
    assert exam.shares({d.number: d.weight for d in dva.domains}, 65) == {
        "1": 21, "2": 17, "3": 15, "4": 12}  # fmt: skip
    assert sum(exam.shares({"a": 1, "b": 1, "c": 1}, 10).values()) == 10


def test_a_full_exam_has_the_guides_length_time_and_weights(settings):
    attempt = exam.start(exam="SAA-C03", seed=7, now=Clock())
    assert len(attempt.item_ids) == 65 and attempt.minutes == 130
    counts = {}
    for item in attempt.items:
        counts[item.exam_domain] = counts.get(item.exam_domain, 0) + 1
    assert counts == {"1": 19, "2": 17, "3": 16, "4": 13}
    assert len(set(attempt.item_ids)) == 65
    again = exam.start(exam="saa-c03", seed=7, now=Clock())
    assert again.item_ids == attempt.item_ids and again.id != attempt.id


def test_a_shorter_exam_gets_time_in_proportion_and_a_bank_too_small_says_so(settings):
    short = exam.start(exam="SAA-C03", items=13, now=Clock())
    assert len(short.item_ids) == 13 and short.minutes == 26
    with pytest.raises(LabError, match="DVA-C02 domain 1 needs 21 items, the bank has 10"):
        exam.start(exam="DVA-C02", now=Clock())
    with pytest.raises(LabError, match="no exam"):
        exam.start(exam="CLF-C02")


def test_answers_after_the_deadline_do_not_count(settings):
    clock = Clock()
    attempt = exam.start(exam="SAA-C03", items=5, now=clock)  # 10 minutes
    first = bank.right_answer(attempt.items[0])
    assert attempt.answer(1, first, now=clock)
    clock.advance(minutes=9, seconds=59)
    assert attempt.seconds_left(clock) == 1
    clock.advance(seconds=1)
    assert not attempt.answer(2, bank.right_answer(attempt.items[1]), now=clock)
    clock.advance(hours=1)
    result = attempt.finish(now=clock)
    assert attempt.finished_at == (START + dt.timedelta(minutes=10)).isoformat()
    assert [o.right for o in result.outcomes] == [True, False, False, False, False]
    assert [o.given for o in result.outcomes][1:] == ["", "", "", ""]
    assert not attempt.answer(3, "A", now=clock)  # finished: nothing changes any more


def test_a_multiple_response_item_is_right_only_with_exactly_its_options(settings):
    clock = Clock()
    attempt = exam.quiz(["storage"], items=81, now=clock)
    number = 1 + attempt.item_ids.index("storage-b81")  # the "choose two" item: A and C
    for given, right in [("A,B", False), ("c,a", True)]:
        attempt.answer(number, given, now=clock)
        (outcome,) = [o for o in exam.score(attempt).outcomes if o.item.id == "storage-b81"]
        assert outcome.right is right and outcome.right_answer == "A,C"
    for given in ("A", "A,C,D", "A,Z"):  # not two of its options: refused, the answer stays
        with pytest.raises(LabError, match=f"item {number} takes 2 of A, B, C, D, E"):
            attempt.answer(number, given, now=clock)
    assert attempt.answers["storage-b81"] == "A,C"


def test_every_answer_is_kept_and_an_unfinished_attempt_resumes(settings):
    clock = Clock()
    attempt = exam.quiz(["serverless"], items=4, seed=3, now=clock)
    attempt.answer(2, "b", now=clock)
    (kept,) = exam.attempts()
    assert kept == attempt and kept.answers == {attempt.item_ids[1]: "B"}
    assert exam.resume() == attempt
    attempt.finish(now=clock)
    assert exam.resume() is None
    (settings["history"] / "notes.json").write_text("{}")  # not an attempt: skipped
    assert len(exam.attempts()) == 1


def test_readiness_per_domain_and_the_charts(settings, tmp_path):
    clock = Clock()
    attempt = exam.start(exam="SAA-C03", items=20, seed=1, now=clock)
    for number, item in enumerate(attempt.items, start=1):
        if item.exam_domain in {"1", "2"}:  # right in domains 1 and 2, wrong elsewhere
            attempt.answer(number, bank.right_answer(item), now=clock)
    result = attempt.finish(now=clock)
    found = result.by_exam_domain()
    assert list(found) == [d.name for d in EXAMS["SAA-C03"].domains]
    assert [right == asked for right, asked in found.values()] == [True, True, False, False]
    text = exam_report.summary_text(result)
    assert "Design Secure Architectures" in text and "ready" in text and "not yet" in text
    exam_report.readiness_chart(result, tmp_path / "ready.png")
    exam_report.history_chart(exam.attempts(), tmp_path / "history.png")
    for name in ("ready.png", "history.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (row,) = exam_report.history_rows(exam.attempts())
    assert row[1:] == ("SAA-C03 practice exam", result.right, 20)


def test_the_review_explains_every_option(settings):
    clock = Clock()
    attempt = exam.quiz(["serverless"], items=1, now=clock)
    attempt.answer(1, "D" if bank.right_answer(attempt.items[0]) != "D" else "C", now=clock)
    (outcome,) = attempt.finish(now=clock).outcomes
    review = exam_report.review_text(outcome, 1)
    assert "wrong: you chose" in review and review.count("requirement") == 4


def test_markdown_keeps_dollar_signs_literal(settings):
    item = dataclasses.replace(
        bank.load(release_dir=settings["bank"])[0], stem="Use $LATEST or ${aws:username}?"
    )
    assert "Use \\$LATEST or \\${aws:username}?" in exam_report.item_text(item, 1, markdown=True)
    assert "Use $LATEST or ${aws:username}?" in exam_report.item_text(item, 1)


def test_the_terminal_asks_times_and_reviews(settings):
    clock = Clock()
    attempt = exam.start(exam="SAA-C03", items=3, now=clock)  # 6 minutes
    script = iter([bank.right_answer(attempt.items[0]), "", "A"])
    out: list[str] = []

    def ask(prompt: str) -> str:
        clock.advance(minutes=2, seconds=30)  # the third answer comes after the deadline
        return next(script)

    result = exam_terminal.main(attempt=attempt, ask=ask, echo=out.append, now=clock)
    text = "\n".join(out)
    assert (
        "[6 min 00 s left]" in text and "[3 min 30 s left]" in text and "[1 min 00 s left]" in text
    )
    assert "came after the deadline and does not count" in text
    assert text.index("Review:") > text.index("came after the deadline")
    assert result.right == 1 and len(attempt.answers) == 1


def test_a_quiz_reviews_each_answer_at_once_and_q_stops(settings):
    clock = Clock()
    attempt = exam.quiz(["storage"], items=3, now=clock)
    out: list[str] = []
    answers = iter(["A,B", "Z", bank.right_answer(attempt.items[0]), "q"])
    exam_terminal.main(attempt=attempt, ask=lambda _: next(answers), echo=out.append, now=clock)
    text = "\n".join(out)
    assert text.index("1. right: you chose") < text.index("2. [storage")
    assert "Review:" not in text and "1 of 3 right" in text
    assert "item 1 takes 1 of A, B, C, D, not A,B" in text and "not Z" in text


def test_the_command_line_quiz_and_history(settings, tmp_path):
    runner = CliRunner()
    done = runner.invoke(cli, ["exam", "quiz", "serverless", "--items", "2", "--seed", "5",
                               "--chart", str(tmp_path / "c.png")], input="A\nB\n")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "quiz: serverless: " in done.output and (tmp_path / "c.png").exists()
    history = runner.invoke(cli, ["exam", "history"])
    assert history.exit_code == 0 and "1 finished attempts" in history.output
    unknown = runner.invoke(cli, ["exam", "quiz", "astrology"])
    assert unknown.exit_code != 0 and "no released questions for astrology" in unknown.output
    bad = runner.invoke(cli, ["exam", "take", "CLF-C02"])
    assert bad.exit_code == 2  # click: not one of the exams
