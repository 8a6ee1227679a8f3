"""LocalStack's IAM policy simulator measured against AWS's documented evaluation logic.

Each case: the policies of a principal, one request, the decision AWS's documented logic gives
(``aws``) and the decision LocalStack 2026.3.0's SimulatePrincipalPolicy gives (``localstack``).
Cases where they differ are marked ``WRONG`` and asserted as LocalStack answers, so this test fails
when LocalStack's behaviour changes (then revisit solutions/security and the security lectures,
which say the simulator cannot be trusted and grade with solutions/security/checks.py's evaluator).
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

OBJ = "arn:aws:s3:::bkt/k"
ERROR = "error"  # LocalStack raises InternalError


def _allow(action, resource, **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


CASES = [
    # (id, identity statements, boundary statements, action, context, aws, localstack, wrong)
    (
        "exact-allow",
        [_allow(["s3:GetObject"], [OBJ])],
        None,
        "s3:GetObject",
        None,
        "allowed",
        "allowed",
        False,
    ),
    (
        "not-listed",
        [_allow(["s3:GetObject"], [OBJ])],
        None,
        "s3:PutObject",
        None,
        "implicitDeny",
        "explicitDeny",
        True,
    ),
    (
        "action-wildcard",
        [_allow("s3:*", OBJ)],
        None,
        "s3:GetObject",
        None,
        "allowed",
        "explicitDeny",
        True,
    ),
    (
        "resource-star",
        [_allow("s3:GetObject", "*")],
        None,
        "s3:GetObject",
        None,
        "allowed",
        "explicitDeny",
        True,
    ),
    (
        "resource-wildcard",
        [_allow("s3:GetObject", "arn:aws:s3:::bkt/*")],
        None,
        "s3:GetObject",
        None,
        "allowed",
        "explicitDeny",
        True,
    ),
    (
        "deny-overrides",
        [
            _allow("s3:GetObject", OBJ),
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": OBJ},
        ],
        None,
        "s3:GetObject",
        None,
        "explicitDeny",
        "allowed",
        True,
    ),
    (
        "substring-action",
        [_allow("s3:GetObjectAcl", OBJ)],
        None,
        "s3:GetObject",
        None,
        "implicitDeny",
        "allowed",
        True,
    ),
    (
        "action-case",
        [_allow("S3:getobject", OBJ)],
        None,
        "s3:GetObject",
        None,
        "allowed",
        "explicitDeny",
        True,
    ),
    (
        "notaction",
        [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}],
        None,
        "s3:GetObject",
        None,
        "allowed",
        ERROR,
        True,
    ),
    (
        "condition-unmet",
        [_allow("s3:GetObject", OBJ, Condition={"StringEquals": {"aws:username": "x"}})],
        None,
        "s3:GetObject",
        None,
        "implicitDeny",
        "allowed",
        True,
    ),
    (
        "boundary-excludes",
        [_allow("s3:GetObject", OBJ)],
        [_allow("s3:ListBucket", "*")],
        "s3:GetObject",
        None,
        "implicitDeny",
        "allowed",
        True,
    ),
]


def _doc(statements):
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _decision(iam, arn, action, resource, **kwargs):
    try:
        result = iam.simulate_principal_policy(
            PolicySourceArn=arn, ActionNames=[action], ResourceArns=[resource], **kwargs
        )
    except ClientError:
        return ERROR
    return result["EvaluationResults"][0]["EvalDecision"]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_simulator_case(aws, account_id, case):
    name, identity, boundary, action, _context, aws_says, localstack_says, wrong = case
    iam = aws.client("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=_doc(identity))
    if boundary:
        arn = iam.create_policy(PolicyName=f"{name}-b", PolicyDocument=_doc(boundary))["Policy"][
            "Arn"
        ]
        iam.put_user_permissions_boundary(UserName=name, PermissionsBoundary=arn)
    got = _decision(iam, f"arn:aws:iam::{account_id}:user/{name}", action, OBJ)
    assert got == localstack_says, f"LocalStack's simulator changed for {name}: {got}"
    assert (got != aws_says) == wrong, f"{name}: WRONG flag out of date"


def test_group_policies_are_ignored_for_a_user(aws, account_id):
    """AWS: allowed (the group's policy applies to its members). WRONG: LocalStack ignores groups."""
    iam = aws.client("iam")
    iam.create_group(GroupName="g")
    iam.put_group_policy(
        GroupName="g", PolicyName="p", PolicyDocument=_doc([_allow("s3:PutObject", OBJ)])
    )
    iam.create_user(UserName="member")
    iam.add_user_to_group(GroupName="g", UserName="member")
    arn = f"arn:aws:iam::{account_id}:user/member"
    assert _decision(iam, arn, "s3:PutObject", OBJ) == "explicitDeny"


def test_context_entries_and_resource_policies_are_ignored(aws, account_id):
    """AWS: a resource-policy Deny wins. WRONG: LocalStack ignores ResourcePolicy."""
    iam = aws.client("iam")
    iam.create_user(UserName="u")
    iam.put_user_policy(
        UserName="u", PolicyName="p", PolicyDocument=_doc([_allow("s3:GetObject", OBJ)])
    )
    deny = _doc([{"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": OBJ}])
    arn = f"arn:aws:iam::{account_id}:user/u"
    assert _decision(iam, arn, "s3:GetObject", OBJ, ResourcePolicy=deny) == "allowed"


def test_role_trust_policy_breaks_sts_actions(aws, account_id):
    """WRONG: the trust policy is read as an identity policy; its statement has no Resource, so
    simulating sts:AssumeRole on a role raises InternalError."""
    iam = aws.client("iam")
    trust = _doc(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ]
    )
    iam.create_role(RoleName="r", AssumeRolePolicyDocument=trust)
    assert _decision(iam, f"arn:aws:iam::{account_id}:role/r", "sts:AssumeRole", OBJ) == ERROR


def test_simulate_custom_policy_is_not_implemented(aws):
    iam = aws.client("iam")
    with pytest.raises(ClientError):
        iam.simulate_custom_policy(
            PolicyInputList=[_doc([_allow("s3:GetObject", "*")])],
            ActionNames=["s3:GetObject"],
            ResourceArns=["*"],
        )
