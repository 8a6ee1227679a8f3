"""The reference tables in the docs are generated from the code, and say what the code does."""

from __future__ import annotations

import pytest

from grader import reference
from grader.config import GradeConfig
from grader.errors import EXIT_CODES, CloudlabsError, EmulatorError, ExitCode, SetupError


def test_the_committed_docs_match_the_code():
    assert reference.stale() == [], "run: .venv/bin/python -m grader.reference --write"


def test_every_document_with_a_table_is_checked():
    names = {name for path in reference.DOCUMENTS for name in reference.TABLES
             if f"<!-- generated: {name} -->" in path.read_text()}  # fmt: skip
    assert names == set(reference.TABLES)


def test_a_stale_table_is_rewritten_and_an_unknown_one_refused():
    text = "before\n<!-- generated: config-grade -->\n| old |\n<!-- end generated -->\nafter\n"
    rendered = reference.render(text)
    assert "| old |" not in rendered and rendered.startswith("before\n")
    assert "`CLOUDLABS_GRADE_CELL_TIMEOUT` | `60.0` |" in rendered
    assert rendered.endswith("<!-- end generated -->\nafter\n")
    rows = [line for line in rendered.splitlines() if line.startswith("| `CLOUDLABS_GRADE_")]
    assert len(rows) == len(GradeConfig.__dataclass_fields__)
    with pytest.raises(KeyError):
        reference.render("<!-- generated: nothing-like-it -->\n<!-- end generated -->")


def test_every_exit_code_is_documented_and_errors_use_them():
    assert set(EXIT_CODES) == set(ExitCode)
    assert CloudlabsError("x").exit_code == ExitCode.PROBLEM
    assert EmulatorError("x").exit_code == SetupError("x").exit_code == ExitCode.INFRASTRUCTURE
