"""What grading produces for one submission: scores per cell and exercise, and the reasons."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

#: A submission was graded (whatever its score); rejected (not gradable: the report says why);
#: or hit an infrastructure failure (emulator or kernel), to be retried.
GRADED, REJECTED, INFRA = "graded", "rejected", "infrastructure-error"


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
    timings: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def exercises(self) -> dict[str, tuple[float, float]]:
        """(score, max) per exercise, in the lab's order."""
        totals: dict[str, tuple[float, float]] = {}
        for cell in self.cells:
            score, top = totals.get(cell.section, (0.0, 0.0))
            totals[cell.section] = (score + cell.points, top + cell.max_points)
        return totals

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["exercises"] = {k: {"score": s, "max": m} for k, (s, m) in self.exercises.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SubmissionResult:
        data = dict(data)
        data.pop("exercises", None)
        data["cells"] = [CellResult(**c) for c in data.get("cells", [])]
        return cls(**data)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2))
        tmp.replace(path)  # atomic: an interrupted run never leaves half a result

    @classmethod
    def load(cls, path: Path) -> SubmissionResult:
        return cls.from_json(json.loads(path.read_text()))
