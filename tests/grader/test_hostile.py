"""Hostile submissions graded in one class with an honest solution and an honest partial attempt.

The invariant: nothing a submission does in its kernel or on disk changes whether a test passes,
another student's result, or the class run. Each cheat below gets no more than its fair score
(what the AWS state it built and its plain answers are worth), and the honest students keep the
scores they get alone. One category per student; see docs/grading.md, "Security".
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import pytest

from grader import grade
from grader.config import GradeConfig, load
from grader.results import GRADED, REJECTED
from tests.grader.conftest import FILES, write_class
from tests.grader.test_grade import SOLUTION, answered

BUCKET = 'bucket_name = f"{prefix}-reports"\n'
QUEUE = 'queue_name = f"{prefix}-jobs"\n'

#: What each student hands in (answers by grade id; the rest as released) and its fair score.
CHEATS = {
    # tests outside the kernel: nothing in the kernel can hide a failing test
    "excepthook": (
        {
            "ex1_solution": BUCKET + "get_ipython().set_custom_exc((BaseException,), "
            "lambda *a, **k: None)\nimport sys\nsys.excepthook = lambda *a: None\n",
            "ex2_solution": QUEUE + "queue_url = None\n",
            "kc1_solution": "answer_1 = None\n",
        },
        0,
    ),
    "transformer": (
        {
            "ex1_solution": BUCKET + "ip = get_ipython()\n"
            "ip.input_transformers_post.append(lambda lines: ['pass\\n'])\n",
            "ex2_solution": QUEUE + "queue_url = None\n",
            "kc1_solution": "answer_1 = None\n",
        },
        0,
    ),
    "ast": (
        {
            "ex1_solution": BUCKET + "import ast\nclass Gut(ast.NodeTransformer):\n"
            "    def visit_Assert(self, node):\n        return ast.Pass()\n"
            "get_ipython().ast_transformers.append(Gut())\n",
            "ex2_solution": QUEUE + "queue_url = None\n",
            "kc1_solution": "answer_1 = None\n",
        },
        0,
    ),
    # answers are plain data: an object whose == is always true crosses as nothing
    "alwayseq": (
        {
            "ex1_solution": BUCKET,
            "ex2_solution": QUEUE
            + "class Yes(str):\n    def __eq__(self, other):\n        return True\n"
            "    def endswith(self, *a):\n        return True\n    __hash__ = str.__hash__\n"
            "queue_url = Yes('x')\n",
            "kc1_solution": "class Yes(str):\n    def __eq__(self, other):\n        return True\n"
            "    __hash__ = str.__hash__\nanswer_1 = Yes('B')\n",
        },
        0,
    ),
    # points backed by evidence: typed-in values with no resource behind them earn nothing
    "typed": (
        {
            "ex1_solution": BUCKET,
            "ex2_solution": QUEUE + 'queue_url = f"{endpoint_url}/000000000000/{queue_name}"\n',
            "kc1_solution": 'answer_1 = "B"\n',
        },
        1,
    ),
    # hidden tests never enter the kernel: a pre-run hook sees only the student's own cells
    "snoop": (
        {
            "ex1_solution": "get_ipython().events.register('pre_run_cell', "
            "lambda info: print('SNOOPED', info.raw_cell))\n" + SOLUTION["ex1_solution"]
        },
        9,
    ),
    # the emulator keeps itself up: poisoned health, reset and shutdown requests are refused
    "poisoner": (
        {
            "kc1_solution": (
                "import urllib.request\n"
                "for method, path, body in [('PUT', '/_localstack/health', b'{\"services\": {\"s3\": \"error\"}}'),\n"
                "                           ('POST', '/_localstack/health', b'{\"action\": \"restart\"}'),\n"
                "                           ('POST', '/moto-api/reset', b''),\n"
                "                           ('GET', '/_aws/cloudwatch/metrics/raw', None)]:\n"
                "    try:\n"
                "        urllib.request.urlopen(urllib.request.Request(endpoint_url + path, data=body,"
                " method=method), timeout=5)\n"
                "    except Exception as exc:\n        print(exc)\n"
                'answer_1 = "B"\n'
            )
        },
        9,
    ),
    # the student's own files break only the student's own run, and it is graded
    "homebreaker": (
        {
            "ex2_solution": QUEUE + "import os, pathlib\nhome = pathlib.Path.home()\n"
            "(home / '.aws').mkdir(exist_ok=True)\n(home / '.aws' / 'config').write_text('[[[garbage')\n"
            "start = home / '.ipython' / 'profile_default' / 'startup'\nstart.mkdir(parents=True, exist_ok=True)\n"
            "(start / '00-break.py').write_text('raise SystemExit(3)')\n"
            "(home / 'sitecustomize.py').write_text('raise SystemExit(3)')\n"
            "os._exit(1)\n"
        },
        5,
    ),
    # safe reports: control characters and megabytes in error messages stay out of the exports
    "garbage": (
        {"kc1_solution": "raise ValueError('\\x00\\x1b[31m' + 'x' * 3_000_000 + '\\ud800')\n"},
        8,
    ),
}


@pytest.fixture(scope="module")
def hostile(minilab_release, tmp_path_factory, emulator):
    release = minilab_release
    students = {name: answered(release, **answers) for name, (answers, _) in CHEATS.items()}
    students["solution"] = answered(release)
    students["partial"] = answered(release, ex2_solution=None, kc1_solution='answer_1 = "C"\n')
    submitted = write_class(tmp_path_factory.mktemp("hostile") / "submitted", students)
    os.symlink(FILES / "minilab" / "minilab.ipynb", submitted / "linker.ipynb")
    out = tmp_path_factory.mktemp("hostile-out")
    run = grade.main(
        lab="minilab", submissions=submitted, out=out, source_dir=FILES,
        release_dir=FILES / "release", emulator_config=emulator.config, force=True,
        grade_config=load(GradeConfig, "grade", cell_timeout=15.0, notebook_timeout=120.0,
                          workers=2),
    )  # fmt: skip
    return {r.student: r for r in run.results}, run


def test_honest_students_keep_their_scores_and_the_run_is_not_an_infrastructure_failure(hostile):
    results, run = hostile
    assert (results["solution"].status, results["solution"].score) == (GRADED, 9)
    assert (results["partial"].status, results["partial"].score) == (GRADED, 4)
    assert grade.exit_code(run) == 0, [(r.student, r.reason) for r in run.results if r.reason]


@pytest.mark.parametrize("student", sorted(CHEATS))
def test_each_cheat_gets_no_more_than_its_fair_score(hostile, student):
    results, _ = hostile
    result = results[student]
    fair = CHEATS[student][1]
    assert result.status == GRADED, result.reason
    assert result.score <= fair + 1e-9, [(c.grade_id, c.points, c.message) for c in result.cells]
    assert result.score == pytest.approx(fair), [(c.grade_id, c.points) for c in result.cells]


def test_hidden_tests_never_reach_the_kernel_or_the_feedback(hostile):
    _, run = hostile
    executed = run.workspace.autograded_path("snoop", "minilab").read_text()
    assert "SNOOPED" in executed  # the hook ran, and saw only the student's own cells
    snooped = [line for line in executed.splitlines() if "SNOOPED" in line]
    assert not any("get_bucket_versioning" in line or "HIDDEN" in line for line in snooped)
    feedback = run.workspace.feedback_path("snoop", "minilab").read_text()
    assert "versioning is not enabled" not in feedback and "HIDDEN TESTS" not in feedback


def test_a_symbolic_link_is_refused_with_a_reason(hostile):
    results, _ = hostile
    assert results["linker"].status == REJECTED
    assert "link" in results["linker"].reason


def test_a_broken_home_is_the_students_failure_not_the_graders(hostile):
    results, _ = hostile
    result = results["homebreaker"]
    assert result.status == GRADED and result.exercises["ex1"] == (4, 4)


def test_garbage_output_leaves_every_export_parseable(hostile):
    results, run = hostile
    ET.parse(run.workspace.root / "junit.xml")
    assert all(len(c.message) < 20_000 for c in results["garbage"].cells)
    assert "\x00" not in (run.workspace.root / "summary.html").read_text()
