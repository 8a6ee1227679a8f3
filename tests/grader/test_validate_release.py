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


def student_view(source: str) -> str:
    """``source`` as nbgrader releases it: solutions replaced by its stub, hidden tests removed."""
    if "### BEGIN " not in source:
        return source  # untouched, to the last newline
    out, skipping = [], None
    for line in source.splitlines():
        if skipping:
            skipping = None if line.strip() == f"### END {skipping}" else skipping
        elif line.strip() in {"### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS"}:
            skipping = line.strip().removeprefix("### BEGIN ")
            if skipping == "SOLUTION":
                out += ["# YOUR CODE HERE", "raise NotImplementedError()"]
        else:
            out.append(line)
    return "\n".join(out)


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
    problems = validate.problems(find("minilab", source_dir=lab_dir(tmp_path, nb)), min_exercises=8,
                                 samples_dir=tmp_path / "samples")  # fmt: skip
    assert problems == [
        "the first code cell must be tagged 'parameters'",
        "ex1_test_exists: the first line must be '# Hint: ...'",
        "test cell ex1_test_exists: line 1: assert without a message for the student",
        "ex2_state: a state-check cell holds only comments (the check is in checks.py)",
        "2 exercises; a lab has at least 8",
        "samples/minilab/expected.json is missing",
    ]


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
    assert problems == ["samples/minilab/expected.json is missing"]  # and nothing else


def test_state_checks_and_cells_must_match(tmp_path):
    checks = f.MINILAB_CHECKS.replace('@state_check("ex2_state")', '@state_check("ex9_state")')
    assert checks != f.MINILAB_CHECKS
    problems = validate.problems(find("minilab", source_dir=lab_dir(tmp_path, f.minilab(), checks)),
                                 min_exercises=1)  # fmt: skip
    assert sorted(problems) == sorted([
        "ex2_state: no @state_check in checks.py",
        "checks.py: ex9_state has no state-check cell in the notebook",
        "samples/minilab/expected.json is missing",
    ])  # fmt: skip


def test_release_is_generated_then_reported_fresh_then_stale(tmp_path):
    source = lab_dir(tmp_path, f.minilab())
    released = tmp_path / "labs"
    assert release.main(source_dir=source, release_dir=released) == ["minilab"]
    files = sorted(p.name for p in (released / "minilab").iterdir())
    assert files == ["minilab.ipynb"]  # checks.py is never released
    out = nbformat.read(str(released / "minilab" / "minilab.ipynb"), as_version=4)
    assert [c.source for c in out.cells] == [student_view(c.source) for c in f.minilab().cells]
    assert release.main(source_dir=source, release_dir=released, check=True) == []
    nb = nbformat.read(str(source / "minilab" / "minilab.ipynb"), as_version=4)
    nb.cells[0].source += "\nA new sentence."
    nbformat.write(nb, str(source / "minilab" / "minilab.ipynb"))
    assert release.main(source_dir=source, release_dir=released, check=True) == ["minilab"]
    shutil.rmtree(released)


def _lecture(path, letters: str) -> None:  # ids t-<folder>-<n>
    """A lecture notebook with one knowledge check per letter of ``letters`` (its answer)."""
    from grader.quiz import digest

    cells = [f.markdown("# A lecture")]
    for n, letter in enumerate(letters, start=1):
        cells.append(
            f.markdown(f"**{n}.** Which?\n\n- **A.** a\n- **B.** b\n- **C.** c\n- **D.** d")
        )
        qid = f"t-{path.parent.name}-{n}"
        cells.append(f.code(f'answer = None\ncheck("{qid}", answer, "{digest(qid, letter)}")'))
    f.write(f.notebook(*cells), path)


def test_validate_counts_the_letters_of_the_lectures_knowledge_checks(tmp_path):
    source = lab_dir(tmp_path, f.minilab())
    course = tmp_path / "course"
    _lecture(course / "one" / "01.ipynb", "ABCD")
    _lecture(course / "two" / "01.ipynb", "BBDA")
    found = validate.main(source_dir=source, course_dir=course)["knowledge checks"]
    assert found == [
        "the lectures' knowledge checks: B is the answer of 3 of 8 single-answer items "
        "(at most 30%); move the right option elsewhere",
        "the knowledge checks of lectures and labs: B is the answer of 4 of 9 single-answer "
        "items (at most 30%); move the right option elsewhere",  # the minilab's answer is B
    ]
    _lecture(course / "one" / "01.ipynb", "ABCDABCD")
    _lecture(course / "two" / "01.ipynb", "ABCDACD")
    assert validate.main(source_dir=source, course_dir=course)["knowledge checks"] == []


def test_the_bank_is_validated_and_released_with_the_labs(tmp_path):
    source = lab_dir(tmp_path, f.minilab())
    items = [f.bank_item("storage", n + 1, answer="ABCD"[n % 4]) for n in range(4)]
    f.write_bank(source / "bank", "storage", items)
    course = tmp_path / "course"
    found = validate.main(source_dir=source, course_dir=course)
    assert found["bank/storage.yaml"] == [] and found["bank"] == []
    bank_dir = tmp_path / "course-bank"
    kwargs = {"source_dir": source, "release_dir": tmp_path / "labs", "bank_dir": bank_dir}
    assert release.main(**kwargs) == ["minilab", "bank"]
    assert (bank_dir / "storage.json").exists()
    assert release.main(**kwargs, check=True) == []
    items[0]["stem"] += " Now with more words."
    f.write_bank(source / "bank", "storage", items)
    assert release.main(**kwargs, check=True) == ["bank"]
    assert release.main(labs=["minilab"], **kwargs, check=True) == []  # a lab alone: no bank
