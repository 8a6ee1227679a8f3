"""Grading a class of the minilab on the real emulator: good, blank and hostile submissions.

One class run holds every kind of bad input, so the suite pays for one grading run; each test
then reads the result of its own student."""

from __future__ import annotations

import copy
import json
import shutil

import pytest

from grader import notebook as nbu
from grader.results import GRADED, REJECTED
from tests import factories as f

SOLUTION = {
    "ex1_solution": 'bucket_name = f"{prefix}-reports"\ns3 = client("s3")\ns3.create_bucket(Bucket=bucket_name)\n'
    's3.put_bucket_versioning(Bucket=bucket_name, VersioningConfiguration={"Status": "Enabled"})\n',
    "ex2_solution": 'queue_name = f"{prefix}-jobs"\nsqs = client("sqs")\n'
    'queue_url = sqs.create_queue(QueueName=queue_name, Attributes={"VisibilityTimeout": "45"})["QueueUrl"]\n'
    'sqs.send_message(QueueUrl=queue_url, MessageBody="hello")\n',
    "kc1_solution": 'answer_1 = "B"\n',
}


def answered(release, **answers):
    """The release with answers: SOLUTION by default, overridden per grade id."""
    nb = copy.deepcopy(release)
    chosen = {**SOLUTION, **answers}
    for cell in nb.cells:
        gid = nbu.grade_id(cell)
        if gid in chosen and chosen[gid] is not None:
            cell.source = chosen[gid]
    return nb


FAKE_BOTO3 = (
    "import botocore.client\n"
    "real = botocore.client.BaseClient._make_api_call\n"
    "def fake(self, operation, params):\n"
    "    if operation == 'ListBuckets':\n"
    "        return {'Buckets': [{'Name': bucket_name}]}\n"
    "    if operation == 'GetBucketVersioning':\n"
    "        return {'Status': 'Enabled'}\n"
    "    return real(self, operation, params)\n"
    "botocore.client.BaseClient._make_api_call = fake\n"
)


@pytest.fixture(scope="module")
def graded(minilab_release, tmp_path_factory, emulator, request):
    """Grade the whole hostile class once for this module."""
    from grader import grade
    from grader.config import GradeConfig, load
    from tests.grader.conftest import FILES, write_class

    secret_dir = FILES  # the lab sources: hidden from student kernels by the sandbox
    release = minilab_release
    other_lab = f.notebook(f.markdown("# other"), f.solution("ex1_solution_x", "x = 1"))
    students = {
        "solution": answered(release),
        "blank": copy.deepcopy(release),
        "looper": answered(release, ex1_solution="while True:\n    pass\n"),
        "exiter": answered(release, ex2_solution="import os\nos._exit(1)\n"),
        "segfault": answered(release, ex1_solution="import ctypes\nctypes.string_at(0)\n"),
        "hog": answered(release, ex1_solution="hoard = bytearray(64 * 2**30)\n"),
        "printer": answered(
            release,
            ex1_solution="for i in range(200_000):\n    print('spam' * 10)\n"
            + SOLUTION["ex1_solution"],
        ),
        "faker": answered(release, ex1_solution='bucket_name = f"{prefix}-reports"\n' + FAKE_BOTO3),
        "warner": answered(
            release,
            ex1_solution=SOLUTION["ex1_solution"]
            + "import sys\nget_ipython().events.register('pre_run_cell', "
            "lambda *a: print('DeprecationWarning: noise', file=sys.stderr))\n",
        ),
        "thief": answered(
            release,
            kc1_solution=(
                "import glob, pathlib\n"
                f"found = glob.glob({str(secret_dir)!r} + '/**/*.ipynb', recursive=True)\n"
                "text = ''.join(pathlib.Path(p).read_text() for p in found)\n"
                f"state = glob.glob({str(emulator.config.home)!r} + '/**', recursive=True)\n"
                "kernels = glob.glob('/tmp/cloudlabs-work/*/*/.kernel-connection.json')\n"
                "answer_1 = 'B' if 'answer_1 == \"B\"' in text or len(state) > 1 "
                "or len(kernels) > 1 else 'nothing-found'\n"
            ),
        ),
        "killer": answered(
            release,
            kc1_solution=(
                "import urllib.request, json\n"
                "req = urllib.request.Request(endpoint_url + '/_localstack/health', "
                "data=json.dumps({'action': 'kill'}).encode(), method='POST')\n"
                "try:\n    urllib.request.urlopen(req)\nexcept Exception as exc:\n    print(exc)\n"
                "for b in client('s3').list_buckets()['Buckets']:\n    print(b)\n"
                'answer_1 = "B"\n'
            ),
        ),
        "wronglab": other_lab,
        "broken": '{"cells": [',
    }
    submissions = write_class(tmp_path_factory.mktemp("class") / "submitted", students)
    out = tmp_path_factory.mktemp("out")
    run = grade.main(
        lab="minilab",
        submissions=submissions,
        out=out,
        source_dir=FILES,
        release_dir=FILES / "release",
        emulator_config=emulator.config,
        grade_config=load(GradeConfig, "grade", cell_timeout=8.0, notebook_timeout=90.0, workers=2,
                          memory_mb=1536),
    )  # fmt: skip
    return {r.student: r for r in run.results}, run


def cell(result, grade_id):
    return next(c for c in result.cells if c.grade_id == grade_id)


def test_solution_scores_full_marks(graded):
    results, _ = graded
    assert results["solution"].status == GRADED
    assert results["solution"].score == results["solution"].max_score == 9


