"""Grades back to the LMS over LTI 1.3, end to end against a real LTI 1.3 platform on loopback
(:mod:`grader.lti_platform`: lti1p3platform's token endpoint and its AGS and NRPS services)."""

from __future__ import annotations

import typing as t
from pathlib import Path

import jwt
import pytest

from grader import lti
from grader.errors import ConfigError
from grader.lti_platform import CLIENT_ID, DEPLOYMENT_ID, ISSUER, Platform, member, new_key, pem
from grader.lti_platform import TOOL_KID as KID
from grader.results import GRADED, REJECTED, SubmissionResult


@pytest.fixture(scope="module")
def keys() -> dict[str, t.Any]:
    """Made at test time: the tool's key (registered on the platform) and another key."""
    return {"tool": new_key(), "other": new_key()}


#: the course's members as NRPS lists them: opaque LMS ids, the login id as cloudlabs knows it
MEMBERS = [member(name) for name in ("alice", "bob", "carol", "dave")]


@pytest.fixture
def platform(keys) -> t.Iterator[Platform]:
    with Platform.create(tool_key=keys["tool"], members=MEMBERS) as running:
        yield running


def _config(platform: Platform, key: Path, **fields: t.Any) -> lti.LtiConfig:
    return lti.LtiConfig(**{
        "issuer": ISSUER, "client_id": CLIENT_ID, "deployment_id": DEPLOYMENT_ID,
        "token_url": f"{platform.url}/token", "private_key": key, "key_id": KID,
        "lineitems_url": f"{platform.url}/lineitems",
        "memberships_url": f"{platform.url}/memberships",
        "student_field": "lis_person_sourcedid", **fields,
    })  # fmt: skip


@pytest.fixture
def tool_key(keys, tmp_path) -> Path:
    path = tmp_path / "tool.pem"
    path.write_bytes(pem(keys["tool"]))
    return path


def _class() -> list[SubmissionResult]:
    """On time, late (3 of 10 points lost), rejected, and graded but not in the LMS course."""
    return [
        SubmissionResult("alice", "minilab", GRADED, score=8.0, max_score=10.0),
        SubmissionResult(
            "dave",
            "minilab",
            GRADED,
            score=9.5,
            max_score=10.0,
            submitted_at="2026-12-02T13:00:00+00:00",
            submitted_from="timestamp.txt",
            late_seconds=90_000.0,
            late_penalty=3.0,
        ),
        SubmissionResult("carol", "minilab", REJECTED, max_score=10.0, reason="not a notebook"),
        SubmissionResult("eve", "minilab", GRADED, score=10.0, max_score=10.0),
    ]


def test_push_posts_final_scores_once_per_line_item(platform, tool_key):
    config = _config(platform, tool_key)
    report = lti.push(lab="minilab", results=_class(), config=config)

    assert platform.store.tokens == 1 and not platform.store.refused
    [(url, item)] = platform.store.lineitems.items()
    assert item == {"id": url, "label": "minilab", "resourceId": "minilab", "tag": "cloudlabs",
                    "scoreMaximum": 10.0}  # fmt: skip
    assert (report.lineitem, report.lineitem_action) == (url, "created")
    assert report.posted == {"alice": 8.0, "dave": 6.5}
    assert report.not_graded == {"carol": "rejected: not a notebook"}
    assert report.not_in_lms == {
        "eve": "no member of the LMS course has lis_person_sourcedid 'eve'"
    }
    assert not report.complete and not report.warnings

    received = {s["userId"]: s for s in platform.store.scores[url]}
    assert set(received) == {"lms-alice", "lms-dave"}  # carol (rejected) and eve: not posted
    dave = received["lms-dave"]
    assert {k: dave[k] for k in ("scoreGiven", "scoreMaximum", "activityProgress",
                                 "gradingProgress")} == {
        "scoreGiven": 6.5, "scoreMaximum": 10.0, "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
    }  # fmt: skip
    assert dave["comment"] == (
        "cloudlabs: 6.5/10 (raw score 9.5; handed in 1 day 1 h after the due time: -3 points)"
    )
    assert received["lms-alice"]["scoreGiven"] == 8.0
    assert received["lms-alice"]["comment"] == "cloudlabs: 8/10"
    assert dave["timestamp"].endswith("Z")

    # a second push: the same line item, no duplicate; the scores posted again (latest wins)
    again = lti.push(lab="minilab", results=_class(), config=config)
    assert (again.lineitem, again.lineitem_action) == (url, "unchanged")
    assert list(platform.store.lineitems) == [url]
    assert [s["userId"] for s in platform.store.scores[url]] == ["lms-alice", "lms-dave"] * 2

    # the lab's maximum changed: the line item is updated, still one
    changed = lti.push(lab="minilab", results=_class(), config=config, max_score=20.0)
    assert changed.lineitem_action == "updated"
    assert platform.store.lineitems == {url: {**item, "scoreMaximum": 20.0}}
    assert platform.store.scores[url][-1]["scoreMaximum"] == 20.0


