"""Sample submissions of a lab: the solution (full marks), the blank release (0) and the partial
attempt committed in samples/<lab>/ with its expected score. The demo and the tests grade them."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from grader import notebook as nbu
from grader.labs import SAMPLES_DIR, Lab

MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def solution_submission(lab: Lab, release: NotebookNode) -> NotebookNode:
    """What a student who solved everything would hand in: the release with the answers filled."""
    answers = {
        nbu.grade_id(c): "\n".join(
            line for line in c.source.splitlines() if line.strip() not in MARKERS
        )
        for c in lab.notebook.cells
        if nbu.is_solution(c)
    }
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        gid = nbu.grade_id(cell)
        if gid in answers:
            cell.source = answers[gid]
    return nb


def expected(lab: Lab, samples_dir: Path = SAMPLES_DIR) -> dict[str, float]:
    path = samples_dir / lab.name / "expected.json"
    return json.loads(path.read_text()) if path.exists() else {}


def write_class(
    lab: Lab, release: NotebookNode, target: Path, samples_dir: Path = SAMPLES_DIR
) -> dict[str, float]:
    """Write the sample submissions as target/<student>.ipynb; returns the expected scores."""
    target.mkdir(parents=True, exist_ok=True)
    nbformat.write(solution_submission(lab, release), str(target / "solution.ipynb"))
    nbformat.write(release, str(target / "blank.ipynb"))
    partial = samples_dir / lab.name / "partial.ipynb"
    scores = {"solution": lab.max_score, "blank": 0.0}
    if partial.exists():
        target.joinpath("partial.ipynb").write_bytes(partial.read_bytes())
        scores["partial"] = float(expected(lab, samples_dir).get("partial", 0))
    return scores
