"""Restoring tampered submissions (no emulator needed)."""

from __future__ import annotations

import copy

import pytest

from grader import notebook as nbu
from grader.errors import SubmissionError
from grader.restore import restore
from tests import factories as f


def cells_by_id(nb):
    return {nbu.grade_id(c): c for c in nb.cells if nbu.grade_id(c)}


def test_untouched_solution_restores_without_notes(minilab, minilab_release, solved):
    restored = restore(solved, lab=minilab, release=minilab_release)
    assert restored.notes == []
    assert "BEGIN HIDDEN TESTS" in cells_by_id(restored.notebook)["ex1_test_versioning"].source


def test_edited_test_cell_is_restored_and_reported(minilab, minilab_release, solved):
    cells_by_id(solved)["ex1_test_exists"].source = "pass  # trust me"
    restored = restore(solved, lab=minilab, release=minilab_release)
    assert "test cell ex1_test_exists was edited; restored from the lab" in restored.notes
    assert "assert bucket_name in names" in cells_by_id(restored.notebook)["ex1_test_exists"].source


def test_deleted_test_cell_is_restored_and_reported(minilab, minilab_release, solved):
    solved.cells = [c for c in solved.cells if nbu.grade_id(c) != "ex2_test_url"]
    restored = restore(solved, lab=minilab, release=minilab_release)
    assert "test cell ex2_test_url was deleted; restored from the lab" in restored.notes
    assert "ex2_test_url" in cells_by_id(restored.notebook)


def test_deleted_state_check_cell_is_restored(minilab, minilab_release, solved):
    solved.cells = [c for c in solved.cells if nbu.grade_id(c) != "ex1_state"]
    restored = restore(solved, lab=minilab, release=minilab_release)
    assert any("ex1_state was deleted" in n for n in restored.notes)


def test_reordered_cells_are_graded_in_lab_order(minilab, minilab_release, solved):
    solved.cells.reverse()
    restored = restore(solved, lab=minilab, release=minilab_release)
    assert "cells were reordered; they were graded in the lab's order" in restored.notes
    order = [nbu.grade_id(c) for c in restored.notebook.cells if nbu.grade_id(c)]
    assert order == [nbu.grade_id(c) for c in minilab.notebook.cells if nbu.grade_id(c)]


def test_deleted_answer_is_graded_as_unanswered(minilab, minilab_release, solved):
    solved.cells = [c for c in solved.cells if nbu.grade_id(c) != "ex2_solution"]
    restored = restore(solved, lab=minilab, release=minilab_release)
    assert "answer cell ex2_solution was deleted; graded as unanswered" in restored.notes
    assert "NotImplementedError" in cells_by_id(restored.notebook)["ex2_solution"].source


def test_extra_student_cells_follow_their_answer(minilab, minilab_release, solved):
    index = next(i for i, c in enumerate(solved.cells) if nbu.grade_id(c) == "ex1_solution")
    solved.cells.insert(index + 1, f.code("helper = 42"))
    restored = restore(solved, lab=minilab, release=minilab_release).notebook
    position = next(i for i, c in enumerate(restored.cells) if nbu.grade_id(c) == "ex1_solution")
    assert restored.cells[position + 1].source == "helper = 42"
    assert "nbgrader" not in restored.cells[position + 1].metadata


def test_student_parameters_cannot_override_injected_ones(minilab, minilab_release, solved):
    hijack = f.code('endpoint_url = "http://evil"\nprefix = "victim"', tags=["parameters"])
    solved.cells.insert(3, hijack)
    solved.cells.insert(4, f.code(f.PARAMETERS))  # an untagged copy of the defaults
    restored = restore(solved, lab=minilab, release=minilab_release).notebook
    assert not any("evil" in c.source or (c.source == f.PARAMETERS and not nbu.grade_id(c))
                   for c in restored.cells)  # fmt: skip


def test_claimed_metadata_cannot_turn_a_cell_into_a_test(minilab, minilab_release, solved):
    fake = copy.deepcopy(cells_by_id(solved)["kc1_test"])
    fake.source = "assert True"
    solved.cells.append(fake)
    restored = restore(solved, lab=minilab, release=minilab_release)
    assert "cell kc1_test appears twice; the first copy was graded" in restored.notes


def test_notebook_of_another_lab_is_rejected(minilab, minilab_release):
    other = f.notebook(f.markdown("# another lab"), f.solution("ex1_solution_other", "x = 1"))
    with pytest.raises(SubmissionError, match="not the minilab lab"):
        restore(other, lab=minilab, release=minilab_release)


def test_notebook_of_another_real_lab_is_rejected(minilab, minilab_release):
    """Labs share grade ids; the other lab's test cells give it away."""
    from grader.labs import find

    storage = find("storage")
    other = storage.release if storage.release.exists() else storage.source
    with pytest.raises(SubmissionError, match="not the minilab lab"):
        restore(nbu.read(other), lab=minilab, release=minilab_release)


def test_a_few_edited_tests_do_not_make_it_another_lab(minilab, minilab_release, solved):
    cells_by_id(solved)["ex1_test_exists"].source = "pass"
    restored = restore(solved, lab=minilab, release=minilab_release)
    assert any("ex1_test_exists was edited" in n for n in restored.notes)
