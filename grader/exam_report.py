"""How practice exams show: an item, the review of an answer with the explanations, the score
with readiness per domain, and the charts (readiness of one attempt, readiness across attempts).
Plain text for the terminal, Markdown for notebooks; charts with matplotlib."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from grader import bank
from grader.config import load
from grader.exam import Attempt, ExamConfig, Outcome, Result, score


def _md(text: str) -> str:
    """``text`` for Markdown: a dollar sign stays a dollar sign (not the start of LaTeX)."""
    return text.replace("$", "\\$")


def item_text(item: bank.Item, number: int, *, markdown: bool = False) -> str:
    if markdown:
        item = dataclasses.replace(item, stem=_md(item.stem),
                                   options={k: _md(v) for k, v in item.options.items()})  # fmt: skip
    head = f"{number}. [{item.domain} · {item.exam} {item.task}]"
    lines = [f"**{head}** {item.stem}" if markdown else f"{head}\n{item.stem}", ""]
    for letter, text in item.options.items():
        lines.append(f"- **{letter}.** {text}" if markdown else f"  {letter}. {text}")
    return "\n".join(lines)


def review_text(outcome: Outcome, number: int, *, markdown: bool = False) -> str:
    """Whether the answer was right, then why each option is right or wrong."""
    explained = bank.unseal(outcome.item, outcome.right_answer)
    verdict = "right" if outcome.right else ("unanswered" if not outcome.given else "wrong")
    given = outcome.given or "nothing"
    head = f"{number}. {verdict}: you chose {given}, the answer is {outcome.right_answer}."
    lines = [f"**{head}**" if markdown else head]
    right = set(outcome.right_answer.split(","))
    for letter, why in explained.items():
        mark = "right" if letter in right else "wrong"
        why = _md(why) if markdown else why
        lines.append(
            f"- **{letter}** ({mark}): {why}" if markdown else f"  {letter} ({mark}): {why}"
        )
    return "\n".join(lines)


def paper_markdown(attempt: Attempt) -> str:
    """Every item of ``attempt``, numbered, with the deadline (for a notebook)."""
    deadline = f"{attempt.deadline:%H:%M} UTC"
    head = (f"### {attempt.title}\n\n{len(attempt.item_ids)} items, {attempt.minutes:g} minutes: "
            f"answers recorded after **{deadline}** do not count.")  # fmt: skip
    items = [item_text(item, n, markdown=True) for n, item in enumerate(attempt.items, start=1)]
    return "\n\n".join([head, *items])


def answer_template(attempt: Attempt) -> str:
    """An ``answers = {...}`` cell to fill in, one line per item."""
    lines = [f'    {n}: "",  # {"choose " + str(item.choose) if item.choose > 1 else "one letter"}'
             for n, item in enumerate(attempt.items, start=1)]  # fmt: skip
    return "answers = {\n" + "\n".join(lines) + "\n}"


def review_markdown(result: Result) -> str:
    return "\n\n".join(review_text(o, n, markdown=True)
                        for n, o in enumerate(result.outcomes, start=1))  # fmt: skip


def _rows(found: dict[str, tuple[int, int]], ready: float) -> list[str]:
    width = max((len(name) for name in found), default=0)
    rows = []
    for name, (right, asked) in found.items():
        share = right / asked
        bar = "#" * round(share * 20)
        verdict = "ready" if share >= ready else "not yet"
        rows.append(f"  {name:<{width}}  {right:>2}/{asked:<2} {share:>4.0%}  {bar:<20}  {verdict}")
    return rows


def summary_text(result: Result, **settings: object) -> str:
    ready = load(ExamConfig, "exam", **settings).ready
    attempt = result.attempt
    asked = len(result.outcomes)
    lines = [f"{attempt.title}: {result.right} of {asked} right ({result.right / asked:.0%}); "
             f"{len(attempt.answers)} answered"]  # fmt: skip
    if result.by_exam_domain():
        lines += ["By exam domain:", *_rows(result.by_exam_domain(), ready)]
    lines += ["By course domain:", *_rows(result.by_course_domain(), ready)]
    lines.append(f"(ready = {ready:.0%} or more of a domain's items right)")
    return "\n".join(lines)


def readiness_chart(result: Result, path: Path | None = None, **settings: object):
    """A bar per domain (exam domains for an exam, course domains for a quiz); returns the
    figure, saved to ``path`` when given."""
    import matplotlib.pyplot as plt

    ready = load(ExamConfig, "exam", **settings).ready
    found = result.by_exam_domain() or result.by_course_domain()
    names = list(found)
    shares = [right / asked for right, asked in found.values()]
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.5 * len(names)))
    colors = ["tab:green" if s >= ready else "tab:orange" for s in shares]
    ax.barh(names, shares, color=colors)
    ax.axvline(ready, color="grey", linestyle="--", label=f"ready ({ready:.0%})")
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("share right")
    ax.set_title(result.attempt.title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
        plt.close(fig)
    return fig


def history_rows(attempts: list[Attempt]) -> list[tuple[str, str, int, int]]:
    """(when, title, right, asked) of each finished attempt."""
    rows = []
    for attempt in attempts:
        if attempt.finished_at:
            result = score(attempt)
            rows.append((attempt.started_at[:16].replace("T", " "), attempt.title,
                         result.right, len(result.outcomes)))  # fmt: skip
    return rows


def history_chart(attempts: list[Attempt], path: Path | None = None):
    """Share right per exam domain across finished exams (one line per domain)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    lines: dict[str, list[tuple[int, float]]] = {}
    finished = [a for a in attempts if a.finished_at]
    for n, attempt in enumerate(finished, start=1):
        result = score(attempt)
        for name, (right, asked) in (result.by_exam_domain() or result.by_course_domain()).items():
            lines.setdefault(name, []).append((n, right / asked))
    for name, points in lines.items():
        ax.plot(*zip(*points, strict=True), marker="o", label=name)
    ax.set_ylim(0, 1)
    ax.set_xlabel("attempt")
    ax.set_ylabel("share right")
    ax.set_title("Readiness across attempts")
    if lines:
        ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
        plt.close(fig)
    return fig
