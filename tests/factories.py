"""Cell factories: build small lab notebooks and submissions for tests."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def _nbgrader(grade_id: str, *, grade=False, solution=False, locked=False, points=None) -> dict:
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if points is not None:
        meta["points"] = points
    return meta


def markdown(text: str) -> NotebookNode:
    return new_markdown_cell(text)


def code(source: str, **metadata) -> NotebookNode:
    return new_code_cell(source, metadata=metadata)


def parameters() -> NotebookNode:
    """The minilab's parameters cell (the one every lab has, docs/lab-format.md)."""
    return _tagged("parameters")


def setup(source: str | None = None) -> NotebookNode:
    """The minilab's setup cell, or one with the same metadata and ``source``."""
    cell = _tagged("setup")
    if source is not None:
        cell.source = source
    return cell


def solution(grade_id: str, source: str) -> NotebookNode:
    return new_code_cell(source, metadata={"nbgrader": _nbgrader(grade_id, solution=True)})


def test(
    grade_id: str, source: str, points: float = 1, hint: str = "check your answer"
) -> NotebookNode:
    return _graded(grade_id, f"# Hint: {hint}\n{source}", points)


def state(
    grade_id: str, what: str, points: float = 1, hint: str = "check the resource"
) -> NotebookNode:
    body = f"# Hint: {hint}\n# State check (graded by cloudlabs from outside this notebook):\n# {what}\n"
    return _graded(grade_id, body, points)


def _graded(grade_id: str, body: str, points: float) -> NotebookNode:
    return new_code_cell(
        body, metadata={"nbgrader": _nbgrader(grade_id, grade=True, locked=True, points=points)}
    )


def notebook(*cells: NotebookNode) -> NotebookNode:
    """A notebook of ``cells`` with the minilab's notebook metadata (kernelspec, language)."""
    return new_notebook(cells=list(cells), metadata=minilab().metadata)


#: The minilab: a small S3 + SQS lab that follows docs/lab-format.md (9 points). This file is its
#: one copy: every notebook, cell or checks text of it that tests use is read from here.
MINILAB = Path(__file__).parent / "grader" / "files" / "minilab" / "minilab.ipynb"


#: The minilab's state checks (the same folder).
MINILAB_CHECKS = (MINILAB.parent / "checks.py").read_text()


def minilab() -> NotebookNode:
    """A fresh copy of the minilab's source notebook (tests/grader/files/minilab)."""
    return nbformat.read(str(MINILAB), as_version=4)


def _tagged(tag: str) -> NotebookNode:
    """A fresh copy of the minilab's cell tagged ``tag``."""
    (cell,) = [c for c in minilab().cells if tag in c.metadata.get("tags", [])]
    return cell


#: The minilab's parameters and setup code, e.g. to plant a copy of them in a submission.
PARAMETERS = parameters().source
SETUP = setup().source


def write(nb: NotebookNode, path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


# --- question bank items (grader.bank) -------------------------------------------------------


def bank_item(domain: str, number: int, *, exam: str = "SAA-C03", task: str = "2.1",
              answer: str = "A") -> dict:  # fmt: skip
    """One well-formed source item; ``answer`` "A" for one right of four, "A,C" for two of five."""
    right = answer.split(",")
    letters = "ABCD" if len(right) == 1 else "ABCDEF"[: {2: 5, 3: 6}[len(right)]]
    choose = {1: "", 2: " Choose two.", 3: " Choose three."}[len(right)]
    return {
        "id": f"{domain}-b{number:02d}", "exam": exam, "task": task,
        "stem": f"A team runs workload {number} and must meet one requirement at the lowest "
                f"cost; which design works?{choose}",
        "options": {x: f"design {x} of item {number}" for x in letters},
        "answer": right,
        "explain": {x: f"{'meets' if x in right else 'misses'} the requirement" for x in letters},
    }  # fmt: skip


def write_bank(folder: Path, domain: str, items: list[dict]) -> Path:
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{domain}.yaml"
    path.write_text(yaml.safe_dump({"domain": domain, "items": items}, sort_keys=False))
    return path
