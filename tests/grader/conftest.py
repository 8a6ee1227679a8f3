"""Fixtures for grading tests: the minilab (tests/grader/files) and a class-grading helper."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader import grade, nbgrader_glue
from grader import notebook as nbu
from grader.config import GradeConfig, load
from grader.labs import find
from tests import factories as f

FILES = Path(__file__).parent / "files"


@pytest.fixture(scope="session")
def minilab():
    return find("minilab", source_dir=FILES, release_dir=FILES / "release")


@pytest.fixture(scope="session")
def minilab_release(minilab, tmp_path_factory):
    db = tmp_path_factory.mktemp("release-db") / "gb.db"
    path = nbgrader_glue.release_to_temp("minilab", source_dir=FILES, db_url=f"sqlite:///{db}")
    return nbu.read(path / "minilab.ipynb")


@pytest.fixture
def solved(minilab, minilab_release):
    from grader.samples import solution_submission

    return solution_submission(minilab, minilab_release)


def write_class(directory: Path, notebooks: dict) -> Path:
    """Write {student: notebook or raw text} as directory/<student>.ipynb."""
    directory.mkdir(parents=True, exist_ok=True)
    for student, nb in notebooks.items():
        path = directory / f"{student}.ipynb"
        if isinstance(nb, str | bytes):
            path.write_bytes(nb.encode() if isinstance(nb, str) else nb)
        else:
            f.write(nb, path)
    return directory


def write_collected(directory: Path, notebooks: dict, handed_in: dict[str, str]) -> Path:
    """nbgrader's collected layout: directory/<student>/minilab/minilab.ipynb (a notebook or raw
    text), with the exchange's timestamp.txt beside it when ``handed_in`` has the student."""
    for student, nb in notebooks.items():
        folder = directory / student / "minilab"
        write_class(folder, {"minilab": nb})
        if student in handed_in:
            (folder / "timestamp.txt").write_text(handed_in[student])
    return directory


@pytest.fixture
def grade_class(tmp_path, emulator):
    """Grade {student: notebook} for the minilab; returns {student: SubmissionResult} and the run."""

    def run(notebooks: dict, **config):
        submissions = write_class(tmp_path / "submitted", notebooks)
        settings = {"cell_timeout": 20.0, "notebook_timeout": 120.0, **config}
        result = grade.main(
            lab="minilab",
            submissions=submissions,
            out=tmp_path / "out",
            source_dir=FILES,
            release_dir=FILES / "release",
            emulator_config=emulator.config,
            grade_config=load(GradeConfig, "grade", **settings),
            force=True,
        )
        return {r.student: r for r in result.results}, result

    return run
