"""Reports from hostile submissions: every text cleaned and capped before results JSON, feedback
HTML, the summary and junit.xml; outputs capped on every channel a kernel has (run in a real
kernel); results written atomically."""

from __future__ import annotations

import base64
import copy
import html.parser
import json
import os
import re
import xml.etree.ElementTree as ET

import jinja2
import nbformat
import pytest
from nbformat.v4 import new_output

from grader import export, feedback
from grader import html as pages
from grader import notebook as nbu
from grader.execute import execute
from grader.results import GRADED, REJECTED, CellResult, SubmissionResult
from grader.text import clean
from grader.workspace import Workspace
from tests import factories as f

HOSTILE = "nul\x00 esc\x1b[31mred\x1b[0m bell\x07 lone\ud800\udfff \ufffe\uffff\x7f\x85 end"
HUGE = "A" * 10 * 2**20  # 10 MB
#: what XML 1.0 cannot hold, and the escape character
INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def test_clean_removes_what_xml_and_html_cannot_hold():
    assert clean(HOSTILE) == "nul escred bell lone  end"
    assert clean("tab\tnewline\ncr\r é 🙂") == "tab\tnewline\ncr\r é 🙂"
    cut = clean(HUGE, limit=100)
    assert cut.startswith("A" * 100) and len(cut) < 150 and "cut" in cut
    assert clean(None) == "" and clean(12) == "12"


def hostile_results(lab) -> list[SubmissionResult]:
    cells = [
        CellResult(g.grade_id, g.kind, g.section, 0, g.points, passed=False,
                   message=HOSTILE + HUGE, hint=HOSTILE)
        for g in lab.graded_cells
    ]  # fmt: skip
    graded = SubmissionResult(
        "mallory", lab.name, GRADED, max_score=lab.max_score, cells=cells,
        notes=[HOSTILE + HUGE, *[HOSTILE] * 5000], source="x/\udc80\x1b]0;title\x07.ipynb",
    )  # fmt: skip
    rejected = SubmissionResult(
        "trudy", lab.name, REJECTED, max_score=lab.max_score, reason=HUGE + HOSTILE
    )
    return [graded, rejected]


def hostile_notebook(release):
    nb = copy.deepcopy(release)
    code = [c for c in nb.cells if c.cell_type == "code"]
    code[0].source = HOSTILE + HUGE
    code[0].outputs = [
        new_output("stream", name="stdout", text=HOSTILE + HUGE),
        new_output("stream", name="stderr", text=[HOSTILE, HUGE]),
        new_output("error", ename=HOSTILE + HUGE, evalue=HOSTILE + HUGE, traceback=[HUGE]),
        new_output("display_data", data={"text/plain": HOSTILE + HUGE}),
        new_output("display_data", data={"image/png": "x' onerror='alert(1)"}),
        new_output("execute_result", data={"image/png": "QUFB" * 2**20}, execution_count=1),
    ]
    code[1].outputs = [new_output("stream", name="stdout", text=HOSTILE)] * 2000
    return nb


