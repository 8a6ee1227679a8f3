"""The trusted test process (grader/trusted.py) and the plain-data answers (grader/answers.py),
without a kernel: the student's side is played by plain callables."""

from __future__ import annotations

import datetime

import pytest

from grader import answers as ans
from grader.trusted import TestPool

PARAMETERS = {"endpoint_url": "http://127.0.0.1:1", "region": "us-east-1",
              "account_id": "123456789012", "prefix": "s1"}  # fmt: skip
SETUP = ["GIVEN = 41\ndef helper(x):\n    return x + 1\n"]


def no_calls(name, args, kwargs):
    raise AssertionError(f"unexpected call of {name}")


@pytest.fixture
def process():
    with TestPool() as pool, pool.process() as worker:
        yield worker


def test_a_test_sees_the_setup_and_its_answers(process):
    process.begin(parameters=PARAMETERS, setup=SETUP)
    outcome = process.run(
        "assert helper(GIVEN) == answer == 42 and prefix == 's1'", {"answer": 42},
        call=no_calls, timeout=10,
    )  # fmt: skip
    assert outcome.passed, outcome.error
    failed = process.run("assert answer == 42, 'wrong answer'", {"answer": 7}, call=no_calls,
                         timeout=10)  # fmt: skip
    assert failed.error == ("AssertionError", "wrong answer")


def test_an_unread_setup_reply_is_never_taken_for_a_tests_result(process):
    """A submission whose tests never ran leaves its setup's reply unread: the next
    submission's failing test must still fail (not be shifted onto that reply)."""
    process.begin(parameters=PARAMETERS, setup=SETUP)  # no test runs for this submission
    process.begin(parameters={**PARAMETERS, "prefix": "s2"}, setup=SETUP)
    assert not process.run("assert False, 'must fail'", {}, call=no_calls, timeout=10).passed
    assert process.run("assert prefix == 's2'", {}, call=no_calls, timeout=10).passed


def test_tests_do_not_share_variables(process):
    process.begin(parameters=PARAMETERS, setup=SETUP)
    assert process.run("leftover = 1", {}, call=no_calls, timeout=10).passed
    outcome = process.run("leftover", {}, call=no_calls, timeout=10)
    assert outcome.error and outcome.error[0] == "NameError"


def test_a_hung_test_is_stopped_and_the_process_serves_the_next(process):
    process.begin(parameters=PARAMETERS, setup=SETUP)
    outcome = process.run("while True:\n    pass\n", {}, call=no_calls, timeout=2)
    assert outcome.error and outcome.error[0] == "TestTimeout"
    assert process.run("assert GIVEN == 41", {}, call=no_calls, timeout=10).passed


def test_student_functions_are_called_back_with_plain_data(process):
    calls = []

    def call(name, args, kwargs):
        calls.append((name, args, kwargs))
        if args[0] == "boom":
            return {"raised": ["KeyError", "'boom'"]}
        return {"value": ans.encode({"got": args[0], "raw": b"\x00\x01"})}

    process.begin(parameters=PARAMETERS, setup=SETUP)
    source = (
        "assert send('x') == {'got': 'x', 'raw': b'\\x00\\x01'}\n"
        "try:\n    send('boom')\nexcept Exception as exc:\n    assert 'KeyError' in str(exc)\n"
        "else:\n    raise AssertionError('no error')\n"
    )
    outcome = process.run(source, {"send": {ans.TAG: "function"}}, call=call, timeout=10)
    assert outcome.passed, outcome.error
    assert [c[1] for c in calls] == [["x"], ["boom"]]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ({ans.TAG: "missing"}, "is not defined"),
        ({ans.TAG: "unsupported", "type": "Yes"}, "is a Yes, not plain data"),
    ],
)
def test_an_answer_that_did_not_cross_fails_with_a_reason(process, value, why):
    process.begin(parameters=PARAMETERS, setup=SETUP)
    outcome = process.run("assert answer", {"answer": value}, call=no_calls, timeout=10)
    assert outcome.error and why in outcome.error[1]


def test_plain_data_round_trips_and_nothing_else_crosses():
    value = {"a": [1, 2.5, None, True], "b": b"bytes", "when": datetime.datetime(2026, 1, 2, 3, 4)}
    assert ans.decode(ans.encode(value)) == {**value, "a": [1, 2.5, None, True]}
    with pytest.raises(ans.Unavailable):
        ans.decode({ans.TAG: "function"})  # a nested function is no answer


def test_a_test_reads_only_names_the_setup_does_not_define():
    assert ans.free_names("x = answer + GIVEN\nlen(x)", {"GIVEN"}) == {"answer"}
