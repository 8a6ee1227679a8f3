"""Where a grading run keeps its files: an nbgrader course workspace (gradebook, results,
autograded notebooks, feedback) and the lab version it was made for."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

from nbformat import NotebookNode

from grader import nbgrader_glue
from grader import notebook as nbu
from grader.labs import Lab


@dataclasses.dataclass(frozen=True)
class Workspace:
    """The files of one grading run, under ``root``."""

    root: Path

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.root / 'gradebook.db'}"

    def result_path(self, student: str) -> Path:
        return self.root / "results" / f"{student}.json"

    def autograded_path(self, student: str, lab: str) -> Path:
        return self.root / "autograded" / student / lab / f"{lab}.ipynb"

    def feedback_path(self, student: str, lab: str) -> Path:
        return self.root / "feedback" / student / lab / f"{lab}.html"


def prepare(lab: Lab, root: Path) -> tuple[Workspace, NotebookNode]:
    """The workspace with the lab recorded in its gradebook, and the lab's student release."""
    workspace = Workspace(root)
    root.mkdir(parents=True, exist_ok=True)
    # nbgrader will not drop a graded cell that has grades: the gradebook and results of another
    # version of the lab are kept aside, and every submission is graded again.
    version = root / "lab-version"
    old = version.read_text() if version.exists() else "unknown"
    if workspace.root.joinpath("gradebook.db").exists() and old != lab.digest:
        aside = f"{old}-{time.time_ns()}"
        for name in ("gradebook.db", "results"):
            path = root / name
            if path.exists():
                path.replace(path.with_name(f"{path.stem}-{aside}{path.suffix}"))
    release_dir = nbgrader_glue.release_to_temp(
        lab.name, source_dir=lab.source_dir, db_url=workspace.db_url
    )
    try:
        release = nbu.read(release_dir / f"{lab.name}.ipynb")
    finally:
        shutil.rmtree(release_dir.parent, ignore_errors=True)
    version.write_text(lab.digest)
    return workspace, release