class _Strict(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []  #: the page's text, unescaped

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> _Strict:
    parser = _Strict()
    parser.feed(page)
    parser.close()
    return parser


def assert_safe_html(text: str, bound: int) -> None:
    assert len(text.encode("utf-8")) < bound
    assert not INVALID.search(text) and "\x1b" not in text
    assert "script" not in parse(text).tags
    assert "onerror=" not in text


def test_hostile_text_is_bounded_and_parseable_in_every_report(tmp_path, minilab, minilab_release):
    results = hostile_results(minilab)
    workspace = Workspace(tmp_path)

    # results JSON
    for result in results:
        result.save(workspace.result_path(result.student))
        path = workspace.result_path(result.student)
        assert path.stat().st_size < 500_000
        data = json.loads(path.read_text(encoding="utf-8"))
        assert not INVALID.search(json.dumps(data, ensure_ascii=False))
        assert SubmissionResult.load(path).student == result.student
    saved = json.loads(workspace.result_path("mallory").read_text())
    assert len(saved["notes"]) == 101 and saved["notes"][-1].startswith("… and")
    assert all("cut: too long" in c["message"] for c in saved["cells"])

    # feedback HTML: the summary, and the notebook as graded
    page = feedback.render(results[0], minilab, hostile_notebook(minilab_release), minilab_release)
    assert_safe_html(page, 3_000_000)
    assert "QUFB" not in page  # a 4 MB image is left out
    for result in results:
        feedback.write(result, minilab, workspace, minilab_release)
        assert_safe_html(workspace.feedback_path(result.student, minilab.name).read_text(), 500_000)

    # junit.xml, summary.json and summary.html
    junit = tmp_path / "junit.xml"
    export.write_junit(results, junit)
    assert junit.stat().st_size < 500_000
    root = ET.parse(junit).getroot()
    messages = [e.get("message") for e in root.iter() if e.get("message")]
    assert messages and all(len(m) < 3_000 for m in messages)
    summary = tmp_path / "summary.html"
    export.write_summary_html(minilab, results, summary, "summary.png")
    assert_safe_html(summary.read_text(), 100_000)
    table = export.class_table(minilab, results)
    assert "\x1b" not in table and len(table) < 10_000
    assert len(json.dumps([r.to_json() for r in results])) < 1_000_000


SCRIPT = "<script>alert('pwned' + \"!\")</script>"


def test_feedback_shows_markup_from_a_submission_as_text_and_the_labs_own_as_html(
    minilab, minilab_release
):
    cells = [
        CellResult(g.grade_id, g.kind, g.section, 0, g.points, passed=False,
                   message=f"{SCRIPT} in a message", hint=f"{SCRIPT} in a hint")
        for g in minilab.graded_cells
    ]  # fmt: skip
    result = SubmissionResult(
        f"eve{SCRIPT}", minilab.name, GRADED, max_score=minilab.max_score, cells=cells,
        notes=[f"{SCRIPT} in a note"],
    )  # fmt: skip
    result.add_up()
    executed = copy.deepcopy(minilab_release)
    answer = next(c for c in executed.cells if c.cell_type == "code" and not nbu.is_graded(c))
    answer.source = f"print({SCRIPT!r})  # in the source"
    answer.outputs = [
        new_output("stream", name="stdout", text=f"{SCRIPT} in a stream"),
        new_output("error", ename="ValueError", evalue=f"{SCRIPT} in an error", traceback=[]),
        new_output("display_data", data={"text/plain": f"{SCRIPT} in a display",
                                         "text/html": SCRIPT}),
    ]  # fmt: skip
    page = feedback.render(result, minilab, executed, minilab_release)
    parsed = parse(page)
    assert "script" not in parsed.tags and "<script" not in page
    text = "".join(parsed.text)
    for where in ("message", "hint", "note", "stream", "error", "display"):
        assert f"{SCRIPT} in a{'n' if where[0] in 'ae' else ''} {where}" in text, where
    assert f"print({SCRIPT!r})  # in the source" in text
    assert f"eve{SCRIPT}" in text  # the student's name, in the title and the heading
    assert "<h2>Your notebook as graded</h2>" in page
    assert "<h1>Minilab: a bucket and a queue</h1>" in page  # the lab's markdown, as HTML
    assert {"table", "details", "pre"} <= set(parsed.tags)

    rejected = SubmissionResult("eve", minilab.name, REJECTED, reason=f"{SCRIPT} in a reason")
    page = feedback.render(rejected, minilab, executed, minilab_release)
    parsed = parse(page)
    assert "script" not in parsed.tags and "<script" not in page
    assert f"Not graded: {SCRIPT} in a reason" in "".join(parsed.text)
    assert "Your notebook as graded" not in page and "table" not in parsed.tags


def test_render_escapes_every_value_but_a_trusted_fragment():
    assert pages.render("notes.html.j2", notes=[SCRIPT]).strip() == (
        "<ul class='note'><li>&lt;script&gt;alert(&#39;pwned&#39; + &#34;!&#34;)&lt;/script&gt;"
        "</li></ul>"
    )
    inner = pages.render("notes.html.j2", notes=["<b>"]).strip()
    nested = pages.render("notes.html.j2", notes=[inner, pages.trusted(inner)])
    assert "<li>&lt;ul" in nested  # a plain string is escaped, even one rendered here
    assert "<li><ul class='note'><li>&lt;b&gt;</li></ul></li>" in nested
    assert pages.render("notes.html.j2", notes=[], name="a context value").strip() == ""
    with pytest.raises(jinja2.UndefinedError):  # a missing value fails, never prints as ""
        pages.render("notes.html.j2")


def test_save_is_atomic_and_never_writes_through_a_link(tmp_path, monkeypatch):
    path = tmp_path / "results" / "amy.json"
    first = SubmissionResult("amy", "minilab", GRADED, score=1)
    first.save(path)

    def killed(*args):
        raise KeyboardInterrupt  # the run is killed between writing and renaming

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        SubmissionResult("amy", "minilab", GRADED, score=2, notes=["x" * 10**6]).save(path)
    monkeypatch.undo()
    assert SubmissionResult.load(path).score == 1  # the old result, whole
    assert [p.name for p in path.parent.iterdir()] == ["amy.json"]  # no temporary file left

    outside = tmp_path / "outside.json"
    outside.write_text("untouched")
    path.unlink()
    path.symlink_to(outside)
    SubmissionResult("amy", "minilab", GRADED, score=3).save(path)
    assert not path.is_symlink() and SubmissionResult.load(path).score == 3
    assert outside.read_text() == "untouched"


# -- output caps, in a real kernel ---------------------------------------------------------------


def _run(tmp_path, *sources, output_limit):
    nb = f.notebook(*(f.code(source) for source in sources))
    execution = execute(
        nb, parameters={}, cwd=tmp_path, output_limit=output_limit, cell_timeout=60, budget=300
    )
    cells = [c for c in execution.notebook.cells if c.cell_type == "code"]
    assert len(cells) == len(sources)
    return execution, cells


def _size(cell) -> int:
    return len(json.dumps(cell.outputs, ensure_ascii=False))


def _texts(cell) -> str:
    return "".join(str(o.get("text", "")) for o in cell.outputs)


UPDATE_LOOP = """\
from IPython.display import display, update_display
display({"text/plain": "start"}, raw=True, display_id="d")
payload = "x" * 2**20
for i in range(200):
    update_display({"text/plain": payload}, raw=True, display_id="d")
print("done")
"""

MANY_TARGETS = """\
for i in range(50):
    display({"text/plain": "t"}, raw=True, display_id="many")
update_display({"text/plain": "u" * 50_000}, raw=True, display_id="many")
"""


def test_update_display_in_a_loop_keeps_the_notebook_small(tmp_path):
    execution, cells = _run(
        tmp_path, UPDATE_LOOP, "print('next cell')", MANY_TARGETS, "print('last')",
        output_limit=100_000,
    )  # fmt: skip
    assert len(nbformat.writes(execution.notebook)) < 500_000
    loop, after, many, last = cells
    assert "done" in _texts(loop) and "was dropped" in _texts(loop)
    assert after.outputs[0].text == "next cell\n" and last.outputs[0].text == "last\n"
    # one update rewriting 50 outputs costs 50 times its size, so it does not fit either
    assert all(o.data["text/plain"] == "t" for o in many.outputs if o.output_type == "display_data")
    truncated = [e.cell for e in execution.events if e.kind == "output-truncated"]
    assert len(truncated) == 2


PNG = base64.b64encode(os.urandom(200_000)).decode()

CHANNELS = [
    '"r" * 10**6',  # execute_result
    'display({f"text/x-{i}": "m" * 1000 for i in range(100)}, raw=True)',  # many mime types
    f'display({{"image/png": "{PNG}"}}, raw=True)',  # a large image
    "import sys\nsys.setrecursionlimit(5000)\n"
    "def deep(n):\n    return deep(n - 1) if n else 1 / 0\n"
    "try:\n    deep(2000)\nexcept ZeroDivisionError:\n    raise ValueError('v' * 10**6)",
    "from IPython.display import clear_output\nprint('a' * 5000)\nclear_output()\n"
    "print('b' * 20_000)\nclear_output(wait=True)\nprint('c' * 20_000)",
    "from IPython.display import clear_output\ntry:\n    1 / 0\nexcept ZeroDivisionError:\n"
    "    get_ipython().showtraceback()\nclear_output()\nprint('cleared')",
    "print('p' * 200_000)\nraise RuntimeError('after too much output')",
    "from comm import create_comm\n"
    "bad = create_comm(target_name='jupyter.widget', data={'state': {}})\n"
    "big = create_comm(target_name='jupyter.widget', "
    "data={'state': {'_model_module': 'm', 'x': 'w' * 10**6}})",
]


def test_every_output_channel_counts_against_the_caps(tmp_path):
    limit = 10_000
    filler = ["print('f' * 9_000)"] * 25  # then the notebook's cap (20 x limit) is reached
    execution, cells = _run(tmp_path, *CHANNELS, *filler, output_limit=limit)
    result, mimes, image, error, cleared, cleared_error, loud, widget, *rest = cells
    for cell in cells:  # a cell keeps at most its cap, a note and a shortened error
        assert _size(cell) < limit + 15_000, cell.source[:80]
    assert not [o for o in result.outputs if o.output_type == "execute_result"]
    assert not [o for o in mimes.outputs if o.output_type == "display_data"]
    assert not [o for o in image.outputs if o.output_type == "display_data"]
    (raised,) = [o for o in error.outputs if o.output_type == "error"]  # kept, shortened
    assert raised.ename == "ValueError" and len(json.dumps(raised)) < 15_000
    # a clear_output frees nothing: what was cleared still counts, what came after is dropped
    assert "was dropped" in _texts(cleared) and "c" * 100 not in _texts(cleared)
    assert "b" * 100 not in _texts(cleared)  # cleared by clear_output(wait=True)
    assert [o.output_type for o in cleared_error.outputs] == ["error", "stream"]  # not cleared
    assert [o.ename for o in loud.outputs if o.output_type == "error"] == ["RuntimeError"]
    assert "was dropped" in _texts(widget)
    assert len(json.dumps(execution.notebook.metadata.get("widgets", {}))) < limit
    total = sum(_size(c) for c in cells)
    assert total < 20 * limit + 15_000 * len(cells) // 4
    assert "notebook's" in _texts(rest[-1]) and "f" * 9_000 not in _texts(rest[-1])
    assert any("the notebook printed too much" in e.message for e in execution.events)
