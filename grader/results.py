"""What grading produces for one submission: scores per cell and exercise, and the reasons."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from grader.text import clean, clean_lines

#: A submission was graded (whatever its score); rejected (not gradable: the report says why);
#: or hit an infrastructure failure (emulator or kernel), to be retried.
GRADED, REJECTED, INFRA = "graded", "rejected", "infrastructure-error"

#: Caps, in characters, on what a submission can put in its result.
MESSAGE_LIMIT = 2_000  #: a cell's failure message (and hint)
NOTE_LIMIT = 1_000  #: one note
MAX_NOTES = 100  #: notes kept; then one line says how many more there were
REASON_LIMIT = 2_000  #: the reason and the other texts of a result


#: The start of the message of a test that passed but earns less (grader.verify.bound_tests).
GATED = "this test passed, but"


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same folder and
    ``os.replace``: readers, and a run killed half-way, see the old file or the new one, never
    half of one. A symbolic link at ``path`` is replaced, never written through."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@dataclasses.dataclass
class CellResult:
    grade_id: str
    kind: str  #: "test" or "state"
    section: str
    points: float
    max_points: float
    passed: bool
    message: str = ""  #: the failure, as the student should read it
    hint: str = ""


@dataclasses.dataclass
class SubmissionResult:
    student: str
    lab: str
    status: str
    score: float = 0.0
    max_score: float = 0.0
    cells: list[CellResult] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)  #: restored cells, crashes...
    reason: str = ""  #: why it was rejected or failed, when it was
    account_id: str = ""
    prefix: str = ""
    source: str = ""  #: the submitted file
    lab_digest: str = ""
    source_digest: str = ""  #: SHA-256 of the submitted file: a changed notebook is regraded
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    #: exercises whose answer cell still raises NotImplementedError (the release's placeholder)
    unattempted: list[str] = dataclasses.field(default_factory=list)
    #: exercise -> the first error an answer cell raised, in plain words (:mod:`grader.plain`)
    answer_errors: dict[str, str] = dataclasses.field(default_factory=dict)
    #: the instructor's HMAC of this result, when it was signed (:mod:`grader.signing`)
    signature: str = ""
    #: when it was handed in (ISO 8601, UTC), and where that time comes from (:mod:`grader.late`)
    submitted_at: str = ""
    submitted_from: str = ""
    late_seconds: float = 0.0  #: after the due time (0 when on time or within the grace period)
    late_penalty: float = 0.0  #: points lost for lateness (``score`` is before it)

    @property
    def final_score(self) -> float:
        """The score less the late penalty (never below 0): what the gradebook and LMS get."""
        return round(max(0.0, self.score - self.late_penalty), 6)

    def add_up(self) -> None:
        """Set ``score`` from the cells (rounded: shares of points add up to 32.4999999...)."""
        self.score = round(sum(c.points for c in self.cells), 6)

    @property
    def exercises(self) -> dict[str, tuple[float, float]]:
        """(score, max) per exercise, in the lab's order."""
        totals: dict[str, tuple[float, float]] = {}
        for cell in self.cells:
            score, top = totals.get(cell.section, (0.0, 0.0))
            totals[cell.section] = (score + cell.points, top + cell.max_points)
        return totals

    def to_json(self) -> dict[str, Any]:
        """The result as JSON data; every text in it cleaned (:func:`grader.text.clean`): what a
        submission wrote may hold NULs, escape sequences, lone surrogates or megabytes."""
        data = dataclasses.asdict(self)
        for key, value in data.items():
            if isinstance(value, str):
                data[key] = clean(value, REASON_LIMIT)
        data["notes"] = clean_lines(self.notes, limit=NOTE_LIMIT, count=MAX_NOTES)
        for cell in data["cells"]:
            for key, value in cell.items():
                if isinstance(value, str):
                    cell[key] = clean(value, MESSAGE_LIMIT)
        data["timings"] = {clean(k, 100): v for k, v in self.timings.items()}
        data["answer_errors"] = {
            clean(k, 100): clean(v, MESSAGE_LIMIT) for k, v in self.answer_errors.items()
        }
        data["exercises"] = {
            clean(k, 100): {"score": s, "max": m} for k, (s, m) in self.exercises.items()
        }
        data["final_score"] = self.final_score
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SubmissionResult:
        data = dict(data)
        data.pop("exercises", None)
        data.pop("final_score", None)
        data["cells"] = [CellResult(**c) for c in data.get("cells", [])]
        return cls(**data)

    def save(self, path: Path) -> None:
        write_atomically(path, json.dumps(self.to_json(), indent=2))

    @classmethod
    def load(cls, path: Path) -> SubmissionResult:
        return cls.from_json(json.loads(path.read_text()))
