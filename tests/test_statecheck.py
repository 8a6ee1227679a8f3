"""State checks: registration, outcomes and milestone partial credit."""

from __future__ import annotations

import pytest

from grader.statecheck import load_checks, run_check


def test_outcomes_map_to_fractions():
    assert run_check("a", lambda aws, p: None, aws=None, prefix="p").fraction == 1.0
    assert run_check("a", lambda aws, p: 0.25, aws=None, prefix="p").fraction == 0.25
    assert run_check("a", lambda aws, p: False, aws=None, prefix="p").fraction == 0.0


def test_assertion_message_is_the_reason():
    def check(aws, prefix):
        raise AssertionError("no bucket named p-archive")

    result = run_check("a", check, aws=None, prefix="p")
    assert result.fraction == 0 and result.message == "no bucket named p-archive"


def test_milestones_keep_partial_credit():
    def check(aws, prefix):
        yield 0.5
        raise AssertionError("the snapshot is missing")

    result = run_check("a", check, aws=None, prefix="p")
    assert result.fraction == 0.5 and result.message == "the snapshot is missing"

    def complete(aws, prefix):
        yield 0.3

    assert run_check("a", complete, aws=None, prefix="p").fraction == 1.0


def test_any_error_is_a_one_line_failure():
    result = run_check("a", lambda aws, p: {}["missing"], aws=None, prefix="p")
    assert result.fraction == 0 and result.message == "KeyError: 'missing'"


def test_load_refuses_duplicate_registrations(tmp_path):
    path = tmp_path / "checks.py"
    path.write_text(
        "from grader.statecheck import state_check\n"
        "@state_check('ex1_state')\ndef a(aws, prefix): pass\n"
        "@state_check('ex1_state')\ndef b(aws, prefix): pass\n"
    )
    with pytest.raises(ValueError, match="two state checks for ex1_state"):
        load_checks(path)


def test_checks_run_against_the_account(aws, account_id):
    aws.client("sqs").create_queue(QueueName="p-jobs")
    from tests.factories import MINILAB_CHECKS

    namespace: dict = {}
    exec(compile(MINILAB_CHECKS, "checks.py", "exec"), namespace)
    result = run_check("ex2_state", namespace["jobs_queue"], aws=aws, prefix="p")
    assert result.fraction == 0 and "45 seconds" in result.message
