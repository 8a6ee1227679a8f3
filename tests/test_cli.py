"""The command line: thin over the API, with exit codes that tell usage problems from
infrastructure failures."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from grader.cli import cli
from grader.errors import ExitCode
from tests.conftest import free_port


@pytest.fixture
def no_emulator(tmp_path, monkeypatch):
    monkeypatch.setenv("CLOUDLABS_EMULATOR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLOUDLABS_EMULATOR_PORT", str(free_port()))


def test_help_lists_every_command():
    result = CliRunner().invoke(cli, ["--help"])
    for command in (
        "up",
        "down",
        "status",
        "logs",
        "lab",
        "check",
        "grade",
        "release",
        "validate",
        "demo",
    ):
        assert f"  {command} " in result.output


def test_status_without_emulator_says_how_to_start_it(no_emulator):
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 1 and "cloudlabs up" in result.output


def test_check_without_emulator_is_an_infrastructure_failure(no_emulator):
    result = CliRunner().invoke(cli, ["check", "storage"])
    assert result.exit_code == 3
    assert "start it with `cloudlabs up`" in result.output


def test_grade_of_missing_submissions_is_a_usage_problem(no_emulator, tmp_path):
    result = CliRunner().invoke(
        cli, ["grade", "storage", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == ExitCode.PROBLEM and "no submissions at" in result.output
    assert not (tmp_path / "o").exists()  # found before any workspace is made


def test_grade_of_unknown_lab_lists_the_labs(no_emulator, tmp_path):
    result = CliRunner().invoke(cli, ["grade", "astrology", str(tmp_path)])
    assert result.exit_code == 1 and "labs: compute, messaging" in result.output


def test_bad_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv("CLOUDLABS_EMULATOR_PORT", "high")
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 1 and "CLOUDLABS_EMULATOR_PORT='high'" in result.output
