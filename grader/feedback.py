"""Per-student HTML feedback: the score per exercise, what failed with its hint, and the student's
notebook as graded — with hidden tests removed and failures shown as one line, never a traceback
that could quote a hidden test.

The notebook is rendered here (grader/templates/feedback.html.j2) rather than with nbconvert: ten
times faster (it runs once per submission), and every output a student's code produced is escaped
by Jinja2's autoescaping (no script or HTML from a submission ever reaches the page an instructor
opens). Markdown comes from the lab's own cells.
Every text from a submission is also cleaned (:func:`grader.text.clean`): capped in size, with no
character HTML cannot carry."""

from __future__ import annotations

import copy
import re

import mistune
import nbformat
from markupsafe import Markup
from nbformat import NotebookNode
from nbformat.v4 import new_output

from grader import html as pages
from grader import late, summary
from grader import notebook as nbu
from grader.labs import Lab
from grader.results import (
    GRADED,
    MESSAGE_LIMIT,
    REASON_LIMIT,
    SubmissionResult,
    write_atomically,
)
from grader.text import clean
from grader.workspace import Workspace

SOURCE_LIMIT = 20_000  #: characters of one cell's source shown
OUTPUT_LIMIT = 20_000  #: characters of one text output shown
IMAGE_LIMIT = 2_000_000  #: characters of one base64 image shown (larger ones are left out)
PAGE_OUTPUTS = 500  #: outputs shown on one page; then a line says how many more there were
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")


def _notes(result: SubmissionResult) -> Markup | None:
    notes = summary.notes(result)
    return pages.trusted(pages.render("notes.html.j2", notes=notes)) if notes else None


def student_view(
    executed: NotebookNode, release: NotebookNode, result: SubmissionResult
) -> NotebookNode:
    """The executed notebook as the student may see it."""
    nb = copy.deepcopy(executed)
    visible = {nbu.grade_id(c): c.source for c in release.cells if nbu.grade_id(c)}
    outcomes = {c.grade_id: c for c in result.cells}
    for cell in nb.cells:
        gid = nbu.grade_id(cell)
        if not gid or not nbu.is_graded(cell) or nbu.is_solution(cell):
            continue
        cell.source = visible.get(gid, "# (test cell)")
        outcome = outcomes.get(gid)
        text = (
            "✓ passed"
            if outcome and outcome.passed
            else f"✗ {clean(outcome.message, MESSAGE_LIMIT) if outcome else 'failed'}"
        )
        if outcome and not outcome.passed and outcome.hint:
            text += f"\nHint: {clean(outcome.hint, MESSAGE_LIMIT)}"
        cell.outputs = [new_output("stream", name="stdout", text=text + "\n")]
    return nb


_markdown = mistune.create_markdown(plugins=["table", "strikethrough"])


def _text(value: object) -> str:
    """An output's text: nbformat allows a string or a list of strings."""
    if isinstance(value, list):
        value = "".join(str(v) for v in value[:10_000])
    return str(value or "")


def _output(output: NotebookNode) -> dict[str, str] | None:
    """What the page shows of one output: its kind and its (cleaned, not yet escaped) text."""
    kind = output.get("output_type")
    if kind == "stream":
        return {"kind": "text", "text": clean(_text(output.get("text", "")), OUTPUT_LIMIT)}
    if kind == "error":
        name, value = output.get("ename", ""), output.get("evalue", "")
        return {"kind": "error", "text": f"{clean(name, 200)}: {clean(value, MESSAGE_LIMIT)}"}
    data = output.get("data") or {}
    if not isinstance(data, dict):
        return None
    image = _text(data.get("image/png", ""))
    if image and len(image) <= IMAGE_LIMIT and _BASE64.fullmatch(image):
        return {"kind": "image", "text": clean(image.strip(), IMAGE_LIMIT)}
    return {"kind": "text", "text": clean(_text(data.get("text/plain", "")), OUTPUT_LIMIT)}


def notebook_cells(nb: NotebookNode) -> tuple[list[dict], int]:
    """The cells as the page shows them, and how many outputs were left out (PAGE_OUTPUTS)."""
    cells: list[dict] = []
    shown = hidden = 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":  # the lab's own cells (grader.restore)
            cells.append({"markdown": pages.trusted(_markdown(clean(cell.source, 10**6)))})
        elif cell.cell_type == "code":
            outputs = []
            for output in cell.get("outputs", []):
                if shown >= PAGE_OUTPUTS:
                    hidden += 1
                    continue
                shown += 1
                if (shown_output := _output(output)) is not None:
                    outputs.append(shown_output)
            cells.append({"markdown": None, "source": cell.source, "outputs": outputs})
    return cells, hidden


def render(
    result: SubmissionResult, lab: Lab, executed: NotebookNode | None, release: NotebookNode | None
) -> str:
    graded = result.status == GRADED
    cells, hidden = None, 0
    if graded and executed is not None and release is not None:
        cells, hidden = notebook_cells(student_view(executed, release, result))
    return pages.render(
        "feedback.html.j2", lab=lab.name, student=result.student, graded=graded,
        reason=result.reason, reason_limit=REASON_LIMIT, score=summary.points(result.final_score),
        late=late.summary(result),
        max_score=summary.points(result.max_score),
        table=pages.trusted(summary.html_table(result, lab)) if graded else "",
        notes=_notes(result) if graded else None, cells=cells, hidden=hidden,
        source_limit=SOURCE_LIMIT,
    )  # fmt: skip


def write(
    result: SubmissionResult, lab: Lab, workspace: Workspace, release: NotebookNode | None = None
) -> None:
    executed_path = workspace.autograded_path(result.student, lab.name)
    executed = nbformat.read(str(executed_path), as_version=4) if executed_path.exists() else None
    if release is None and lab.release.exists():
        release = nbu.read(lab.release)
    write_atomically(
        workspace.feedback_path(result.student, lab.name), render(result, lab, executed, release)
    )
