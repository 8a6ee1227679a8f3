"""Step 0 of grading: turn a submitted notebook into the notebook that is executed.

The lab's source notebook is the template. Every locked cell (parameters, setup, tests, state
checks, instructions) comes from the source, with its hidden tests; the student contributes only
their answers (solution cells, matched by nbgrader grade id) and their own extra cells, kept after
the answer they followed. Edited, deleted and reordered cells are detected with nbgrader's
checksums against the student release and reported; they never change what is graded.
"""

from __future__ import annotations

import copy
import dataclasses
import secrets

from nbformat import NotebookNode
from nbgrader.utils import compute_checksum

from grader import notebook as nbu
from grader.errors import SubmissionError
from grader.labs import Lab


@dataclasses.dataclass
class Restored:
    notebook: NotebookNode
    notes: list[str]  #: what was restored or ignored, for the report


def restore(submission: NotebookNode, *, lab: Lab, release: NotebookNode) -> Restored:
    source = lab.notebook
    released = {nbu.grade_id(c): c for c in release.cells if nbu.grade_id(c)}
    source_ids = [nbu.grade_id(c) for c in source.cells if nbu.grade_id(c)]
    notes: list[str] = []

    # The student's cells: answers by grade id, and extra cells after the answer they follow.
    # Copies of the lab's own cells (parameters, setup, examples) are not extras: the lab's
    # version of those is used, so they can never override the injected parameters.
    lab_sources = {nbu.normalized_source(c.source) for c in (*source.cells, *release.cells)}
    answers: dict[str, NotebookNode] = {}
    extras: dict[str | None, list[NotebookNode]] = {}
    anchor: str | None = None
    seen_order: list[str] = []
    for cell in submission.cells:
        gid = nbu.grade_id(cell)
        if gid in released:
            if gid in answers:
                notes.append(f"cell {gid} appears twice; the first copy was graded")
                continue
            answers[gid] = cell
            seen_order.append(gid)
            anchor = gid
        elif (
            cell.cell_type == "code"
            and cell.source.strip()
            and not nbu.SETUP_TAGS & set(nbu.tags(cell))
            and nbu.normalized_source(cell.source) not in lab_sources
        ):
            extras.setdefault(anchor, []).append(_plain(cell))

    # Labs share grade ids (ex1_solution, kc1_test), so a notebook of another lab is recognised
    # by its test cells: several present, not one of them the lab's own.
    tests = [g for g in answers if nbu.is_graded(released[g]) and not nbu.is_solution(released[g])]
    intact = [g for g in tests if _unchanged(answers[g], released[g])]
    if not answers or (len(tests) >= 2 and not intact):
        raise SubmissionError(
            f"this notebook is not the {lab.name} lab: none of its locked cells (tests, "
            "instructions) match the lab's (was it submitted under the wrong lab?)"
        )
    expected_order = [g for g in source_ids if g in answers]
    if seen_order != expected_order:
        notes.append("cells were reordered; they were graded in the lab's order")

    cells: list[NotebookNode] = []
    setup_seen = False
    for cell in source.cells:
        gid = nbu.grade_id(cell)
        if gid and nbu.is_solution(cell):
            student = answers.get(gid)
            if student is None:
                notes.append(f"answer cell {gid} was deleted; graded as unanswered")
                cells.append(_with_source(cell, released[gid].source))
            else:
                cells.append(_with_source(cell, student.source))
        else:
            if gid in released:
                student = answers.get(gid)
                if student is None:
                    notes.append(f"{_kind(cell)} {gid} was deleted; restored from the lab")
                elif compute_checksum(_plain_copy(student, released[gid])) != _checksum(
                    released[gid]
                ):
                    notes.append(f"{_kind(cell)} {gid} was edited; restored from the lab")
            cells.append(copy.deepcopy(cell))
        if gid:
            cells.extend(extras.pop(gid, []))
        if gid == "setup" or "setup" in nbu.tags(cell):
            setup_seen = True
            cells.extend(extras.pop(None, []))
    if not setup_seen:
        cells[1:1] = extras.pop(None, [])
    nb = copy.deepcopy(source)
    nb.cells = cells
    return Restored(nb, notes)


def _kind(cell: NotebookNode) -> str:
    if nbu.is_state_check(cell):
        return "state-check cell"
    if nbu.is_graded(cell):
        return "test cell"
    return "locked cell"


def _unchanged(student: NotebookNode, released: NotebookNode) -> bool:
    return compute_checksum(_plain_copy(student, released)) == _checksum(released)


def _checksum(cell: NotebookNode) -> str:
    return nbu.nbgrader(cell).get("checksum") or compute_checksum(cell)


def _plain_copy(student: NotebookNode, released: NotebookNode) -> NotebookNode:
    """The student's cell with the released cell's metadata, so only its source is compared."""
    cell = copy.deepcopy(released)
    cell.source = student.source
    return cell


def _with_source(template: NotebookNode, text: str) -> NotebookNode:
    cell = copy.deepcopy(template)
    cell.source = text
    cell.outputs = []
    cell.execution_count = None
    return cell


def _plain(cell: NotebookNode) -> NotebookNode:
    """A student's own cell, stripped of outputs and any nbgrader metadata it claims."""
    cell = copy.deepcopy(cell)
    cell.id = f"student-{secrets.token_hex(4)}"  # never collides with the lab's cell ids
    cell.metadata.pop("nbgrader", None)
    cell.metadata["tags"] = [t for t in nbu.tags(cell) if t not in {"parameters", "setup"}]
    cell.outputs = []
    cell.execution_count = None
    return cell
