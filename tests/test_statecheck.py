"""State checks: registration, outcomes, and partial credit from named, weighted parts."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from grader.statecheck import CheckResult, Parts, best, load_checks, run_check


def no_such_bucket(operation: str = "GetBucketPolicy") -> ClientError:
    error = {"Code": "NoSuchBucket", "Message": "The specified bucket does not exist"}
    return ClientError({"Error": {**error, "BucketName": "p-archive"}}, operation)


class FakeS3:
    """Just enough of an S3 client for the helper's unit tests: a bucket with some settings."""

    def __init__(self, **settings):
        self.settings = settings
        self.calls: list[str] = []

    def get(self, name):
        self.calls.append(name)
        if name not in self.settings:
            raise no_such_bucket(name)
        return self.settings[name]


class FakeAws:
    def __init__(self, s3: FakeS3):
        self.s3 = s3

    def client(self, name):
        assert name == "s3"
        return self.s3


# -- all or nothing --------------------------------------------------------------------------------


def test_none_passes_and_raising_fails():
    assert run_check("a", lambda aws, p: None, aws=None, prefix="p") == CheckResult("a", 1.0, "")
    assert run_check("a", lambda aws, p: False, aws=None, prefix="p").fraction == 0.0


def test_assertion_message_is_the_reason():
    def check(aws, prefix):
        raise AssertionError("no bucket named p-archive")

    result = run_check("a", check, aws=None, prefix="p")
    assert result.fraction == 0 and result.message == "no bucket named p-archive"
    assert result.missing == ()


def test_any_error_is_a_one_line_failure():
    result = run_check("a", lambda aws, p: {}["missing"], aws=None, prefix="p")
    assert result.fraction == 0 and result.message == "KeyError: 'missing'"


def test_a_botocore_error_is_explained():
    def check(aws, prefix):
        raise no_such_bucket()

    result = run_check("a", check, aws=None, prefix="p")
    assert result == CheckResult("a", 0.0, "bucket p-archive does not exist yet (GetBucketPolicy)")


def test_the_old_partial_credit_styles_fail_loudly():
    """A returned fraction or a generator (milestones) is no longer partial credit."""

    def milestones(aws, prefix):
        yield 0.5

    for check in (lambda aws, p: 0.5, milestones):
        result = run_check("a", check, aws=None, prefix="p")
        assert result.fraction == 0.0 and "return None or Parts" in result.message


# -- Parts ---------------------------------------------------------------------------------------


def test_the_fraction_is_the_weighted_share_of_the_parts_passed():
    check = Parts()
    check.part("the redrive policy", True, weight=2)
    check.part("the allow policy", False)
    check.part("the poison message", lambda: True)
    assert check.fraction == 0.75
    assert check.missing == ("the allow policy",)

    thirds = Parts()
    for name in ("a", "b", "c"):
        thirds.part(name, True)
    assert thirds.fraction == 1.0  # exactly: 1/3 + 1/3 + 1/3 would be 0.9999...
    thirds.part("d", False, weight=3)
    assert thirds.fraction == 0.5


def test_the_message_names_each_missing_part_and_its_share():
    check = Parts()
    check.part("the tiering rule", True)
    check.part("the noncurrent-version rule", False, why="no rule for noncurrent versions")
    check.part("the abort-incomplete-uploads rule", lambda: False)
    result = check.result("ex4_state")
    assert result == CheckResult(
        "ex4_state",
        1 / 3,
        "missing: the noncurrent-version rule (1/3 of the points): no rule for noncurrent "
        "versions; the abort-incomplete-uploads rule (1/3 of the points)",
        ("the noncurrent-version rule", "the abort-incomplete-uploads rule"),
    )
    passed = Parts()
    passed.part("the rule", True)
    assert passed.result("x") == CheckResult("x", 1.0, "", ())


def test_shares_in_the_message():
    check = Parts()
    check.part("shards", False, weight=3)
    check.part("retention", True, weight=3)
    check.part("records", False, weight=4)
    assert check.message == "missing: shards (3/10 of the points); records (2/5 of the points)"
    only = Parts()
    only.part("the queue", False)
    assert only.message == "missing: the queue (all of the points)"
    odd = Parts()
    odd.part("the tag", False)
    odd.part("the rest", True, weight=99)
    assert odd.message == "missing: the tag (1% of the points)"


def test_a_raising_part_fails_with_the_plain_reason_and_the_others_count():
    def policy():
        raise no_such_bucket()

    def missing_key():
        return {}["Rules"]

    def empty_assert():
        raise AssertionError

    check = Parts()
    check.part("the website", True)
    check.part("the public-read policy", policy, why="the policy is not public-read")
    check.part("the TLS deny", lambda: _fail("the policy has no TLS deny"), why="unused")
    check.part("the rules", missing_key, why="no lifecycle rules")  # a bug's KeyError: say why
    check.part("the CORS rules", missing_key)
    check.part("the tags", empty_assert, why="no tags")
    assert check.fraction == pytest.approx(1 / 6)
    assert [p.reason for p in check.parts[1:]] == [
        "bucket p-archive does not exist yet (GetBucketPolicy)",
        "the policy has no TLS deny",
        "no lifecycle rules",
        "KeyError: 'Rules'",
        "no tags",
    ]


def _fail(message):
    raise AssertionError(message)


