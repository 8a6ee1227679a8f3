"""The command line: thin over the API, with exit codes (grader.errors.ExitCode) that tell usage
problems from infrastructure failures. ``validate`` and ``release --check`` run here on the small
minilab; over the real labs, ``make test`` runs them once, as commands."""

from __future__ import annotations

import functools

import nbformat
import pytest
from click.testing import CliRunner

from grader import release, validate
from grader.cli import cli
from grader.errors import ExitCode
from tests import factories as f
from tests.conftest import free_port

COMMANDS = [
    "check", "demo", "down", "exam", "grade", "hub", "lab", "lms", "logs", "merge", "release", "sign", "status", "up",
    "validate", "verify-signatures",
]  # fmt: skip


@pytest.fixture
def no_emulator(tmp_path, monkeypatch):
    monkeypatch.setenv("CLOUDLABS_EMULATOR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLOUDLABS_EMULATOR_PORT", str(free_port()))


@pytest.fixture
def small_labs(tmp_path, monkeypatch):
    """solutions/ and labs/ with the minilab alone, for the commands that default to the real
    ones; the minilab has 2 exercises and samples of its own."""
    source, released, samples = tmp_path / "solutions", tmp_path / "labs", tmp_path / "samples"
    f.write(f.minilab(), source / "minilab" / "minilab.ipynb")
    (source / "minilab" / "checks.py").write_text(f.MINILAB_CHECKS)
    (samples / "minilab").mkdir(parents=True)
    (samples / "minilab" / "expected.json").write_text('{"solution": 9, "blank": 0}')
    monkeypatch.setattr(
        validate,
        "main",
        functools.partial(
            validate.main, source_dir=source, course_dir=tmp_path / "course", min_exercises=2
        ),
    )
    monkeypatch.setattr(
        validate, "problems", functools.partial(validate.problems, samples_dir=samples)
    )
    monkeypatch.setattr(
        release,
        "main",
        functools.partial(
            release.main, source_dir=source, release_dir=released, bank_dir=tmp_path / "bank"
        ),
    )
    return source


def commands_in_help(text: str) -> list[str]:
    """The command names of the ``Commands:`` section of click's help."""
    section = text.split("\nCommands:\n", 1)[1]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ")]


def test_help_lists_every_command():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == ExitCode.OK
    assert commands_in_help(result.output) == COMMANDS == sorted(cli.commands)


def test_bad_syntax_is_a_usage_error():
    runner = CliRunner()
    assert runner.invoke(cli, ["grade"]).exit_code == ExitCode.USAGE  # missing arguments
    assert runner.invoke(cli, ["status", "--colour"]).exit_code == ExitCode.USAGE
    assert runner.invoke(cli, ["astrology"]).exit_code == ExitCode.USAGE


def test_status_without_emulator_says_how_to_start_it(no_emulator):
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == ExitCode.PROBLEM and "cloudlabs up" in result.output


def test_check_without_emulator_is_an_infrastructure_failure(no_emulator):
    result = CliRunner().invoke(cli, ["check", "storage"])
    assert result.exit_code == ExitCode.INFRASTRUCTURE
    assert "start it with `cloudlabs up`" in result.output


def test_grade_of_missing_submissions_is_a_usage_problem(no_emulator, tmp_path):
    result = CliRunner().invoke(
        cli, ["grade", "storage", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == ExitCode.PROBLEM and "no submissions at" in result.output
    assert not (tmp_path / "o").exists()  # found before any workspace is made


def test_grade_of_unknown_lab_lists_the_labs(no_emulator, tmp_path):
    result = CliRunner().invoke(cli, ["grade", "astrology", str(tmp_path)])
    assert result.exit_code == ExitCode.PROBLEM and "labs: compute, " in result.output


def test_bad_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv("CLOUDLABS_EMULATOR_PORT", "high")
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == ExitCode.PROBLEM
    assert "CLOUDLABS_EMULATOR_PORT='high'" in result.output


def test_validate_passes_a_lab_that_follows_the_contract_and_lists_what_breaks_it(small_labs):
    runner = CliRunner()
    result = runner.invoke(cli, ["validate"])
    assert (result.exit_code, result.output.splitlines()) == (ExitCode.OK, ["minilab: ok"])
    nb = f.minilab()
    nb.cells[1].metadata["tags"] = []  # no parameters tag
    f.write(nb, small_labs / "minilab" / "minilab.ipynb")
    result = runner.invoke(cli, ["validate", "--lab", "minilab"])
    assert result.exit_code == ExitCode.PROBLEM
    assert result.output.splitlines() == [
        "minilab: 1 problem",
        "  - the first code cell must be tagged 'parameters'",
    ]


def test_release_then_release_check_fresh_then_stale(small_labs):
    runner = CliRunner()
    result = runner.invoke(cli, ["release", "--check"])  # nothing released yet
    assert result.exit_code == ExitCode.PROBLEM
    assert result.stderr.splitlines() == [
        "the release is stale for: minilab — run `make release` and commit labs/ and course/bank/"
    ]
    result = runner.invoke(cli, ["release"])
    assert (result.exit_code, result.output.splitlines()) == (ExitCode.OK, ["released: minilab"])
    result = runner.invoke(cli, ["release", "--check"])
    assert (result.exit_code, result.output) == (ExitCode.OK, "released: nothing changed\n")
    path = small_labs / "minilab" / "minilab.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    nb.cells[0].source += "\nA new sentence."
    nbformat.write(nb, str(path))
    assert runner.invoke(cli, ["release", "--check"]).exit_code == ExitCode.PROBLEM


@pytest.mark.parametrize("bad", ["4/3", "0/2", "two/3"])
def test_a_shard_that_does_not_exist_is_a_usage_error(bad, tmp_path):
    result = CliRunner().invoke(cli, ["grade", "storage", str(tmp_path), "--shard", bad])
    assert result.exit_code == ExitCode.USAGE
    assert "--shard" in result.output and "K/N" in result.output
    assert not (tmp_path / "cloudlabs-grades").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--due", "next friday"], "due date 'next friday' is not a time"),
        (["--due", "2026-12-01T12:00Z", "--penalty-per-day", "-1"], "cannot be negative"),
        (["--max-penalty", "120"], "from 0 to 100"),
    ],
)
def test_an_impossible_late_policy_stops_before_grading(no_emulator, tmp_path, options, message):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["grade", "storage", str(tmp_path), "--out", str(out), *options]
    )
    assert result.exit_code == ExitCode.PROBLEM
    assert message in result.output
    assert not out.exists()  # refused before any workspace is made
