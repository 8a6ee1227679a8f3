"""Step 2 of grading: score the executed notebook's test cells with nbgrader's own rule.

Scores are computed once, in memory, with ``nbgrader.utils.determine_grade`` (an error output
scores 0, otherwise full points). Before that, two of nbgrader's traps are closed:
- any stderr output of a test cell scores 0 in nbgrader, so a library warning would cost a student
  points: stderr streams are removed from test cells (errors still count);
- a test cell that never ran has no error output, which nbgrader scores as passed: such cells get an
  explicit NotRun error.
The state checks' scores (grader.verify) join them, and the result is written to the gradebook
once (:func:`grader.nbgrader_glue.record`).
"""

from __future__ import annotations

from nbformat import NotebookNode

from grader import notebook as nbu
from grader import plain
from grader.execute import not_run_output


def prepare_for_nbgrader(nb: NotebookNode, ran: set[int]) -> list[str]:
    """Close the traps above in place (``ran``: the indices of the cells that ran, from
    grader.execute); return notes for the report."""
    notes = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not nbu.is_graded(cell) or nbu.is_solution(cell):
            continue
        before = len(cell.outputs)
        cell.outputs = [
            o for o in cell.outputs if not (o.output_type == "stream" and o.get("name") == "stderr")
        ]
        if len(cell.outputs) != before:
            notes.append(f"warnings printed by {nbu.grade_id(cell)} were ignored")
        errored = any(o.output_type == "error" for o in cell.outputs)
        if index not in ran and not errored and not nbu.is_state_check(cell):
            cell.outputs.append(not_run_output("this test did not run"))
    return notes


def test_points(nb: NotebookNode) -> dict[str, float]:
    """Points per grade id of every graded test cell, as nbgrader scores them (0 when the cell
    has an error output, its points otherwise). State-check cells are left to grader.verify."""
    from nbgrader.utils import determine_grade  # imported late: see grader.nbgrader_glue

    points = {}
    for cell in nb.cells:
        if nbu.is_test(cell):
            got, _ = determine_grade(cell)
            points[nbu.grade_id(cell) or ""] = float(got or 0.0)
    return points


def failure_message(cell: NotebookNode) -> str:
    """The first error of a cell as one line the student can read (no traceback)."""
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            name, value = output.get("ename", "Error"), output.get("evalue", "")
            if (
                name in {"NotRun", plain.PLAIN_ERROR, "AssertionError", "StudentCodeError"}
                and value
            ):
                return value  # already a sentence for the student
            return plain.explain_text(name, value)
    return ""
