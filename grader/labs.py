"""Labs: a source notebook in solutions/, its student release in labs/, and its state checks."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from pathlib import Path

from nbformat import NotebookNode

from grader import ROOT
from grader import answers as ans
from grader import notebook as nbu
from grader.errors import LabError

SOURCE_DIR = ROOT / "solutions"
RELEASE_DIR = ROOT / "labs"
SAMPLES_DIR = ROOT / "samples"


@dataclasses.dataclass(frozen=True)
class GradedCell:
    """One cell that earns points: a test, a state check, or an autograded answer."""

    grade_id: str
    kind: str  #: "test" or "state"
    section: str  #: ``ex1``, ``kc2``...
    points: float
    hint: str


@dataclasses.dataclass(frozen=True)
class Lab:
    """A lab as the grader sees it."""

    name: str
    source: Path  #: solutions/<lab>/<lab>.ipynb, with solutions and hidden tests
    checks: Path  #: solutions/<lab>/checks.py
    release: Path  #: labs/<lab>/<lab>.ipynb

    @property
    def source_dir(self) -> Path:
        return self.source.parent.parent

    @functools.cached_property
    def notebook(self) -> NotebookNode:
        try:
            return nbu.read(self.source)
        except Exception as exc:
            raise LabError(f"cannot read the source notebook: {exc}", lab=self.name) from exc

    @functools.cached_property
    def graded_cells(self) -> list[GradedCell]:
        cells = []
        for cell, section in zip(self.notebook.cells, nbu.sections(self.notebook), strict=True):
            if not nbu.is_graded(cell) or nbu.is_solution(cell):
                continue
            kind = "state" if nbu.is_state_check(cell) else "test"
            cells.append(
                GradedCell(
                    nbu.grade_id(cell) or "", kind, section or "", nbu.points(cell), nbu.hint(cell)
                )
            )
        return cells

    @functools.cached_property
    def setup_sources(self) -> list[str]:
        """The setup cells' code, which the trusted test process runs too."""
        return ans.setup_sources(self.notebook)

    @functools.cached_property
    def services(self) -> tuple[str, ...]:
        """The AWS services the lab's setup makes clients of: the kernel fork server loads their
        models before it forks a kernel."""
        found = [name for source in self.setup_sources for name in ans.client_services(source)]
        return tuple(dict.fromkeys(found))

    @functools.cached_property
    def imports(self) -> tuple[str, ...]:
        """The modules the lab's own cells (not the answers, nor cells grading never runs) import:
        kernels preload them."""
        names: set[str] = set()
        for cell in self.notebook.cells:
            runs = "skip-execution" not in nbu.tags(cell)
            if cell.cell_type == "code" and runs and not nbu.is_solution(cell):
                names |= ans.imported_modules(cell.source)
        return tuple(sorted(names))

    @functools.cached_property
    def test_inputs(self) -> dict[str, list[str]]:
        """For every test cell, the answer names it reads from the student's kernel."""
        given = ans.setup_names(self.notebook)
        return {
            nbu.grade_id(c) or "": sorted(ans.free_names(c.source, given))
            for c in self.notebook.cells
            if c.cell_type == "code" and nbu.is_test(c)
        }

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.graded_cells)

    @functools.cached_property
    def digest(self) -> str:
        """Changes whenever the source notebook or the checks change (regrade needed)."""
        h = hashlib.sha256(self.source.read_bytes())
        if self.checks.exists():
            h.update(self.checks.read_bytes())
        return h.hexdigest()[:16]


def find(name: str, *, source_dir: Path = SOURCE_DIR, release_dir: Path = RELEASE_DIR) -> Lab:
    """The lab called ``name``; a LabError lists the labs there are."""
    source = source_dir / name / f"{name}.ipynb"
    if not source.exists():
        known = ", ".join(available(source_dir)) or "none"
        raise LabError(f"there is no lab {name!r} (labs: {known})", lab=name)
    return Lab(
        name=name,
        source=source,
        checks=source_dir / name / "checks.py",
        release=release_dir / name / f"{name}.ipynb",
    )


def available(source_dir: Path = SOURCE_DIR) -> list[str]:
    if not source_dir.exists():
        return []
    return sorted(p.name for p in source_dir.iterdir() if (p / f"{p.name}.ipynb").exists())
