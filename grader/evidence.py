"""``cloudlabs validate --evidence``: prove that each exercise's points come from its own work.

For a lab with exercises ex1..exN, the class graded here holds N notebooks: ``without-exK`` is the
full solution with exercise K's answer cells left as released. Exercise K must score 0 in it:
points it earns there come from defaults (a new bucket blocks public access anyway), from other
exercises' resources, or from values no state backs, and the lab's tests or checks must change.
This runs the real pipeline on the emulator, so it is a test of the lab, not of its text.
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
from pathlib import Path

import nbformat

from grader import grade, nbgrader_glue
from grader import notebook as nbu
from grader.config import EmulatorConfig, GradeConfig, LateConfig, load
from grader.labs import RELEASE_DIR, SOURCE_DIR, find
from grader.results import GRADED
from grader.samples import solution_submission


@dataclasses.dataclass(frozen=True)
class Leak:
    """Points exercise ``section`` earned although its own answers were left blank."""

    section: str
    points: float
    of: float
    details: tuple[str, ...]  #: the cells that earned them

    def __str__(self) -> str:
        return (
            f"{self.section} earns {self.points:g}/{self.of:g} without its own answers "
            f"({', '.join(self.details)})"
        )


def without(
    section: str, solved: nbformat.NotebookNode, release: nbformat.NotebookNode
) -> nbformat.NotebookNode:
    """The solved notebook with ``section``'s answer cells as the release has them."""
    released = {nbu.grade_id(c): c.source for c in release.cells}
    nb = copy.deepcopy(solved)
    for cell in nb.cells:
        gid = nbu.grade_id(cell)
        if nbu.is_solution(cell) and nbu.section_of(gid) == section and gid in released:
            cell.source = released[gid]
    return nb


def main(
    *,
    lab: str,
    out: Path | None = None,
    workers: int | None = None,
    source_dir: Path = SOURCE_DIR,
    release_dir: Path = RELEASE_DIR,
    emulator_config: EmulatorConfig | None = None,
) -> list[Leak]:
    """Grade the ``without-exK`` class of ``lab``; the exercises that leak points."""
    the_lab = find(lab, source_dir=source_dir, release_dir=release_dir)
    root = out or Path(tempfile.mkdtemp(prefix=f"cloudlabs-evidence-{lab}-"))
    release_path = nbgrader_glue.release_to_temp(
        lab, source_dir=source_dir, db_url=f"sqlite:///{root / 'release.db'}"
    )
    release = nbu.read(release_path / f"{lab}.ipynb")
    solved = solution_submission(the_lab, release)
    sections = sorted(
        {c.section for c in the_lab.graded_cells if c.section.startswith("ex")},
        key=lambda s: int(s[2:]),
    )
    submitted = root / "submitted"
    submitted.mkdir(parents=True, exist_ok=True)
    for section in sections:
        nbformat.write(
            without(section, solved, release), str(submitted / f"without-{section}.ipynb")
        )
    run = grade.main(
        lab=lab, submissions=submitted, out=root / "grades", source_dir=source_dir,
        release_dir=release_dir, emulator_config=emulator_config, force=True,
        grade_config=load(GradeConfig, "grade", workers=workers), late_config=LateConfig(),
    )  # fmt: skip
    leaks = []
    for result in run.results:
        section = result.student.removeprefix("without-")
        got, top = result.exercises.get(section, (0.0, 0.0))
        if result.status != GRADED or got > 1e-9:
            details = tuple(
                f"{c.grade_id} {c.points:g}"
                for c in result.cells
                if c.section == section and c.points
            ) or (f"status {result.status}: {result.reason}",)
            leaks.append(Leak(section, got, top, details))
    return leaks