def test_requires_makes_milestones():
    tested: list[str] = []

    def snapshot():
        tested.append("snapshot")
        return True

    check = Parts()
    volume = check.part("the data volume", False, why="the volume is not gp3")
    later = check.part("its snapshot", snapshot, requires=volume)
    assert not later and tested == []  # not even tested
    assert check.fraction == 0.0
    assert check.message == (
        "missing: the data volume (1/2 of the points): the volume is not gp3; "
        "its snapshot (1/2 of the points): needs the data volume first"
    )

    check = Parts()
    volume = check.part("the data volume", True)
    check.part("its snapshot", snapshot, requires=volume)
    check.part("its encrypted copy", False, requires=["the data volume", "its snapshot"])
    assert tested == ["snapshot"] and check.fraction == pytest.approx(2 / 3)
    assert check.missing == ("its encrypted copy",)


def test_requires_names_earlier_parts_only():
    check = Parts()
    check.part("a", True)
    with pytest.raises(ValueError, match="requires 'b', which is not an earlier part"):
        check.part("c", True, requires="b")
    with pytest.raises(ValueError, match="two parts named 'a'"):
        check.part("a", True)
    with pytest.raises(ValueError, match="must be positive"):
        check.part("d", True, weight=0)


def test_a_check_without_parts_is_a_mistake():
    result = run_check("a", lambda aws, p: Parts(), aws=None, prefix="p")
    assert result.fraction == 0.0 and "at least one part" in result.message


def test_run_check_with_parts_against_a_fake_account():
    def check(aws, prefix):
        s3 = aws.client("s3")
        versioning = s3.get("versioning")  # raising before any part fails the whole check
        parts = Parts()
        parts.part("versioning", versioning == "Enabled", why="versioning is off")
        parts.part("the bucket policy", lambda: s3.get("policy"))
        return parts

    result = run_check("ex2_state", check, aws=FakeAws(FakeS3(versioning="Enabled")), prefix="p")
    assert result == CheckResult(
        "ex2_state",
        0.5,
        "missing: the bucket policy (1/2 of the points): bucket p-archive does not exist yet "
        "(policy)",
        ("the bucket policy",),
    )
    result = run_check("ex2_state", check, aws=FakeAws(FakeS3()), prefix="p")
    assert result == CheckResult(
        "ex2_state", 0.0, "bucket p-archive does not exist yet (versioning)"
    )


# -- best ------------------------------------------------------------------------------------------


def vpc_parts(vpc):
    check = Parts()
    cidr = check.part("the CIDR block", vpc["cidr"] == "10.20.0.0/16", weight=2)
    check.part("DNS support", vpc["dns"], requires=cidr)
    check.part("DNS hostnames", vpc["hostnames"], requires=cidr)
    return check


def test_best_keeps_the_best_candidate():
    vpcs = [
        {"id": 1, "cidr": "10.0.0.0/16", "dns": True, "hostnames": True},  # 0: wrong CIDR
        {"id": 2, "cidr": "10.20.0.0/16", "dns": True, "hostnames": False},  # 3/4
        {"id": 3, "cidr": "10.20.0.0/16", "dns": False, "hostnames": True},  # 3/4, later
        {"id": 4, "cidr": "10.20.0.0/16", "dns": False, "hostnames": False},  # 1/2
    ]
    chosen = best(vpcs, vpc_parts)
    assert chosen.fraction == 0.75 and chosen.missing == ("DNS hostnames",)  # the first of two
    assert best(reversed(vpcs), vpc_parts).missing == ("DNS support",)
    assert best(vpcs[:1], vpc_parts).fraction == 0.0


def test_best_of_independent_candidates_adds_their_bests():
    """A product of candidates scores the best of each set (a public and a private zone)."""
    import itertools

    def parts_of(pair):
        public, private = pair
        check = Parts()
        check.part("the public records", public or 0, weight=3)
        check.part("the private records", private or 0, weight=2)
        return check

    chosen = best(itertools.product([0, 1], [None, 1, 0]), parts_of)
    assert chosen.fraction == 1.0
    assert best(itertools.product([0], [None, 1]), parts_of).fraction == 0.4


def test_best_with_no_candidate_fails_with_its_message():
    def check(aws, prefix):
        return best([], vpc_parts, none="no VPC tagged Name=p-vpc")

    assert run_check("a", check, aws=None, prefix="p") == CheckResult(
        "a", 0.0, "no VPC tagged Name=p-vpc"
    )


# -- loading and a real account ------------------------------------------------------------------


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
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="p-jobs")["QueueUrl"]
    from tests.factories import MINILAB_CHECKS

    namespace: dict = {}
    exec(compile(MINILAB_CHECKS, "checks.py", "exec"), namespace)
    result = run_check("ex2_state", namespace["jobs_queue"], aws=aws, prefix="p")
    assert result.fraction == 0 and "45 seconds" in result.message
    assert "a message in the queue (1/2 of the points): needs" in result.message

    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "45"})
    result = run_check("ex2_state", namespace["jobs_queue"], aws=aws, prefix="p")
    assert (result.fraction, result.missing) == (0.5, ("a message in the queue",))
    sqs.send_message(QueueUrl=url, MessageBody="job")
    assert run_check("ex2_state", namespace["jobs_queue"], aws=aws, prefix="p").fraction == 1.0
