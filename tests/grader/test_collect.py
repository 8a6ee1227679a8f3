"""Finding submissions in the layouts instructors hand us."""

from __future__ import annotations

import zipfile

import nbformat

from grader.collect import collect
from tests import factories as f


def test_nbgrader_layout(tmp_path):
    for student in ("alice", "bob"):
        f.write(f.minilab(), tmp_path / student / "minilab" / "minilab.ipynb")
    found = collect(tmp_path, lab="minilab")
    assert [(s.student, s.path.name) for s in found] == [
        ("alice", "minilab.ipynb"),
        ("bob", "minilab.ipynb"),
    ]


def test_classroom_folder_strips_the_lab_name(tmp_path):
    f.write(f.minilab(), tmp_path / "minilab-carol.ipynb")
    f.write(f.minilab(), tmp_path / "dave.ipynb")
    assert [s.student for s in collect(tmp_path, lab="minilab")] == ["carol", "dave"]


def test_invalid_student_id_is_reported_not_graded(tmp_path):
    f.write(f.minilab(), tmp_path / "rm -rf $HOME.ipynb")
    (submission,) = collect(tmp_path, lab="minilab")
    assert submission.path is None and "valid student id" in submission.problem


def test_folder_without_notebook_is_reported(tmp_path):
    (tmp_path / "erin").mkdir()
    (submission,) = collect(tmp_path, lab="minilab")
    assert submission.student == "erin" and "no notebook" in submission.problem


def test_zip_is_unpacked_without_path_traversal(tmp_path):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("submissions/frank.ipynb", nbformat.writes(f.minilab()))
        zf.writestr("submissions/gina.ipynb", nbformat.writes(f.minilab()))
        zf.writestr("../escape.ipynb", "{}")
    found = collect(archive, lab="minilab", unpack_dir=tmp_path / "unpacked")
    assert [s.student for s in found] == ["frank", "gina"]
    assert not (tmp_path / "escape.ipynb").exists()
