"""Late work: a due date, a grace period, a penalty per day late and a cap on it.

A step after scoring: the penalty is a pure function of the submission time, the policy and the
score, so a rerun with another policy updates every result without running a notebook again. The
penalty is a share of the lab's points, never more than the student earned; nbgrader's gradebook
and every export carry the raw score, the penalty and the final score (``score`` less penalty).

Where the time comes from: ``timestamp.txt`` beside the notebook, as nbgrader's exchange writes it
(``submitted/<student>/<lab>/timestamp.txt``). Without one (a plain folder of notebooks, or a file
that is not a time), the submission counts as handed in when cloudlabs first graded that very
notebook, the earliest time cloudlabs can vouch for; the result says so."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

from grader.config import LateConfig
from grader.errors import ConfigError
from grader.results import GRADED, SubmissionResult

TIMESTAMP_FILE = "timestamp.txt"
FIRST_GRADED = "first graded"  #: ``submitted_from`` when no submission time was recorded
MAX_TIMESTAMP_BYTES = 200  #: a timestamp file longer than this is not read
DAY = dt.timedelta(days=1)
UTC = dt.UTC


def parse_time(text: str) -> dt.datetime | None:
    """``text`` as an aware time: ISO 8601 (``2026-12-10T23:59:00+01:00``) or nbgrader's
    ``2026-12-10 22:59:00.123456 UTC``; a time without a zone is UTC, as nbgrader reads it.
    None when it is not a time."""
    text = " ".join(text.split())
    if text.endswith((" UTC", "Z")):
        text = text.removesuffix(" UTC").removesuffix("Z") + "+00:00"
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def read_timestamp(folder: Path) -> dt.datetime | None:
    """The submission time nbgrader's exchange recorded in ``folder``, or None (no file, a link
    or special file, too long, or not a time)."""
    path = folder / TIMESTAMP_FILE
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_TIMESTAMP_BYTES:
            return None
        return parse_time(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None


@dataclasses.dataclass(frozen=True)
class Policy:
    """A lab's due date and late penalty (:class:`grader.config.LateConfig`, validated)."""

    due: dt.datetime | None = None
    grace: dt.timedelta = dt.timedelta(0)
    per_day: float = 0.0  #: percent of the lab's points per day, or part of a day, late
    cap: float = 100.0  #: the most a submission can lose, in percent of the lab's points

    @classmethod
    def from_config(cls, config: LateConfig) -> Policy:
        fix = "set CLOUDLABS_LATE_* (or the grade command's late options) to valid values"
        due = None
        if config.due:
            due = parse_time(config.due)
            if due is None:
                raise ConfigError(
                    f"due date {config.due!r} is not a time",
                    fix="give it as ISO 8601, e.g. 2026-12-10T23:59+01:00",
                )
        if config.grace_minutes < 0 or config.penalty_per_day < 0:
            raise ConfigError(
                "the grace period and the penalty per day cannot be negative", fix=fix
            )
        if not 0 <= config.max_penalty <= 100:
            raise ConfigError("the penalty cap is a percentage from 0 to 100", fix=fix)
        return cls(
            due, dt.timedelta(minutes=config.grace_minutes), config.penalty_per_day,
            config.max_penalty,
        )  # fmt: skip

    def describe(self) -> str:
        """The policy in one line (shards of one class must have the same)."""
        if self.due is None:
            return "no due date"
        grace = self.grace.total_seconds() / 60
        return (
            f"due {self.due.isoformat()}, grace {grace:g} min, {self.per_day:g}% per day late, "
            f"at most {self.cap:g}%"
        )

    def assess(self, submitted: dt.datetime, score: float, max_score: float) -> tuple[float, float]:
        """(seconds after the due time, points lost) for a submission at ``submitted`` that
        scored ``score`` of ``max_score``; (0, 0) within the grace period. Days late are counted
        from the end of the grace period."""
        if self.due is None:
            return 0.0, 0.0
        late = (submitted - self.due - self.grace).total_seconds()
        if late <= 0:
            return 0.0, 0.0
        days = math.ceil(late / DAY.total_seconds())
        late += self.grace.total_seconds()
        share = min(self.cap, days * self.per_day) / 100
        return late, round(min(max(score, 0.0), share * max_score), 6)


def days_late(seconds: float) -> str:
    """``seconds`` late in words: "3 h 20 min", "2 days 1 h"."""
    minutes = math.ceil(seconds / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes and not days else []
    return " ".join(parts) or "0 min"


def apply(
    result: SubmissionResult, policy: Policy, submitted: dt.datetime | None,
    *, first_graded: dt.datetime,
) -> bool:  # fmt: skip
    """Set ``result``'s submission time, lateness and penalty from ``policy``: the time from
    the exchange (``submitted``) or, without one, ``first_graded``. Returns whether anything
    changed (a resumed result is then saved again)."""
    before = (result.submitted_at, result.submitted_from, result.late_seconds, result.late_penalty)
    when = submitted or first_graded
    result.submitted_at = when.astimezone(UTC).isoformat()
    result.submitted_from = TIMESTAMP_FILE if submitted else FIRST_GRADED
    result.late_seconds, result.late_penalty = (
        policy.assess(when, result.score, result.max_score) if result.status == GRADED else (0, 0)
    )
    return before != (result.submitted_at, result.submitted_from, result.late_seconds,
                      result.late_penalty)  # fmt: skip


def reapply(
    result: SubmissionResult, policy: Policy, submitted: dt.datetime | None, digest: str
) -> bool:
    """:func:`apply` to a result kept from an earlier run: with the submission's time when the
    result is of this very notebook (``digest``), else with the time the result recorded (the
    notebook was replaced since, and that student was not graded again)."""
    if result.source_digest == digest:
        return apply(result, policy, submitted, first_graded=first_graded(result, digest))
    recorded = parse_time(result.submitted_at)
    exchange = recorded if result.submitted_from == TIMESTAMP_FILE else None
    return apply(result, policy, exchange, first_graded=recorded or dt.datetime.now(UTC))


def first_graded(previous: SubmissionResult | None, source_digest: str) -> dt.datetime:
    """When cloudlabs first graded this very notebook: the time a previous result of the same
    file recorded, else now."""
    same = previous is not None and previous.source_digest == source_digest
    if same and previous.submitted_from == FIRST_GRADED:
        when = parse_time(previous.submitted_at)
        if when is not None:
            return when
    return dt.datetime.now(UTC)


def summary(result: SubmissionResult) -> str:
    """The lateness of ``result`` in one line for students and instructors ("" when on time)."""
    if result.status != GRADED or result.late_seconds <= 0:
        return ""
    where = (
        ""
        if result.submitted_from == TIMESTAMP_FILE
        else " (no submission time: counted from when it was first graded)"
    )
    return (
        f"handed in {days_late(result.late_seconds)} after the due time{where}: "
        f"-{result.late_penalty:g} points"
    )
