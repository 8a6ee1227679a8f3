"""CI runs every lecture notebook and grades every lab's samples on the real emulator.

A lecture fails on any error. A lab's solution must score full marks with no error in any cell,
its blank release 0 with no grader error, and its partial attempt the score in expected.json."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import papermill
import pytest

from grader import ROOT, grade, samples
from grader import labs as lab_index
from grader import notebook as nbu
from grader.config import GradeConfig, load
from grader.pipeline import new_identity
from grader.results import GRADED

LECTURES = sorted((ROOT / "course").rglob("*.ipynb"))
LECTURES = [p for p in LECTURES if ".ipynb_checkpoints" not in p.parts]


def test_there_is_content():
    assert len(LECTURES) >= 20
    assert set(lab_index.available()) == {
        "compute",
        "storage",
        "messaging",
        "serverless",
        "networking",
        "security",
        "databases",
        "operations",
    }


@pytest.mark.parametrize("path", LECTURES, ids=lambda p: str(p.relative_to(ROOT / "course")))
def test_lecture_runs_without_error(path: Path, endpoint_url, tmp_path):
    account, prefix = new_identity()
    papermill.execute_notebook(
        str(path),
        str(tmp_path / path.name),
        parameters={"endpoint_url": endpoint_url, "account_id": account, "prefix": prefix},
        cwd=str(path.parent),
        kernel_name="python3",
        progress_bar=False,
        execution_timeout=300,
    )


VERIFIED = re.compile(
    r"^\*Last verified against current AWS documentation: (\d{4}-\d{2}-\d{2})\.\*$", re.M
)


@pytest.mark.parametrize("path", LECTURES, ids=lambda p: str(p.relative_to(ROOT / "course")))
def test_every_lecture_says_when_its_facts_were_last_verified(path: Path):
    first = next(c for c in nbu.read(path).cells if c.cell_type == "markdown")
    (date,) = VERIFIED.findall(first.source)
    assert dt.date.fromisoformat(date) <= dt.date.today()


LINK = re.compile(r"\]\(((?:\.\./|\./)?[\w./-]+\.ipynb)(?:#([^)\s]+))?\)")


def _anchors(path: Path) -> set[str]:
    """The anchors JupyterLab gives a notebook's headings (the text, spaces as dashes)."""
    return {
        match.group(1).strip().replace(" ", "-")
        for cell in nbu.read(path).cells
        if cell.cell_type == "markdown"
        for match in re.finditer(r"^#{1,6}\s+(.*)$", cell.source, re.M)
    }


def test_links_between_notebooks_reach_a_notebook_and_heading():
    """One home per fact: a lecture links to where a topic is taught; the link must land."""
    found = 0
    for path in LECTURES:
        for cell in nbu.read(path).cells:
            if cell.cell_type != "markdown":
                continue
            for target, anchor in LINK.findall(cell.source):
                found += 1
                linked = (path.parent / target).resolve()
                assert linked.is_file(), f"{path.name} links to {target}, which does not exist"
                assert not anchor or anchor in _anchors(linked), f"{path.name}: {target}#{anchor}"
    assert found >= 10  # the links that replaced the duplicated EBS and edge-compute sections


@pytest.mark.parametrize("name", lab_index.available())
def test_lab_samples_score_as_expected(name, emulator, tmp_path):
    lab = lab_index.find(name)
    release = nbu.read(lab.release)
    expected = samples.write_class(lab, release, tmp_path / "submitted")
    run = grade.main(
        lab=name,
        submissions=tmp_path / "submitted",
        out=tmp_path / "out",
        emulator_config=emulator.config,
        grade_config=load(GradeConfig, "grade", workers=2),
    )
    scores = {r.student: (r.status, r.score) for r in run.results}
    assert scores == {student: (GRADED, want) for student, want in expected.items()}, [
        (r.student, r.notes, [(c.grade_id, c.message) for c in r.cells if not c.passed])
        for r in run.results
    ]
    solution = nbu.read(run.workspace.autograded_path("solution", name))
    errors = [
        (nbu.grade_id(c) or c.source[:60], o.get("ename"), o.get("evalue"))
        for c in solution.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert errors == []


@pytest.mark.parametrize("name", lab_index.available())
def test_each_exercise_earns_points_only_from_its_own_work(name, emulator, tmp_path):
    """The full solution with one exercise left blank scores 0 on that exercise (defaults,
    other exercises' resources and unbacked values earn nothing)."""
    from grader import evidence

    leaks = evidence.main(lab=name, out=tmp_path, workers=2, emulator_config=emulator.config)
    assert [str(leak) for leak in leaks] == []
