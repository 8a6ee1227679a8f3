"""Signed results: what an instructor collects from students' own CI runs is checked for edits,
other keys, other lab versions, and results copied between students."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from grader import signing
from grader.errors import ConfigError
from grader.results import GRADED, CellResult, SubmissionResult

KEY = "k" * 32


def _graded(root, student: str, minilab, score: float = 3.0):
    result = SubmissionResult(
        student, "minilab", GRADED, score=score, max_score=9.0, lab_digest=minilab.digest,
        source_digest="abc123",
        cells=[CellResult("ex1_test", "test", "ex1", score, 9.0, passed=False, message="ä\x1b")],
    )  # fmt: skip
    result.save(root / "results" / f"{student}.json")
    return root


@pytest.fixture
def collected(tmp_path, minilab):
    """Three students' CI workspaces, signed there, collected as collected/<student>/."""
    for student in ("alice", "bob", "carol"):
        workspace = _graded(tmp_path / "ci" / student, student, minilab)
        assert len(signing.sign(root=workspace, key=KEY)) == 1
        shutil.copytree(workspace, tmp_path / "collected" / student)
    return tmp_path / "collected"


def _problems(collected, minilab, key=KEY) -> dict[str, str]:
    verdicts = signing.verify(lab=minilab, paths=[collected], key=key)
    return {v.student: v.problem for v in verdicts}


def test_untouched_signed_results_verify(collected, minilab):
    assert _problems(collected, minilab) == {"alice": "", "bob": "", "carol": ""}
    # a signed result still loads as a result, its signature kept through a save (cloudlabs merge)
    path = collected / "alice" / "results" / "alice.json"
    SubmissionResult.load(path).save(path)
    assert _problems(collected, minilab)["alice"] == ""


def _edit(path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("attack", "problem"),
    [
        (lambda d: d.update(score=9.0), "changed after grading"),
        (lambda d: d["cells"][0].update(points=9.0, passed=True), "changed after grading"),
        (lambda d: d.update(source_digest="other"), "changed after grading"),
        (lambda d: d.pop("signature"), "is not signed"),
        (lambda d: d.update(signature="md5:x:y"), "unknown signature scheme"),
    ],
)
def test_an_edited_result_fails_and_names_its_student(collected, minilab, attack, problem):
    _edit(collected / "bob" / "results" / "bob.json", attack)
    problems = _problems(collected, minilab)
    assert problem in problems["bob"]
    assert problems["alice"] == problems["carol"] == ""


def test_a_result_signed_with_another_key_fails(collected, minilab):
    signing.sign(root=collected / "carol", key="another key of 32 characters....")
    assert _problems(collected, minilab)["carol"] == "signed with another key"


def test_a_result_of_another_student_copied_in_fails(collected, minilab):
    """bob hands in carol's (signed, genuine) result as his own."""
    shutil.rmtree(collected / "bob" / "results")
    (collected / "bob" / "results").mkdir()
    shutil.copy(collected / "carol" / "results" / "carol.json", collected / "bob" / "results")
    problems = _problems(collected, minilab)
    assert "found as 'bob'" in problems["bob"] and problems["alice"] == ""
    # renaming the file does not help: the signed student is carol
    (collected / "bob" / "results" / "carol.json").rename(collected / "bob/results/bob.json")
    assert "a result for 'carol'" in _problems(collected, minilab)["bob"]


def test_a_result_of_another_lab_version_fails(tmp_path, minilab):
    workspace = _graded(tmp_path / "alice", "alice", minilab)
    _edit(workspace / "results" / "alice.json", lambda d: d.update(lab_digest="old"))
    signing.sign(root=workspace, key=KEY)  # genuinely signed, but for the old lab
    (verdict,) = signing.verify(lab=minilab, paths=[workspace], key=KEY)
    assert verdict.problem == "graded with another version of the lab"


def test_two_results_for_one_student_both_fail(collected, minilab):
    shutil.copytree(collected / "alice", collected / "alice-again" / "alice")
    verdicts = signing.verify(lab=minilab, paths=[collected / "alice", collected / "alice-again"],
                              key=KEY)  # fmt: skip
    assert [v.problem for v in verdicts] == ["2 results claim this student"] * 2


def test_broken_files_fail_without_stopping_the_rest(collected, minilab):
    (collected / "bob" / "results" / "bob.json").write_bytes(b"\xff{not json")
    (collected / "carol" / "results" / "carol.json").write_text("[1, 2]")
    problems = _problems(collected, minilab)
    assert problems["bob"].startswith("cannot be read") and problems["carol"] == "is not a result"
    assert problems["alice"] == ""


def test_no_key_or_a_short_key_is_refused(tmp_path, minilab, monkeypatch):
    workspace = _graded(tmp_path / "w", "alice", minilab)
    monkeypatch.delenv("CLOUDLABS_SIGNING_KEY", raising=False)
    with pytest.raises(ConfigError, match="no signing key") as caught:
        signing.sign(root=workspace)
    assert "CLOUDLABS_SIGNING_KEY" in caught.value.fix
    monkeypatch.setenv("CLOUDLABS_SIGNING_KEY", "short")
    with pytest.raises(ConfigError, match="no signing key"):
        signing.verify(lab=minilab, paths=[workspace])


def test_the_commands_sign_and_verify(collected, minilab, tmp_path, monkeypatch):
    from grader.cli import cli

    monkeypatch.setenv("CLOUDLABS_SIGNING_KEY", KEY)
    monkeypatch.setattr("grader.cli.find", lambda name: minilab)
    workspace = _graded(tmp_path / "dave-ci", "dave", minilab)
    runner = CliRunner()
    signed = runner.invoke(cli, ["sign", str(workspace)])
    assert signed.exit_code == 0 and "signed 1 results" in signed.output
    shutil.copytree(workspace, collected / "dave")
    _edit(collected / "bob" / "results" / "bob.json", lambda d: d.update(score=9.0))
    verified = runner.invoke(cli, ["verify-signatures", "minilab", str(collected)])
    assert verified.exit_code == 1
    assert verified.output.strip().endswith("4 results, 3 verified, failed: bob")
    assert "dave" in verified.output and "ok 3/9 (graded)" in verified.output
