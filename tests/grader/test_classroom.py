"""`make classroom-demo` as a test: the LMS (a real LTI 1.3 platform) launches the instructor and
two students into the class hub; they fetch, solve and submit through nbgrader's exchange; the
instructor collects, grades and pushes the grades back; the platform's gradebook is checked.
Forged and replayed launches are refused, and no student reaches another's account."""

from __future__ import annotations

import jwt
import pytest

from grader import classroom
from grader.hub import class_secret, identity
from grader.lti_platform import new_key, pem


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    if classroom.missing_parts():
        pytest.skip(f"{classroom.missing_parts()} (`make classroom` installs it)")
    probes: dict[str, object] = {}

    def checks(hub: classroom.Hub, platform_url: str) -> None:
        other = pem(new_key())

        def forge(fields: dict[str, str]) -> dict[str, str]:
            claims = jwt.decode(fields["id_token"], options={"verify_signature": False})
            claims["sub"] = "lms-bob"  # alice's launch, turned into bob's with another key
            return {**fields, "id_token": jwt.encode(claims, other, algorithm="RS256",
                                                     headers={"kid": "platform-1"})}  # fmt: skip

        probes["forged"] = classroom.launch(platform_url, "lms-alice", tamper=forge)
        bob = identity(class_secret(hub.data), "lms-bob")
        probes["alice sees"] = hub.run_code("lms-alice", (
            "import os, boto3\n"
            "print(os.environ['CLOUDLABS_ACCOUNT_ID'], "
            "[b['Name'] for b in boto3.client('s3').list_buckets()['Buckets']])"
        ))  # fmt: skip
        probes["bob"] = bob

    lines: list[str] = []
    report = classroom.main(lab="storage", echo=lines.append, checks=checks,
                            root=tmp_path_factory.mktemp("classroom"))  # fmt: skip
    return report, lines, probes


def test_the_lms_gradebook_holds_each_student_s_score(demo):
    report, lines, _ = demo
    assert report.ok, "\n".join(lines)
    assert {u: s["scoreGiven"] for u, s in report.gradebook.items()} == report.expected
    assert report.expected["lms-alice"] > report.expected["lms-bob"] > 0
    assert all(s["gradingProgress"] == "FullyGraded" for s in report.gradebook.values())
    assert "teacher collected 2 submissions (0 refused)" in lines


def test_launches_come_from_the_lms_and_forgeries_are_refused(demo):
    _, lines, probes = demo
    assert sum(line.endswith("launched from the LMS -> /hub/spawn") for line in lines) == 3
    status, _ = probes["forged"]
    assert 400 <= status < 500  # signed with a key that is not the platform's


def test_students_work_in_accounts_of_their_own(demo):
    _, _, probes = demo
    account, buckets = probes["alice sees"].split(" ", 1)
    assert account != probes["bob"].account_id and len(account) == 12
    assert probes["bob"].prefix not in buckets


def test_memory_of_each_part_is_measured(demo):
    report, _, _ = demo
    assert set(report.memory) == {
        "lms-alice",
        "lms-bob",
        "emulator",
        "emulator, graded",
        "hub and proxy",
    }
    for part, memory in report.memory.items():
        assert memory.processes >= 2 and memory.rss > memory.uss > 0, (part, memory)
