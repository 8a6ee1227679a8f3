"""The reference tables in the docs are generated from the code (grader.reference), and say what
the code does: the settings grader.config reads, the exit codes the CLI uses, its commands."""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from grader import ROOT, reference
from grader.cli import cli
from grader.config import load
from grader.errors import (
    EXIT_CODES,
    CloudlabsError,
    ConfigError,
    EmulatorError,
    ExitCode,
    LabError,
    SetupError,
    SubmissionError,
)


@pytest.fixture(autouse=True)
def no_settings(monkeypatch):
    """Defaults as the docs show them: no CLOUDLABS_* variable of the machine running the tests."""
    prefixes = tuple(f"CLOUDLABS_{section.upper()}_" for section in reference.SECTIONS)
    for name in [name for name in os.environ if name.startswith(prefixes)]:
        monkeypatch.delenv(name)


def committed(name: str) -> list[dict[str, str]]:
    """The rows of the committed table ``name`` (it is in exactly one document, once)."""
    (found,) = [block for path in reference.DOCUMENTS
                for block in reference.blocks(path.read_text()).get(name, [])]  # fmt: skip
    return reference.parse_table(found)


def unquote(cell: str) -> str:
    return cell.removeprefix("`").removesuffix("`")


def test_the_committed_docs_match_the_code():
    assert reference.stale() == [], "run: .venv/bin/python -m grader.reference --write"


def test_every_table_is_in_the_docs_exactly_once():
    counts = {name: 0 for name in reference.TABLES}
    for path in reference.DOCUMENTS:
        for name, found in reference.blocks(path.read_text()).items():
            assert name in counts, f"{path.name}: no generated table called {name!r}"
            counts[name] += len(found)
    assert counts == {name: 1 for name in reference.TABLES}


@pytest.mark.parametrize("section", reference.SECTIONS)
def test_the_settings_table_is_what_load_reads(section, monkeypatch):
    cls = reference.SECTIONS[section]
    rows = committed(f"config-{section}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    assert [unquote(r["Field"]) for r in rows] == list(fields)
    defaults = load(cls, section)
    hints = typing.get_type_hints(cls)
    for row in rows:
        name, env = unquote(row["Field"]), unquote(row["Environment variable"])
        field = fields[name]
        assert row["Meaning"] == field.metadata["doc"]
        if field.metadata.get("shown"):  # a default that depends on the machine, said in words
            assert row["Default"] == field.metadata["shown"]
        elif row["Default"] == "(empty)":
            assert getattr(defaults, name) == ""
        else:
            shown = unquote(row["Default"]).replace("<checkout>", str(ROOT))
            assert hints[name](shown) == getattr(defaults, name)
        # the documented variable is the one load() reads, with the field's type
        value = {int: "7", float: "7.5", str: "x", Path: "/elsewhere"}[hints[name]]
        monkeypatch.setenv(env, value)
        assert getattr(load(cls, section), name) == hints[name](value)
        monkeypatch.delenv(env)


def test_no_document_names_a_setting_that_does_not_exist():
    known = {unquote(row["Environment variable"])
             for section in reference.SECTIONS for row in committed(f"config-{section}")}  # fmt: skip
    prefixes = "|".join(section.upper() for section in reference.SECTIONS)
    pattern = re.compile(rf"\bCLOUDLABS_(?:{prefixes})_[A-Z][A-Z0-9_]*")
    named = {}
    for path in [*reference.DOCUMENTS, *sorted((ROOT / "docs").glob("*.yml"))]:
        for name in pattern.findall(path.read_text()):
            named.setdefault(name, path.name)
    assert {name: doc for name, doc in named.items() if name not in known} == {}


def test_the_exit_code_table_is_the_exit_codes():
    rows = committed("exit-codes")
    assert [(int(r["Code"]), unquote(r["`ExitCode`"])) for r in rows] == [
        (int(code), code.name) for code in ExitCode
    ]
    assert [(r["Meaning"], r["What to do"]) for r in rows] == [EXIT_CODES[c] for c in ExitCode]
    assert set(EXIT_CODES) == set(ExitCode)


def test_errors_and_click_use_the_exit_codes():
    assert ExitCode.OK == 0
    for error in (CloudlabsError, ConfigError, LabError, SubmissionError):
        assert error("x").exit_code == ExitCode.PROBLEM
    for error in (EmulatorError, SetupError):
        assert error("x").exit_code == ExitCode.INFRASTRUCTURE
    assert click.UsageError("x").exit_code == ExitCode.USAGE


def test_the_command_table_is_every_command_with_its_help():
    rows = committed("commands")
    assert [unquote(r["Command"]) for r in rows] == [f"cloudlabs {n}" for n in sorted(cli.commands)]
    for row in rows:
        command = cli.commands[unquote(row["Command"]).removeprefix("cloudlabs ")]
        assert row["What it does"] == command.help.strip().splitlines()[0]


STALE = "before\n<!-- generated: config-grade -->\n| old |\n<!-- end generated -->\nafter\n"


def test_a_stale_table_is_rewritten_in_place(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(STALE)
    assert reference.stale([doc]) == [doc]
    assert reference.write([doc]) == [doc]
    text = doc.read_text()
    assert text.startswith("before\n<!-- generated: config-grade -->\n")
    assert text.endswith("<!-- end generated -->\nafter\n")
    (block,) = reference.blocks(text)["config-grade"]
    assert [unquote(r["Field"]) for r in reference.parse_table(block)] == [
        f.name for f in dataclasses.fields(reference.SECTIONS["grade"])
    ]
    assert reference.stale([doc]) == [] and reference.write([doc]) == []


def test_the_command_line_checks_then_writes(tmp_path, monkeypatch):
    doc = tmp_path / "doc.md"
    doc.write_text(STALE)
    monkeypatch.setattr(reference, "DOCUMENTS", [doc])
    runner = CliRunner()
    for args in ([], ["--check"]):
        result = runner.invoke(reference.main, args)
        assert result.exit_code == ExitCode.PROBLEM and doc.read_text() == STALE
    assert runner.invoke(reference.main, ["--write", "--check"]).exit_code == ExitCode.USAGE
    assert runner.invoke(reference.main, ["--write"]).exit_code == ExitCode.OK
    assert doc.read_text() == reference.render(STALE) != STALE
    assert runner.invoke(reference.main, ["--check"]).exit_code == ExitCode.OK


def test_an_unknown_table_is_refused():
    with pytest.raises(KeyError, match="nothing-like-it"):
        reference.render("<!-- generated: nothing-like-it -->\n<!-- end generated -->")
