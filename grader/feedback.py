"""Per-student HTML feedback: the score per exercise, what failed with its hint, and the student's
notebook as graded — with hidden tests removed and failures shown as one line, never a traceback
that could quote a hidden test.

The notebook is rendered here rather than with nbconvert: ten times faster (it runs once per
submission), and every output a student's code produced is escaped (no script or HTML from a
submission ever reaches the page an instructor opens). Markdown comes from the lab's own cells.
Every text from a submission is also cleaned (:func:`grader.text.clean`): capped in size, with no
character HTML cannot carry."""

from __future__ import annotations

import copy
import html
import re

import mistune
import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_output

from grader import notebook as nbu
from grader import summary
from grader.labs import Lab
from grader.results import (
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

STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
.ok{color:#11702a}summary{cursor:pointer}.no{color:#a4161a}.note{color:#555}
"""


def summary_html(result: SubmissionResult, lab: Lab) -> str:
    """The score table and the reasons, as an HTML fragment."""

    def e(text: object, limit: int = MESSAGE_LIMIT) -> str:
        return html.escape(clean(text, limit))

    parts = [f"<h1>{e(lab.name)} — {e(result.student)}</h1>"]
    if result.status != "graded":
        parts.append(f"<p class='no'><b>Not graded:</b> {e(result.reason, REASON_LIMIT)}</p>")
        return "\n".join(parts)
    parts.append(
        f"<p><b>Score: {summary.points(result.score)} / {summary.points(result.max_score)}</b></p>"
    )
    parts.append(summary.html_table(result, lab))
    if result.notes:
        parts.append("<h2>Notes</h2><ul class='note'>")
        notes = summary.notes(result)
        parts += [f"<li>{html.escape(note)}</li>" for note in notes]
        parts.append("</ul>")
    return "\n".join(parts)


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


def _output_html(output: NotebookNode) -> str:
    def e(text: object, limit: int = OUTPUT_LIMIT) -> str:
        return html.escape(clean(text, limit))

    kind = output.get("output_type")
    if kind == "stream":
        return f"<pre class='out'>{e(_text(output.get('text', '')))}</pre>"
    if kind == "error":
        name, value = output.get("ename", ""), output.get("evalue", "")
        return f"<pre class='out no'>{e(name, 200)}: {e(value, MESSAGE_LIMIT)}</pre>"
    data = output.get("data") or {}
    if not isinstance(data, dict):
        return ""
    image = _text(data.get("image/png", ""))
    if image and len(image) <= IMAGE_LIMIT and _BASE64.fullmatch(image):
        return f"<img alt='plot' src='data:image/png;base64,{e(image.strip(), IMAGE_LIMIT)}'>"
    return f"<pre class='out'>{e(_text(data.get('text/plain', '')))}</pre>"


def render_notebook(nb: NotebookNode) -> str:
    parts = []
    shown = hidden = 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":  # the lab's own cells (grader.restore)
            parts.append(f"<div class='md'>{_markdown(clean(cell.source, 10**6))}</div>")
        elif cell.cell_type == "code":
            parts.append(f"<pre class='in'>{html.escape(clean(cell.source, SOURCE_LIMIT))}</pre>")
            for output in cell.get("outputs", []):
                if shown >= PAGE_OUTPUTS:
                    hidden += 1
                    continue
                shown += 1
                parts.append(_output_html(output))
    if hidden:
        parts.append(f"<p class='note'>{hidden:,} more outputs are not shown.</p>")
    return "\n".join(parts)


PAGE_STYLE = (
    STYLE
    + """
pre.in{background:#f5f5f5;padding:.5rem;border-left:3px solid #888;overflow-x:auto}
pre.out{padding:.3rem .5rem;overflow-x:auto;max-height:30rem}.md{margin:1rem 0}
"""
)


def render(
    result: SubmissionResult, lab: Lab, executed: NotebookNode | None, release: NotebookNode | None
) -> str:
    body = summary_html(result, lab)
    if executed is not None and release is not None:
        body += "<h2>Your notebook as graded</h2>" + render_notebook(
            student_view(executed, release, result)
        )
    title = html.escape(clean(f"{lab.name} — {result.student}", 200))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{PAGE_STYLE}</style></head><body>{body}</body></html>"
    )


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
