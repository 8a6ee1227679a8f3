"""Lecture knowledge checks compare digests of normalized answers."""

from __future__ import annotations

from grader.quiz import check, digest, main


def test_answers_normalize_case_space_and_numbers():
    assert digest("q", " b ") == digest("q", "B")
    assert digest("q", 5) == digest("q", "5.0") == digest("q", "5")
    assert digest("q", "1,000") == digest("q", 1000)


def test_digest_is_salted_by_question():
    assert digest("q1", "A") != digest("q2", "A")


def test_check_reports_without_raising(capsys):
    right = digest("storage-01-1", "C")
    assert check("storage-01-1", "c", right) is True
    assert check("storage-01-1", "D", right) is False
    assert check("storage-01-1", None, right) is False
    out = capsys.readouterr().out
    assert "correct" in out and "not quite" in out and "not answered yet" in out


def test_cli_prints_digest():
    from click.testing import CliRunner

    done = CliRunner().invoke(main, ["digest", "x", "A"])
    assert done.exit_code == 0 and done.output.strip() == digest("x", "A")
    assert CliRunner().invoke(main, ["nonsense"]).exit_code == 2  # click: no such command
    assert CliRunner().invoke(main, ["digest", "x"]).exit_code == 2  # click: missing ANSWER
    extra = CliRunner().invoke(main, ["digest", "x", "A", "B"])
    assert extra.exit_code == 2 and not extra.stdout
    negative = CliRunner().invoke(main, ["digest", "x", "-5"])  # a numeric answer, as before
    assert negative.exit_code == 0 and negative.output.strip() == digest("x", -5)


def test_the_documented_command_line_prints_the_digest():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "grader.quiz", "digest", "queues-sqs-1", "B"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == digest("queues-sqs-1", "B")
