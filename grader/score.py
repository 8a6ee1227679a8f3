"""Step 2 of grading: score the executed notebook with nbgrader, into nbgrader's gradebook.

Before nbgrader sees the notebook, two of its traps are closed:
- any stderr output of a test cell scores 0 in nbgrader, so a library warning would cost a student
  points: stderr streams are removed from test cells (errors still count);
- a test cell that never ran has no error output, which nbgrader scores as passed: such cells get an
  explicit NotRun error.
"""

from __future__ import annotations

from nbformat import NotebookNode

from grader import nbgrader_glue, plain
from grader import notebook as nbu
from grader.execute import not_run_output


def prepare_for_nbgrader(nb: NotebookNode) -> list[str]:
    """Close the traps above in place; return notes for the report."""
    notes = []
    for cell in nb.cells:
        if cell.cell_type != "code" or not nbu.is_graded(cell) or nbu.is_solution(cell):
            continue
        before = len(cell.outputs)
        cell.outputs = [
            o for o in cell.outputs if not (o.output_type == "stream" and o.get("name") == "stderr")
        ]
        if len(cell.outputs) != before:
            notes.append(f"warnings printed by {nbu.grade_id(cell)} were ignored")
        status = cell.get("metadata", {}).get("papermill", {}).get("status")
        ran = status == "completed" or any(o.output_type == "error" for o in cell.outputs)
        if not ran and not nbu.is_state_check(cell):
            cell.outputs.append(not_run_output("this test did not run"))
    return notes


def autograde(nb: NotebookNode, *, lab: str, student: str, db_url: str) -> list[str]:
    """Record every graded cell's score in the gradebook; returns notes for the report."""
    notes = prepare_for_nbgrader(nb)
    nbgrader_glue.save_autogrades(nb, lab=lab, student=student, db_url=db_url)
    return notes


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