def test_line_items_of_other_labs_and_tools_are_left_alone(platform, tool_key):
    config = _config(platform, tool_key)
    lti.push(lab="other-lab", results=_class(), config=config)
    lti.push(lab="minilab", results=_class(), config=config, max_score=10.0)
    lti.push(lab="minilab", results=_class(), config=_config(platform, tool_key, tag="section-b"))
    tags = sorted((i["resourceId"], i["tag"]) for i in platform.store.lineitems.values())
    assert tags == [("minilab", "cloudlabs"), ("minilab", "section-b"), ("other-lab", "cloudlabs")]


def test_email_names_students(platform, tool_key):
    platform.store.members[0]["email"] = "Alice@Example.edu"
    results = [SubmissionResult("alice@example.edu", "minilab", GRADED, score=5, max_score=10)]
    report = lti.push(lab="minilab", results=results,
                      config=_config(platform, tool_key, student_field="email"))  # fmt: skip
    assert report.posted == {"alice@example.edu": 5.0} and report.complete


def test_inactive_member_is_reported_not_posted(platform, tool_key):
    platform.store.members[0]["status"] = "Inactive"
    report = lti.push(lab="minilab", results=_class()[:1], config=_config(platform, tool_key))
    assert report.not_in_lms == {"alice": "inactive in the LMS course"}
    assert not platform.store.scores


def test_token_refused_with_another_key(platform, keys, tmp_path):
    other = tmp_path / "other.pem"
    other.write_bytes(pem(keys["other"]))
    with pytest.raises(lti.LmsError) as caught:
        lti.push(lab="minilab", results=_class(), config=_config(platform, other))
    assert "the platform refused the token (401" in str(caught.value)
    assert "public key" in caught.value.fix
    assert platform.store.tokens == 0
    assert platform.store.refused == ["InvalidSignatureError: Signature verification failed"]
    assert not platform.store.lineitems and not platform.store.scores


def test_a_forged_access_token_is_refused(platform, keys, tool_key):
    """The services take only the platform's tokens: one signed by the tool itself is refused."""
    forged = jwt.encode({"iss": ISSUER, "sub": CLIENT_ID, "scopes": " ".join(lti.SCOPES)},
                        pem(keys["tool"]), algorithm="RS256")  # fmt: skip
    import requests

    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {forged}"
        answer = session.get(f"{platform.url}/lineitems", timeout=10)
    assert answer.status_code == 401


def test_incomplete_settings_say_which(tmp_path):
    with pytest.raises(ConfigError) as caught:
        lti.push(lab="minilab", results=[], config=lti.LtiConfig(issuer=ISSUER))
    assert "CLOUDLABS_LTI_CLIENT_ID" in str(caught.value)
    assert "CLOUDLABS_LTI_ISSUER" not in str(caught.value)


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    from grader.config import describe, load

    monkeypatch.setenv("CLOUDLABS_LTI_PRIVATE_KEY", str(tmp_path / "k.pem"))
    monkeypatch.setenv("CLOUDLABS_LTI_STUDENT_FIELD", "email")
    config = load(lti.LtiConfig, "lti")
    assert config.private_key == str(tmp_path / "k.pem") and config.student_field == "email"
    assert {row[0] for row in describe(lti.LtiConfig)} >= {"CLOUDLABS_LTI_TOKEN_URL"}
