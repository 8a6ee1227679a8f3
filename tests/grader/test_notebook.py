"""Reading submitted files: every way a file can fail to be a notebook gets a plain reason."""

from __future__ import annotations

import json

import pytest

from grader import notebook as nbu
from grader.errors import SubmissionError
from tests import factories as f


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (json.dumps([1, 2, 3]).encode(), "not a Jupyter notebook"),
        (json.dumps({"cells": "nope", "nbformat": 4}).encode(), "not a valid Jupyter notebook"),
    ],
)
def test_bad_files_are_explained(tmp_path, content, reason):
    path = tmp_path / "x.ipynb"
    path.write_bytes(content)
    with pytest.raises(SubmissionError, match=reason):
        nbu.read(path)


def test_oversized_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(nbu, "MAX_NOTEBOOK_BYTES", 10)
    path = tmp_path / "big.ipynb"
    f.write(f.minilab(), path)
    with pytest.raises(SubmissionError, match="refused"):
        nbu.read(path)


def test_sections_follow_headings_and_grade_ids():
    nb = f.minilab()
    sections = nbu.sections(nb)
    ids = [nbu.grade_id(c) for c in nb.cells]
    assert sections[ids.index("ex1_state")] == "ex1"
    assert sections[ids.index("kc1_test")] == "kc1"
    assert sections[ids.index("parameters")] is None


def test_hint_is_read_from_the_first_comment():
    cell = f.test("ex1_test_a", "assert True", hint="look at the bucket name")
    assert nbu.hint(cell) == "look at the bucket name"


@pytest.mark.parametrize(
    ("grade_id", "state"),
    [("ex1_state", True), ("ex6_state_b", True), ("ex2_test_statement", False),
     ("ex3_test_state", False), ("ex1_statefulness", False)],
)  # fmt: skip
def test_state_check_cells_are_told_by_their_whole_grade_id(grade_id, state):
    assert nbu.is_state_check(f.state(grade_id, "x")) is state