def test_blank_release_scores_zero_without_grader_error(graded):
    results, _ = graded
    blank = results["blank"]
    assert blank.status == GRADED and blank.score == 0 and blank.reason == ""


@pytest.mark.parametrize(("student", "lost", "why"), [
    ("looper", "ex1", "longer than 8 s"),
    ("exiter", "ex2", "kernel died"),
    ("segfault", "ex1", "kernel died"),
])  # fmt: skip
def test_a_crash_or_hang_costs_only_its_exercise(graded, student, lost, why):
    results, _ = graded
    result = results[student]
    assert result.status == GRADED
    assert result.exercises[lost][0] == 0
    assert any(why in note for note in result.notes), result.notes
    others = {s: v for s, v in result.exercises.items() if s != lost}
    assert all(got == top for got, top in others.values()), others


def test_dead_kernel_never_leaves_tests_passed(graded):
    results, _ = graded
    for grade_id in ("ex2_test_url", "ex2_state"):
        assert not cell(results["exiter"], grade_id).passed


def test_memory_hog_fails_its_exercise_only(graded):
    results, _ = graded
    hog = results["hog"]
    assert hog.exercises["ex1"][0] == 0
    assert hog.exercises["ex2"] == (4, 4) and hog.exercises["kc1"] == (1, 1)


def test_megabytes_of_output_are_capped(graded):
    results, run = graded
    assert results["printer"].score == 9
    assert any("printed too much" in n for n in results["printer"].notes)
    executed = run.workspace.autograded_path("printer", "minilab")
    assert executed.stat().st_size < 1_000_000


def test_monkeypatched_boto3_earns_nothing_for_missing_resources(graded):
    results, _ = graded
    faker = results["faker"]
    assert faker.exercises["ex1"] == (0, 4)
    # the tests ran outside the kernel, where the patched boto3 is not: they failed on their own
    tests = [c for c in faker.cells if c.section == "ex1" and c.kind == "test"]
    assert tests and all(not c.passed for c in tests), [(c.grade_id, c.message) for c in tests]


def test_stderr_noise_does_not_cost_points(graded):
    results, _ = graded
    assert results["warner"].score == 9


def test_sandbox_hides_lab_sources(graded):
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (make setup installs it as root)")
    results, _ = graded
    assert cell(results["thief"], "kc1_test").passed is False
    assert cell(results["thief"], "kc1_test").message == "answer with one letter"  # found nothing


def test_remote_kill_is_refused_and_the_class_goes_on(graded):
    results, _ = graded
    assert results["killer"].score == 9
    assert results["solution"].score == 9


def test_accounts_and_prefixes_are_unique_and_unguessable(graded):
    results, _ = graded
    graded_ones = [r for r in results.values() if r.status == GRADED]
    accounts = {r.account_id for r in graded_ones}
    assert len(accounts) == len(graded_ones) and "000000000000" not in accounts
    assert len({r.prefix for r in graded_ones}) == len(graded_ones)


@pytest.mark.parametrize(("student", "reason"), [
    ("wronglab", "not the minilab lab"),
    ("broken", "not valid JSON"),
])  # fmt: skip
def test_bad_files_are_rejected_with_a_reason(graded, student, reason):
    results, _ = graded
    assert results[student].status == REJECTED and reason in results[student].reason


def test_every_export_agrees_with_the_results(graded):
    """One source of truth: results/*.json, summary.json, grades.csv, junit.xml and nbgrader's
    gradebook carry the same score for every student; rejected ones are not zeros."""
    import csv
    import xml.etree.ElementTree as ET

    from nbgrader.api import Gradebook

    results, run = graded
    root = run.workspace.root
    assert (root / "summary.png").stat().st_size > 1000
    assert "wronglab" in (root / "summary.html").read_text()
    saved = {p.stem: json.loads(p.read_text()) for p in (root / "results").glob("*.json")}
    summary = {s["student"]: s for s in json.loads((root / "summary.json").read_text())}
    rows = {r["student_id"]: r for r in csv.DictReader((root / "grades.csv").open())}
    suites = {s.get("name").split(".", 1)[1]: s for s in ET.parse(root / "junit.xml").getroot()}
    assert set(saved) == set(summary) == set(rows) == set(suites) == set(results)
    with Gradebook(run.workspace.db_url) as gb:
        for student, result in results.items():
            row = rows[student]
            assert saved[student]["score"] == summary[student]["score"] == result.score
            assert row["status"] == result.status
            failing = sum(not c.passed for c in result.cells)
            if result.status == GRADED:
                assert float(row["score"]) == float(row["raw_score"]) == result.score
                assert float(row["max_score"]) == result.max_score
                submission = gb.find_submission("minilab", student)
                assert submission.score == pytest.approx(result.score)
                assert int(suites[student].get("failures")) == failing
            else:  # rejected: no score at all, and the reason, in every export
                assert row["score"] == row["raw_score"] == "" and row["reason"]
                assert suites[student].find("testcase/error") is not None


def test_feedback_shows_hints_but_never_hidden_tests(graded):
    _, run = graded
    page = run.workspace.feedback_path("blank", "minilab").read_text()
    assert "enable versioning with put_bucket_versioning" in page  # the hint of a failed test
    assert "HIDDEN TESTS" not in page and 'answer_1 == "B"' not in page
    assert 'get_bucket_versioning(Bucket=bucket_name).get("Status")' not in page
