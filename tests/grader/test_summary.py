"""What a student reads: one line per exercise, rounded points, "not attempted" once, the first
cause in plain words with its hint, the total at the end (terminal, notebook and HTML alike)."""

from __future__ import annotations

import html.parser

from grader import plain, summary
from grader.check import Shown
from grader.results import GRADED, REJECTED, CellResult, SubmissionResult


def _result(minilab, **overrides) -> SubmissionResult:
    cells = [
        CellResult(g.grade_id, g.kind, g.section, g.points, g.points, passed=True, hint=g.hint)
        for g in minilab.graded_cells
    ]
    result = SubmissionResult("me", minilab.name, GRADED, max_score=minilab.max_score, cells=cells)
    for grade_id, (points, message) in overrides.items():
        cell = next(c for c in result.cells if c.grade_id == grade_id)
        cell.points, cell.passed, cell.message = points, False, message
    result.add_up()
    return result


def test_points_are_rounded_for_reading():
    assert summary.points(6.666667) == "6.7" and summary.points(5.0) == "5"
    assert summary.points(1.66667) == "1.7" and summary.points(0) == "0"


def test_an_untouched_exercise_says_not_attempted_once(minilab):
    ex2 = [g.grade_id for g in minilab.graded_cells if g.section == "ex2"]
    result = _result(minilab, **{g: (0, "the queue does not exist yet") for g in ex2})
    result.unattempted = ["ex2"]
    text = summary.text(result, minilab)
    assert text.count("not attempted") == 1
    assert "the queue does not exist yet" not in text  # no knock-on errors
    assert (
        text.rstrip().splitlines()[-1]
        == f"Total: {summary.points(result.score)} / {summary.points(minilab.max_score)}"
    )


def test_a_failed_exercise_shows_its_first_real_cause_then_its_hint(minilab):
    first, *rest = [g for g in minilab.graded_cells if g.section == "ex1"]
    result = _result(
        minilab,
        **{first.grade_id: (0, "bucket demo-x does not exist yet (PutObject)")},
        **{g.grade_id: (0, "a later knock-on failure") for g in rest},
    )
    lines = summary.exercise_lines(result, minilab)
    ex1 = next(line for line in lines if line.section == "ex1")
    assert ex1.state == summary.FAILED and ex1.cause.startswith("bucket demo-x does not exist")
    assert ex1.hint == first.hint
    text = summary.text(result, minilab)
    assert f"hint: {first.hint}" in text and "a later knock-on failure" not in text
    page = summary.html_table(result, minilab)
    assert "<details>" in page and "a later knock-on failure" in page  # folded details


class _Page(html.parser.HTMLParser):
    """The tags and the (unescaped) text of an HTML fragment."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def test_the_notebook_shows_the_table_with_notes_and_markup_as_text(minilab):
    ex1 = [g.grade_id for g in minilab.graded_cells if g.section == "ex1"]
    script = "<script>alert('x')</script>"
    result = _result(minilab, **{g: (0, f"{script} went wrong") for g in ex1})
    result.notes = [f"{script} a note", "another note"]
    shown = Shown(result, minilab)
    page = shown._repr_html_()
    parsed = _Page(page)
    assert "script" not in parsed.tags and "<script" not in page
    assert parsed.tags.count("tr") == 1 + len(result.exercises)  # a heading, then each exercise
    assert "table" in parsed.tags and "details" in parsed.tags
    text = "".join(parsed.text)
    assert f"{script} went wrong" in text and f"{script} a note" in text and "another note" in text
    assert summary.total_line(result) in text
    for line in summary.exercise_lines(result, minilab):
        assert line.title in text and line.points in text
    assert repr(shown) == summary.text(
        result, minilab, heading=f"{minilab.name}: your self-check (visible tests and state checks)"
    )

    result.notes = []
    assert "ul class='note'></ul>" not in Shown(result, minilab)._repr_html_()  # no empty list
    rejected = SubmissionResult("me", minilab.name, REJECTED, reason=f"{script} no notebook")
    parsed = _Page(Shown(rejected, minilab)._repr_html_())
    assert "table" not in parsed.tags and "script" not in parsed.tags
    assert f"Not graded: {script} no notebook" in "".join(parsed.text)


def test_the_answer_cells_own_error_comes_first(minilab):
    ex1 = [g.grade_id for g in minilab.graded_cells if g.section == "ex1"]
    result = _result(minilab, **{g: (0, "NameError: x") for g in ex1})
    result.answer_errors = {"ex1": "ValueError: my own mistake"}
    line = next(x for x in summary.exercise_lines(result, minilab) if x.section == "ex1")
    assert line.cause == "ValueError: my own mistake"


def test_aws_errors_read_as_sentences():
    text = (
        "An error occurred (NoSuchBucket) when calling the GetObject operation: "
        "The specified bucket does not exist"
    )
    assert plain.explain_text("ClientError", text) == "the bucket does not exist yet (GetObject)"
    detail = {"BucketName": "me-archive", "Code": "NoSuchBucket"}
    assert (
        plain.explain("NoSuchBucket", "GetObject", "x", detail)
        == "bucket me-archive does not exist yet (GetObject)"
    )
    assert plain.explain_text("ValueError", "bad") == "ValueError: bad"


def test_a_client_error_raised_in_a_test_is_explained_with_its_details():
    import botocore.exceptions

    exc = botocore.exceptions.ClientError(
        {"Error": {"Code": "NoSuchBucket", "Message": "nope", "BucketName": "me-a"}}, "HeadBucket"
    )
    assert plain.explain_exception(exc) == "bucket me-a does not exist yet (HeadBucket)"
    assert plain.explain_exception(ValueError("x")) is None
