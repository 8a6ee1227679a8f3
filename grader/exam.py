"""Practice exams and quizzes from the question bank (:mod:`grader.bank`).

:func:`start` draws an exam in its guide's weights (:mod:`grader.exam_guides`: 65 items in 130
minutes, the content domains in their published shares); :func:`quiz` draws a short quiz from
course domains. An :class:`Attempt` is saved after every answer under
``ExamConfig.history``, one JSON file each, so a restarted kernel resumes it (:func:`resume`);
an answer given after the deadline is refused, and what is unanswered at the end counts as wrong.
Scoring is the exams' own: an item is right when exactly its right options are chosen.
:mod:`grader.exam_report` shows the results, the readiness per domain and the history.

The terminal (``cloudlabs exam``) and the notebook (``course/practice-exam.ipynb``) share
this module; every function takes the clock as ``now`` so that tests control time."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import random
import uuid
from collections.abc import Callable
from pathlib import Path

from grader import bank
from grader.config import _field, load
from grader.errors import LabError
from grader.exam_guides import EXAMS

Clock = Callable[[], dt.datetime]
LOCAL = {"folder", "bank_dir"}  #: an attempt's fields that are not saved (where it lives)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclasses.dataclass(frozen=True)
class ExamConfig:
    """Practice exams and quizzes (grader/exam.py)."""

    history: Path = _field(Path.home() / ".cloudlabs" / "exams",
                           "where attempts are kept, one JSON file each", "~/.cloudlabs/exams")  # fmt: skip
    quiz_items: int = _field(10, "items in a quiz")
    quiz_minutes_per_item: float = _field(2.0, "minutes a quiz allows per item (the exams: 2)")
    ready: float = _field(0.75, "share of a domain's items right that counts as ready")
    bank: Path = _field(bank.RELEASE_DIR, "the released question bank (cloudlabs release)")


def shares(weights: dict[str, float], total: int) -> dict[str, int]:
    """``total`` split in ``weights`` by largest remainder (the counts add up to ``total``)."""
    exact = {k: w * total / sum(weights.values()) for k, w in weights.items()}
    counts = {k: int(v) for k, v in exact.items()}
    by_remainder = sorted(exact, key=lambda k: (counts[k] - exact[k], k))
    for k in by_remainder[: total - sum(counts.values())]:
        counts[k] += 1
    return counts


@dataclasses.dataclass
class Attempt:
    """One exam or quiz: what was drawn, the answers so far, and when."""

    id: str
    title: str
    exam: str | None  #: the exam whose weights drew it; None for a quiz
    item_ids: list[str]
    started_at: str
    minutes: float
    answers: dict[str, str] = dataclasses.field(default_factory=dict)  #: item id -> answer key
    finished_at: str | None = None
    folder: Path = dataclasses.field(default=Path(), repr=False, compare=False)
    bank_dir: Path = dataclasses.field(default=bank.RELEASE_DIR, repr=False, compare=False)

    @functools.cached_property
    def items(self) -> list[bank.Item]:
        """The drawn items, in order (the bank is read once per attempt, not per answer)."""
        found = {item.id: item for item in bank.load(release_dir=self.bank_dir)}
        missing = [i for i in self.item_ids if i not in found]
        if missing:
            raise LabError(f"attempt {self.id}: items {', '.join(missing)} left the bank",
                           fix="start a new attempt")  # fmt: skip
        return [found[i] for i in self.item_ids]

    @property
    def deadline(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.started_at) + dt.timedelta(minutes=self.minutes)

    def seconds_left(self, now: Clock = utcnow) -> float:
        return max(0.0, (self.deadline - now()).total_seconds())

    def save(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        data = {k: v for k, v in dataclasses.asdict(self).items() if k not in LOCAL}
        path = self.folder / f"{self.id}.json"
        path.with_suffix(".tmp").write_text(json.dumps(data, indent=1))
        path.with_suffix(".tmp").replace(path)
        return path

    def answer(self, number: int, letters: object, *, now: Clock = utcnow) -> bool:
        """Record the answer to item ``number`` (from 1); False when time is up or it is done."""
        if self.finished_at or self.seconds_left(now) <= 0:
            return False
        if not 1 <= number <= len(self.item_ids):
            raise LabError(f"there is no item {number}: the attempt has {len(self.item_ids)}",
                           fix=f"answer items 1 to {len(self.item_ids)}")  # fmt: skip
        item_id = self.item_ids[number - 1]
        key = bank.answer_key(letters)
        if key:
            item = next(i for i in self.items if i.id == item_id)
            picked = key.split(",")
            if len(picked) != item.choose or not set(picked) <= set(item.options):
                raise LabError(f"item {number} takes {item.choose} of "
                               f"{', '.join(item.options)}, not {key}",
                               fix=f"answer with {item.choose} letter(s), e.g. "
                               f"{','.join(list(item.options)[: item.choose])}")  # fmt: skip
            self.answers[item_id] = key
        else:
            self.answers.pop(item_id, None)
        self.save()
        return True

    def finish(self, *, now: Clock = utcnow) -> Result:
        if not self.finished_at:
            self.finished_at = min(now(), self.deadline).isoformat()
            self.save()
        return score(self)


@dataclasses.dataclass(frozen=True)
class Outcome:
    item: bank.Item
    given: str  #: the answer key given ("" when unanswered)
    right_answer: str
    right: bool


@dataclasses.dataclass(frozen=True)
class Result:
    attempt: Attempt
    outcomes: list[Outcome]

    @property
    def right(self) -> int:
        return sum(o.right for o in self.outcomes)

    def by(self, key: Callable[[bank.Item], str]) -> dict[str, tuple[int, int]]:
        """(right, asked) per ``key`` of the items, in first-asked order."""
        out: dict[str, tuple[int, int]] = {}
        for o in self.outcomes:
            right, asked = out.get(key(o.item), (0, 0))
            out[key(o.item)] = (right + o.right, asked + 1)
        return out

    def by_exam_domain(self) -> dict[str, tuple[int, int]]:
        if self.attempt.exam is None:
            return {}
        guide = EXAMS[self.attempt.exam]
        found = self.by(lambda item: guide.domain(item.exam_domain).name)
        return {d.name: found[d.name] for d in guide.domains if d.name in found}

    def by_course_domain(self) -> dict[str, tuple[int, int]]:
        return dict(sorted(self.by(lambda item: item.domain).items()))


def outcome(attempt: Attempt, item: bank.Item) -> Outcome:
    """How ``attempt`` answered ``item``."""
    given = attempt.answers.get(item.id, "")
    return Outcome(item, given, bank.right_answer(item), bool(given) and bank.is_right(item, given))


def score(attempt: Attempt) -> Result:
    return Result(attempt, [outcome(attempt, item) for item in attempt.items])


def _new(title: str, exam: str | None, items: list[bank.Item], minutes: float,
         config: ExamConfig, now: Clock) -> Attempt:  # fmt: skip
    started = now()
    attempt = Attempt(
        id=f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}", title=title, exam=exam,
        item_ids=[item.id for item in items], started_at=started.isoformat(), minutes=minutes,
        folder=config.history, bank_dir=config.bank,
    )  # fmt: skip
    attempt.save()
    return attempt


def start(*, exam: str = "SAA-C03", items: int | None = None, minutes: float | None = None,
          seed: int | None = None, now: Clock = utcnow, **settings: object) -> Attempt:  # fmt: skip
    """Draw a practice ``exam`` in its guide's domain weights (its length and time by default;
    fewer ``items`` get proportionally less time)."""
    config = load(ExamConfig, "exam", **settings)
    guide = EXAMS.get(exam.upper())
    if guide is None:
        raise LabError(f"no exam {exam!r}", fix=f"pick one of {', '.join(EXAMS)}")
    count = items or guide.items
    pool = [item for item in bank.load(release_dir=config.bank) if item.exam == guide.name]
    if not pool:
        raise LabError(f"the question bank in {config.bank} has no {guide.name} items",
                       fix="run `cloudlabs release` (it writes course/bank)")  # fmt: skip
    need = shares({d.number: d.weight for d in guide.domains}, count)
    rng = random.Random(seed)
    drawn: list[bank.Item] = []
    for number, n in need.items():
        candidates = [item for item in pool if item.exam_domain == number]
        if len(candidates) < n:
            raise LabError(f"{guide.name} domain {number} needs {n} items, the bank has "
                           f"{len(candidates)}", fix="ask for fewer items (--items)")  # fmt: skip
        drawn += rng.sample(candidates, n)
    rng.shuffle(drawn)
    limit = minutes if minutes is not None else guide.minutes * count / guide.items
    return _new(f"{guide.name} practice exam", guide.name, drawn, limit, config, now)


def quiz(domains: list[str], *, items: int | None = None, minutes: float | None = None,
         seed: int | None = None, now: Clock = utcnow, **settings: object) -> Attempt:  # fmt: skip
    """Draw a short quiz from the course ``domains`` (both exams' items)."""
    config = load(ExamConfig, "exam", **settings)
    pool = bank.load(domains, release_dir=config.bank)
    count = min(items or config.quiz_items, len(pool))
    drawn = random.Random(seed).sample(pool, count)
    limit = minutes if minutes is not None else count * config.quiz_minutes_per_item
    return _new(f"quiz: {', '.join(domains)}", None, drawn, limit, config, now)


def attempts(**settings: object) -> list[Attempt]:
    """Every attempt kept, oldest first."""
    config = load(ExamConfig, "exam", **settings)
    found = []
    for path in sorted(config.history.glob("*.json")):
        try:
            data = json.loads(path.read_text())
            found.append(Attempt(**data, folder=config.history, bank_dir=config.bank))
        except (ValueError, TypeError):
            continue  # a file that is not an attempt of ours
    return found


def resume(**settings: object) -> Attempt | None:
    """The newest attempt not finished yet, if any."""
    unfinished = [a for a in attempts(**settings) if not a.finished_at]
    return unfinished[-1] if unfinished else None
