"""Cell factories: build small lab notebooks and submissions for tests."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

PARAMETERS = """import os

endpoint_url = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
region = "us-east-1"
account_id = "000000000000"
prefix = "student"
"""

SETUP = """import boto3

session = boto3.Session(aws_access_key_id=account_id, aws_secret_access_key="test", region_name=region)


def client(name):
    return session.client(name, endpoint_url=endpoint_url)
"""


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
    return new_code_cell(
        PARAMETERS,
        metadata={"tags": ["parameters"], "nbgrader": _nbgrader("parameters", locked=True)},
    )


def setup(source: str = SETUP) -> NotebookNode:
    return new_code_cell(
        source, metadata={"tags": ["setup"], "nbgrader": _nbgrader("setup", locked=True)}
    )


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
    nb = new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


#: The minilab: a small S3 + SQS lab that follows docs/lab-format.md (9 points), one copy only.
MINILAB = Path(__file__).parent / "grader" / "files" / "minilab" / "minilab.ipynb"


#: The minilab's state checks (the same file).
MINILAB_CHECKS = (MINILAB.parent / "checks.py").read_text()


def minilab() -> NotebookNode:
    """A fresh copy of the minilab's source notebook (tests/grader/files/minilab)."""
    return nbformat.read(str(MINILAB), as_version=4)


def write(nb: NotebookNode, path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
