"""Cell factories: build small lab notebooks and submissions for tests."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

PARAMETERS = """import os

endpoint_url = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
region = "us-east-1"
account_id = "000000000000"
prefix = "student"
"""

SETUP = """import boto3

session = boto3.Session(aws_access_key_id=account_id, aws_secret_access_key="test", region_name=region)


def client(name):
    return session.client(name, endpoint_url=endpoint_url)
"""


def _nbgrader(grade_id: str, *, grade=False, solution=False, locked=False, points=None) -> dict:
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if points is not None:
        meta["points"] = points
    return meta


def markdown(text: str) -> NotebookNode:
    return new_markdown_cell(text)


def code(source: str, **metadata) -> NotebookNode:
    return new_code_cell(source, metadata=metadata)


def parameters() -> NotebookNode:
    return new_code_cell(
        PARAMETERS,
        metadata={"tags": ["parameters"], "nbgrader": _nbgrader("parameters", locked=True)},
    )


def setup(source: str = SETUP) -> NotebookNode:
    return new_code_cell(
        source, metadata={"tags": ["setup"], "nbgrader": _nbgrader("setup", locked=True)}
    )


def solution(grade_id: str, source: str) -> NotebookNode:
    return new_code_cell(source, metadata={"nbgrader": _nbgrader(grade_id, solution=True)})


def test(
    grade_id: str, source: str, points: float = 1, hint: str = "check your answer"
) -> NotebookNode:
    return _graded(grade_id, f"# Hint: {hint}\n{source}", points)


def state(
    grade_id: str, what: str, points: float = 1, hint: str = "check the resource"
) -> NotebookNode:
    body = f"# Hint: {hint}\n# State check (graded by cloudlabs from outside this notebook):\n# {what}\n"
    return _graded(grade_id, body, points)


def _graded(grade_id: str, body: str, points: float) -> NotebookNode:
    return new_code_cell(
        body, metadata={"nbgrader": _nbgrader(grade_id, grade=True, locked=True, points=points)}
    )


def notebook(*cells: NotebookNode) -> NotebookNode:
    nb = new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def minilab() -> NotebookNode:
    """A small S3 + SQS lab that follows docs/lab-format.md (9 points)."""
    return notebook(
        markdown("# Minilab: a bucket and a queue\n\nA small lab used by the grader's tests."),
        parameters(),
        setup(),
        markdown("## Exercise 1 — A bucket for reports (4 points)\n\nCreate a versioned bucket."),
        solution(
            "ex1_solution",
            'bucket_name = f"{prefix}-reports"\n'
            "### BEGIN SOLUTION\n"
            's3 = client("s3")\n'
            "s3.create_bucket(Bucket=bucket_name)\n"
            's3.put_bucket_versioning(Bucket=bucket_name, VersioningConfiguration={"Status": "Enabled"})\n'
            "### END SOLUTION\n",
        ),
        test(
            "ex1_test_exists",
            'names = [b["Name"] for b in client("s3").list_buckets()["Buckets"]]\n'
            'assert bucket_name in names, f"no bucket named {bucket_name}"\n',
            hint="create the bucket with create_bucket",
        ),
        test(
            "ex1_test_versioning",
            "### BEGIN HIDDEN TESTS\n"
            'status = client("s3").get_bucket_versioning(Bucket=bucket_name).get("Status")\n'
            'assert status == "Enabled", "versioning is not enabled"\n'
            "### END HIDDEN TESTS\n",
            hint="enable versioning with put_bucket_versioning",
        ),
        state(
            "ex1_state",
            'a bucket named f"{prefix}-reports" with versioning enabled',
            points=2,
            hint="the bucket must exist and be versioned when the notebook ends",
        ),
        markdown(
            "## Exercise 2 — A queue for jobs (4 points)\n\nCreate a queue and send a message."
        ),
        solution(
            "ex2_solution",
            'queue_name = f"{prefix}-jobs"\n'
            "### BEGIN SOLUTION\n"
            'sqs = client("sqs")\n'
            'queue_url = sqs.create_queue(QueueName=queue_name, Attributes={"VisibilityTimeout": "45"})["QueueUrl"]\n'
            'sqs.send_message(QueueUrl=queue_url, MessageBody="hello")\n'
            "### END SOLUTION\n",
        ),
        test(
            "ex2_test_url",
            'assert queue_url.endswith(queue_name), "queue_url should be the URL of your queue"\n'
            "### BEGIN HIDDEN TESTS\n"
            'attrs = client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]\n'
            'assert attrs["VisibilityTimeout"] == "45", '
            "f\"the queue's visibility timeout is {attrs['VisibilityTimeout']} seconds; "
            'create it with VisibilityTimeout 45"\n'
            "### END HIDDEN TESTS\n",
            points=2,
            hint="create_queue returns the URL; set VisibilityTimeout to 45",
        ),
        state(
            "ex2_state",
            'a queue f"{prefix}-jobs" with a 45 s visibility timeout holding a message',
            points=2,
            hint="the queue must hold the message you sent",
        ),
        markdown(
            "## Knowledge check\n\n**Q1.** Which service is a queue? A) S3 B) SQS C) EC2 D) IAM"
        ),
        solution(
            "kc1_solution",
            'answer_1 = None\n### BEGIN SOLUTION\nanswer_1 = "B"\n### END SOLUTION\n',
        ),
        test(
            "kc1_test",
            'assert answer_1 in {"A", "B", "C", "D"}, "answer with one letter"\n'
            "### BEGIN HIDDEN TESTS\n"
            'assert answer_1 == "B", "answer 1 is not the right choice: reread the section on queues"\n'
            "### END HIDDEN TESTS\n",
            hint="reread the section on queues",
        ),
    )


#: The minilab's state checks: the committed test data file is the one source.
MINILAB_CHECKS = (Path(__file__).parent / "grader" / "files" / "minilab" / "checks.py").read_text()


def write(nb: NotebookNode, path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
