"""The lab contract validator and the release staleness check."""

from __future__ import annotations

import shutil

import nbformat

from grader import release, validate
from grader.labs import find
from tests import factories as f
from tests.grader.conftest import FILES


def lab_dir(tmp_path, nb, checks=f.MINILAB_CHECKS):
    source = tmp_path / "solutions"
    f.write(nb, source / "minilab" / "minilab.ipynb")
    (source / "minilab" / "checks.py").write_text(checks)
    return source


def test_minilab_follows_the_contract(tmp_path):
    samples = tmp_path / "samples" / "minilab"
    samples.mkdir(parents=True)
    (samples / "expected.json").write_text('{"solution": 9, "blank": 0}')
    lab = find("minilab", source_dir=FILES)
    assert validate.problems(lab, min_exercises=2, samples_dir=tmp_path / "samples") == []


def test_contract_breaches_are_named(tmp_path):
    nb = f.minilab()
    nb.cells[1].metadata["tags"] = []  # no parameters tag
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "ex2_state":
            cell.source = "# Hint: x\nprint('not only comments')"
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "ex1_test_exists":
            cell.source = "assert True"
    problems = validate.problems(find("minilab", source_dir=lab_dir(tmp_path, nb)), min_exercises=8)
    text = "\n".join(problems)
    assert "first code cell must be tagged 'parameters'" in text
    assert "ex2_state: a state-check cell holds only comments" in text
    assert "ex1_test_exists: the first line must be '# Hint: ...'" in text
    assert "2 exercises; a lab has at least 8" in text
    assert "expected.json is missing" in text


def test_every_assert_of_a_test_cell_needs_a_message(tmp_path):
    nb = f.minilab()
    bare = {
        "ex1_test_exists": "names = []\nassert bucket_name in names\n",  # visible
        "ex1_test_versioning": "### BEGIN HIDDEN TESTS\nassert True, 'ok'\n"
        "for _ in range(1):\n    assert bucket_name\n### END HIDDEN TESTS\n",  # hidden, nested
    }
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in bare:
            cell.source = f"# Hint: x\n{bare[gid]}"
    problems = validate.problems(find("minilab", source_dir=lab_dir(tmp_path, nb)), min_exercises=1)
    found = [p for p in problems if "assert without a message" in p]
    assert found == [
        "test cell ex1_test_exists: line 3: assert without a message for the student",
        "test cell ex1_test_versioning: line 5: assert without a message for the student",
    ]


def test_asserts_with_messages_are_not_reported(tmp_path):
    problems = validate.problems(find("minilab", source_dir=lab_dir(tmp_path, f.minilab())),
                                 min_exercises=1)  # fmt: skip
    assert not [p for p in problems if "assert without a message" in p]


def test_state_checks_and_cells_must_match(tmp_path):
    checks = f.MINILAB_CHECKS.replace('@state_check("ex2_state")', '@state_check("ex9_state")')
    problems = validate.problems(find("minilab", source_dir=lab_dir(tmp_path, f.minilab(), checks)),
                                 min_exercises=1)  # fmt: skip
    assert "ex2_state: no @state_check in checks.py" in problems
    assert "checks.py: ex9_state has no state-check cell in the notebook" in problems


def test_release_is_generated_then_reported_fresh_then_stale(tmp_path):
    source = lab_dir(tmp_path, f.minilab())
    released = tmp_path / "labs"
    assert release.main(source_dir=source, release_dir=released) == ["minilab"]
    notebook = released / "minilab" / "minilab.ipynb"
    text = notebook.read_text()
    assert "BEGIN SOLUTION" not in text and "HIDDEN" not in text
    assert not (released / "minilab" / "checks.py").exists()
    assert release.main(source_dir=source, release_dir=released, check=True) == []
    nb = nbformat.read(str(source / "minilab" / "minilab.ipynb"), as_version=4)
    nb.cells[0].source += "\nA new sentence."
    nbformat.write(nb, str(source / "minilab" / "minilab.ipynb"))
    assert release.main(source_dir=source, release_dir=released, check=True) == ["minilab"]
    shutil.rmtree(released)
