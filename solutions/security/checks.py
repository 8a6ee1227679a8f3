"""State checks for the security lab, run by the grader outside the student's kernel.

The emulator stores IAM policies but enforces none of them, and LocalStack's policy simulator
does not follow AWS's evaluation logic (it ignores wildcards, Deny statements, conditions,
NotAction, groups and permission boundaries: see tests/emulator/test_iam_simulator.py). So these
checks grade a policy by its *effect*: they read the policies the emulator stores for a principal
and evaluate requests with :func:`decide`, a small implementation of AWS's documented logic for
one account (explicit deny, then allow, else implicit deny; identity policies bounded by a
permissions boundary; Action/NotAction, Resource/NotResource, Principal, the common condition
operators with IfExists and policy variables). KMS, Parameter Store and Secrets Manager are graded
by what the emulator really does: decrypting with the encryption context, stored types and key
ids, versions and staging labels.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import re

from grader.statecheck import Parts, state_check

AUDITOR_ACCOUNT = "210987654321"
OTHER_ACCOUNT = "999988887777"
APP_CONFIG = b'{"feature_flags": {"new_checkout": true}, "payment_api_key": "pk_live_51Hx9"}'

ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY = "allowed", "explicitDeny", "implicitDeny"


# -- policy evaluation (AWS's documented logic, for one account) ---------------------------------


def _list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _doc(document):
    if isinstance(document, str):
        document = json.loads(document)
    return _list((document or {}).get("Statement", []))


_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def _substitute(text, context):
    def value(match):
        name = match.group(1)
        if name in ("*", "?", "$"):
            return name
        found = _list(context.get(name.lower()))
        return str(found[0]) if found else match.group(0)

    return _VARIABLE.sub(value, str(text))


def _like(pattern, value, *, case=True):
    if not case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def _action_matches(patterns, action):
    return any(_like(p, action, case=False) for p in _list(patterns))


def _resource_matches(patterns, resource, context):
    return any(_like(_substitute(p, context), resource) for p in _list(patterns))


def _principal_matches(principal, caller):
    """``caller`` is {"AWS": arn} or {"Service": name}."""
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for kind, who in caller.items():
        for entry in _list(principal.get(kind)):
            if entry == "*" or entry == who:
                return True
            if kind == "AWS":
                account = who.split(":")[4] if who.count(":") >= 5 else who
                if entry in (account, f"arn:aws:iam::{account}:root"):
                    return True
    return False


def _bool(value):
    return str(value).lower() == "true"


def _compare(operator, wanted, present, context):
    wanted = [_substitute(w, context) for w in _list(wanted)]
    if operator in ("StringEquals", "ArnEquals"):
        return any(p == w for p in present for w in wanted)
    if operator == "StringEqualsIgnoreCase":
        return any(p.lower() == w.lower() for p in present for w in wanted)
    if operator in ("StringLike", "ArnLike"):
        return any(_like(w, p) for p in present for w in wanted)
    if operator == "Bool":
        return any(_bool(p) == _bool(w) for p in present for w in wanted)
    if operator.startswith("Numeric"):
        test = {
            "NumericEquals": lambda a, b: a == b,
            "NumericLessThan": lambda a, b: a < b,
            "NumericLessThanEquals": lambda a, b: a <= b,
            "NumericGreaterThan": lambda a, b: a > b,
            "NumericGreaterThanEquals": lambda a, b: a >= b,
        }[operator]
        return any(test(float(p), float(w)) for p in present for w in wanted)
    raise ValueError(f"condition operator {operator} is not evaluated by this lab's checks")


_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
}


def _condition_holds(condition, context):
    for raw_operator, block in (condition or {}).items():
        operator, if_exists = raw_operator, raw_operator.endswith("IfExists")
        if if_exists:
            operator = operator[: -len("IfExists")]
        for key, wanted in block.items():
            present = [str(v) for v in _list(context.get(key.lower()))]
            if operator == "Null":
                if _bool(_list(wanted)[0]) != (not present):
                    return False
                continue
            if not present:
                if if_exists or operator in _NEGATED:
                    continue
                return False
            if operator in _NEGATED:
                if _compare(_NEGATED[operator], wanted, present, context):
                    return False
            elif not _compare(operator, wanted, present, context):
                return False
    return True


def _statement_applies(statement, action, resource, context, caller=None):
    if "Action" in statement and not _action_matches(statement["Action"], action):
        return False
    if "NotAction" in statement and _action_matches(statement["NotAction"], action):
        return False
    if "Resource" in statement and not _resource_matches(statement["Resource"], resource, context):
        return False
    if "NotResource" in statement and _resource_matches(
        statement["NotResource"], resource, context
    ):
        return False
    if caller is not None:
        if "Principal" in statement and not _principal_matches(statement["Principal"], caller):
            return False
        if "NotPrincipal" in statement and _principal_matches(statement["NotPrincipal"], caller):
            return False
    return _condition_holds(statement.get("Condition"), context)


def _effect(statements, action, resource, context, caller=None):
    """ALLOWED, EXPLICIT_DENY or IMPLICIT_DENY for one set of statements."""
    matched = [s for s in statements if _statement_applies(s, action, resource, context, caller)]
    if any(s.get("Effect") == "Deny" for s in matched):
        return EXPLICIT_DENY
    if any(s.get("Effect") == "Allow" for s in matched):
        return ALLOWED
    return IMPLICIT_DENY


def decide(
    identity, action, resource, context=None, boundary=None, resource_policy=None, caller=None
):
    """AWS's decision for a request within one account: an explicit deny in any policy wins;
    else the identity policies (bounded by the permissions boundary, if any) or a resource policy
    naming the caller must allow; else the request is implicitly denied."""
    context = {k.lower(): v for k, v in (context or {}).items()}
    if caller and "AWS" in caller:
        context.setdefault("aws:principalarn", caller["AWS"])
    results = [_effect(identity, action, resource, context)]
    if boundary is not None:
        results.append(_effect(boundary, action, resource, context))
    if resource_policy is not None:
        results.append(_effect(resource_policy, action, resource, context, caller))
    if EXPLICIT_DENY in results:
        return EXPLICIT_DENY
    identity_allows = results[0] == ALLOWED and (boundary is None or results[1] == ALLOWED)
    resource_allows = resource_policy is not None and results[-1] == ALLOWED
    return ALLOWED if identity_allows or resource_allows else IMPLICIT_DENY


def trust_decision(trust_policy, caller, context=None):
    """Whether a role's trust policy lets ``caller`` call sts:AssumeRole (the caller's own
    account is assumed to allow it)."""
    context = {k.lower(): v for k, v in (context or {}).items()}
    return _effect(_doc(trust_policy), "sts:AssumeRole", "*", context, caller)


# -- reading what IAM stores ----------------------------------------------------------------------


def _managed(iam, arn):
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    return _doc(
        iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    )


def _attached(iam, kind, name):
    lister = getattr(iam, f"list_attached_{kind}_policies")
    return [
        p["PolicyArn"] for p in lister(**{f"{kind.capitalize()}Name": name})["AttachedPolicies"]
    ]


def _inline(iam, kind, name):
    names = getattr(iam, f"list_{kind}_policies")(**{f"{kind.capitalize()}Name": name})
    getter = getattr(iam, f"get_{kind}_policy")
    statements = []
    for policy in names["PolicyNames"]:
        document = getter(**{f"{kind.capitalize()}Name": name, "PolicyName": policy})
        statements += _doc(document["PolicyDocument"])
    return statements


def _statements_of(iam, kind, name):
    statements = _inline(iam, kind, name)
    for arn in _attached(iam, kind, name):
        statements += _managed(iam, arn)
    return statements


def role_policies(iam, role):
    """(identity statements, boundary statements or None, trust policy) of a role."""
    data = iam.get_role(RoleName=role)["Role"]
    boundary = data.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
    return (
        _statements_of(iam, "role", role),
        _managed(iam, boundary) if boundary else None,
        data["AssumeRolePolicyDocument"],
    )


def user_policies(iam, user):
    """(identity statements including the user's groups', boundary statements or None)."""
    data = iam.get_user(UserName=user)["User"]
    statements = _statements_of(iam, "user", user)
    for group in iam.list_groups_for_user(UserName=user)["Groups"]:
        statements += _statements_of(iam, "group", group["GroupName"])
    boundary = data.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
    return statements, (_managed(iam, boundary) if boundary else None)


def _allowed_all(identity, requests, boundary=None):
    return all(decide(identity, a, r, c, boundary) == ALLOWED for a, r, c in requests)


def _denied_all(identity, requests, boundary=None):
    return all(decide(identity, a, r, c, boundary) != ALLOWED for a, r, c in requests)


# -- the checks ------------------------------------------------------------------------------------


@state_check("ex1_state")
def function_role(aws, prefix):
    """The orders function's role: trusted by Lambda only (1/4), may write the orders table
    (1/4) and its own logs (1/4), and nothing more (1/4)."""
    iam, region = aws.client("iam"), aws.region_name
    account = aws.client("sts").get_caller_identity()["Account"]
    identity, _, trust = role_policies(iam, f"{prefix}-orders-fn")
    table = f"arn:aws:dynamodb:{region}:{account}:table/{prefix}-orders"
    logs = f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{prefix}-orders"
    check = Parts()
    check.part(
        "the trust policy for Lambda",
        lambda: (
            trust_decision(trust, {"Service": "lambda.amazonaws.com"}) == ALLOWED
            and trust_decision(trust, {"Service": "ec2.amazonaws.com"}) != ALLOWED
            and trust_decision(trust, {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"}) != ALLOWED
        ),
        why="the trust policy must let lambda.amazonaws.com (and no one else) call sts:AssumeRole",
    )
    check.part(
        "reading and writing the orders table",
        lambda: _allowed_all(
            identity,
            [
                (a, table, {})
                for a in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
            ],
        ),
        why=f"GetItem, PutItem and UpdateItem on {table} are not all allowed",
    )
    check.part(
        "writing the function's logs",
        lambda: _allowed_all(
            identity,
            [
                ("logs:CreateLogStream", f"{logs}:*", {}),
                ("logs:PutLogEvents", f"{logs}:log-stream:2026/12/01/abc", {}),
            ],
        ),
        why="logs:CreateLogStream and logs:PutLogEvents on the function's log group are not allowed",
    )
    check.part(
        "least privilege",
        lambda: _denied_all(
            identity,
            [
                ("dynamodb:DeleteTable", table, {}),
                ("dynamodb:Scan", table, {}),
                ("dynamodb:PutItem", f"{table[: -len('-orders')]}-payments", {}),
                ("s3:GetObject", "arn:aws:s3:::any-bucket/any-key", {}),
                ("iam:PassRole", "*", {}),
            ],
        ),
        why="the role can do more than it needs (DeleteTable, Scan, other tables or services)",
    )
    return check


@state_check("ex2_state")
def developer_boundary(aws, prefix):
    """The boundary is set (1/4); the developer may work with S3, DynamoDB and Lambda (1/4), but
    not IAM, KMS key deletion or EC2 (1/4), and cannot lift the boundary (1/4)."""
    iam = aws.client("iam")
    identity, boundary, _ = role_policies(iam, f"{prefix}-developer")
    check = Parts()
    capped = check.part(
        "the permissions boundary",
        lambda: iam.get_role(RoleName=f"{prefix}-developer")["Role"]["PermissionsBoundary"][
            "PermissionsBoundaryArn"
        ].endswith(f":policy/{prefix}-dev-boundary"),
        why=f"the role's permissions boundary is not the policy {prefix}-dev-boundary",
    )
    work = [
        ("s3:PutObject", f"arn:aws:s3:::{prefix}-team-home/x", {}),
        ("dynamodb:Query", "arn:aws:dynamodb:us-east-1:123456789012:table/t", {}),
        ("lambda:UpdateFunctionCode", "arn:aws:lambda:us-east-1:123456789012:function:f", {}),
    ]
    check.part(
        "everyday developer work",
        lambda: _allowed_all(identity, work, boundary),
        requires=capped,
        why="S3, DynamoDB and Lambda work is not allowed by both the role's policy and the boundary",
    )
    check.part(
        "what the boundary keeps out",
        lambda: _denied_all(
            identity,
            [
                ("iam:CreateUser", "*", {}),
                ("kms:ScheduleKeyDeletion", "*", {}),
                ("ec2:RunInstances", "*", {}),
            ],
            boundary,
        ),
        requires=capped,
        why="the developer may still create users, schedule KMS key deletion or run instances",
    )
    role_arn = f"arn:aws:iam::000000000000:role/{prefix}-developer"
    check.part(
        "the deny on removing the boundary",
        lambda: all(
            decide(identity, action, role_arn, {}, boundary) == EXPLICIT_DENY
            for action in ("iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary")
        ),
        requires=capped,
        why="the boundary must explicitly deny iam:DeleteRolePermissionsBoundary and "
        "iam:PutRolePermissionsBoundary",
    )
    return check


def _home_requests(prefix, user, other):
    bucket = f"arn:aws:s3:::{prefix}-team-home"
    own = {"aws:username": user, "aws:MultiFactorAuthPresent": "true"}
    return (
        [
            ("s3:GetObject", f"{bucket}/home/{user}/notes.txt", own),
            ("s3:PutObject", f"{bucket}/home/{user}/notes.txt", own),
            ("s3:ListBucket", bucket, {**own, "s3:prefix": f"home/{user}/"}),
        ],
        [
            ("s3:GetObject", f"{bucket}/home/{other}/notes.txt", own),
            ("s3:ListBucket", bucket, {**own, "s3:prefix": "home/"}),
            ("s3:DeleteBucket", bucket, own),
        ],
    )


@state_check("ex3_state")
def home_folders(aws, prefix):
    """Both users in the group (1/3); each may use their own home folder (1/3) and not the
    other's (1/3), from one group policy with ${aws:username}."""
    iam = aws.client("iam")
    alice, bob = f"{prefix}-alice", f"{prefix}-bob"
    group = f"{prefix}-developers"
    check = Parts()
    members = check.part(
        "alice and bob in the developers group",
        lambda: {u["UserName"] for u in iam.get_group(GroupName=group)["Users"]} >= {alice, bob},
        why=f"{alice} and {bob} must both be members of {group}",
    )

    def own_ok():
        for user, other in ((alice, bob), (bob, alice)):
            identity, boundary = user_policies(iam, user)
            allowed, _ = _home_requests(prefix, user, other)
            if not _allowed_all(identity, allowed, boundary):
                return False
        return not _inline(iam, "user", alice) and not _inline(iam, "user", bob)

    def others_denied():
        for user, other in ((alice, bob), (bob, alice)):
            identity, boundary = user_policies(iam, user)
            _, denied = _home_requests(prefix, user, other)
            if not _denied_all(identity, denied, boundary):
                return False
        return True

    check.part(
        "each user's own home folder",
        own_ok,
        requires=members,
        why="each user must be able to list, read and write home/<their user name>/ through the "
        "group's policy (no per-user policies)",
    )
    check.part(
        "no access to another user's folder",
        others_denied,
        requires=members,
        why="a user can read another user's folder, list the whole bucket or delete it",
    )
    return check


MFA_FREE = ("iam:ChangePassword", "iam:GetUser", "iam:EnableMFADevice", "sts:GetSessionToken")


@state_check("ex4_state")
def mfa_guard(aws, prefix):
    """Without MFA every action but the MFA set-up ones is explicitly denied (1/2); with MFA
    nothing is denied by the guard (1/4); the set-up actions are never denied (1/4)."""
    iam = aws.client("iam")
    arn = f"arn:aws:iam::{aws.client('sts').get_caller_identity()['Account']}:policy/{prefix}-require-mfa"
    group = f"{prefix}-developers"
    attached = _attached(iam, "group", group)
    assert arn in attached, f"the policy {prefix}-require-mfa is not attached to {group}"
    guard = _managed(iam, arn)
    no_mfa = {"aws:multifactorauthpresent": "false"}
    with_mfa = {"aws:multifactorauthpresent": "true"}
    work = [("s3:GetObject", "arn:aws:s3:::b/k"), ("dynamodb:PutItem", "*"), ("iam:ListUsers", "*")]
    check = Parts()
    check.part(
        "the deny without MFA",
        lambda: (
            all(_effect(guard, a, r, no_mfa) == EXPLICIT_DENY for a, r in work)
            and all(_effect(guard, a, r, {}) == EXPLICIT_DENY for a, r in work)
        ),
        weight=2,
        why="requests without MFA (aws:MultiFactorAuthPresent false or absent) are not "
        "explicitly denied",
    )
    check.part(
        "no deny with MFA",
        lambda: all(_effect(guard, a, r, with_mfa) != EXPLICIT_DENY for a, r in work),
        why="the policy denies requests even when they were made with MFA",
    )
    check.part(
        "the MFA set-up actions",
        lambda: all(_effect(guard, a, "*", {}) != EXPLICIT_DENY for a in MFA_FREE),
        why="without MFA a user must still be able to " + ", ".join(MFA_FREE) + " (use NotAction)",
    )
    return check


@state_check("ex5_state")
def auditor_role(aws, prefix):
    """The auditor account with the external id may assume the role (1/4), without it or from
    another account not (1/4 each), and the role can only read security settings (1/4)."""
    iam = aws.client("iam")
    role = f"{prefix}-auditor"
    identity, _, trust = role_policies(iam, role)
    external_id = f"{prefix}-audit-7f3a"
    auditor = {"AWS": f"arn:aws:iam::{AUDITOR_ACCOUNT}:root"}
    check = Parts()
    trusted = check.part(
        "the auditor account with the external id",
        lambda: trust_decision(trust, auditor, {"sts:ExternalId": external_id}) == ALLOWED,
        why=f"account {AUDITOR_ACCOUNT} with the external id may not assume the role",
    )
    check.part(
        "the external-id condition",
        lambda: (
            trust_decision(trust, auditor) != ALLOWED
            and trust_decision(trust, auditor, {"sts:ExternalId": "guess"}) != ALLOWED
        ),
        requires=trusted,
        why="the auditor account may assume the role without the right sts:ExternalId",
    )
    check.part(
        "no one else",
        lambda: (
            trust_decision(
                trust,
                {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
                {"sts:ExternalId": external_id},
            )
            != ALLOWED
            and trust_decision(trust, {"Service": "lambda.amazonaws.com"}) != ALLOWED
        ),
        requires=trusted,
        why="another account or a service may assume the auditor role",
    )
    check.part(
        "read-only security access (SecurityAudit)",
        lambda: (
            "arn:aws:iam::aws:policy/SecurityAudit" in _attached(iam, "role", role)
            and _denied_all(
                identity,
                [("iam:CreateUser", "*", {}), ("s3:PutObject", "arn:aws:s3:::b/k", {})],
            )
        ),
        why="attach SecurityAudit and nothing that lets the auditor change anything",
    )
    return check


def _config_key(kms, prefix):
    return kms.describe_key(KeyId=f"alias/{prefix}-config")["KeyMetadata"]


@state_check("ex6_state")
def envelope(aws, prefix):
    """A rotating customer managed key behind the alias (1/4), the data key bound to the
    encryption context (1/4), the config decrypting to the given bytes (1/4), the grant (1/4)."""
    kms, s3, iam = aws.client("kms"), aws.client("s3"), aws.client("iam")
    context = {"app": f"{prefix}-orders", "purpose": "config"}
    check = Parts()

    def key_ok():
        key = _config_key(kms, prefix)
        return (
            key["KeyManager"] == "CUSTOMER"
            and key["KeySpec"] == "SYMMETRIC_DEFAULT"
            and key["KeyState"] == "Enabled"
            and kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]
        )

    key = check.part(
        "the rotating customer managed key",
        key_ok,
        why=f"alias/{prefix}-config must name an enabled symmetric customer managed key with "
        "automatic rotation on",
    )
    envelope_doc = {}

    def bound():
        body = s3.get_object(Bucket=f"{prefix}-config", Key="orders/config.enc.json")["Body"]
        envelope_doc.update(json.loads(body.read(65536)))
        blob = base64.b64decode(envelope_doc["encrypted_key"])
        out = kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)
        try:
            kms.decrypt(CiphertextBlob=blob)
        except kms.exceptions.InvalidCiphertextException:
            pass
        else:
            return False
        envelope_doc["plain_key"] = out["Plaintext"]
        return out["KeyId"] == _config_key(kms, prefix)["Arn"]

    data_key = check.part(
        "the data key bound to the encryption context",
        bound,
        requires=key,
        why="the envelope's encrypted_key is not a data key of the config key that decrypts "
        "with (and only with) the encryption context",
    )

    def decrypts():
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        plain = AESGCM(envelope_doc["plain_key"]).decrypt(
            base64.b64decode(envelope_doc["nonce"]),
            base64.b64decode(envelope_doc["ciphertext"]),
            None,
        )
        return plain == APP_CONFIG

    check.part(
        "the encrypted configuration",
        decrypts,
        requires=data_key,
        why="the envelope's ciphertext does not decrypt (AES-GCM, its nonce) to app_config",
    )

    def grant_ok():
        role_arn = iam.get_role(RoleName=f"{prefix}-orders-fn")["Role"]["Arn"]
        for grant in kms.list_grants(KeyId=_config_key(kms, prefix)["KeyId"])["Grants"]:
            subset = grant.get("Constraints", {}).get("EncryptionContextSubset")
            if (
                grant["GranteePrincipal"] == role_arn
                and set(grant["Operations"]) == {"Decrypt"}
                and subset == {"app": f"{prefix}-orders"}
            ):
                return True
        return False

    check.part(
        "the grant to the function role",
        grant_ok,
        requires=key,
        why="no grant lets the orders function's role Decrypt (only) with the encryption "
        f"context subset app={prefix}-orders",
    )
    return check


PARAMETERS = {
    "db/host": ("String", "orders-db.internal.example.com"),
    "db/port": ("String", "5432"),
    "allowed-origins": ("StringList", "https://shop.example.com,https://admin.example.com"),
    "db/password": ("SecureString", "correct-horse-battery-staple"),
}


@state_check("ex7_state")
def parameters(aws, prefix):
    """The three plain parameters (1/4 each... the String ones together), the StringList and the
    SecureString under the config key."""
    ssm, kms = aws.client("ssm"), aws.client("kms")
    root = f"/{prefix}/orders/"
    found = {
        p["Name"]: p
        for p in ssm.get_parameters_by_path(Path=root, Recursive=True, WithDecryption=True)[
            "Parameters"
        ]
    }
    described = {
        p["Name"]: p
        for p in ssm.describe_parameters(
            ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [root.rstrip("/")]}]
        )["Parameters"]
    }

    def is_ok(name):
        kind, value = PARAMETERS[name]
        got = found.get(root + name, {})
        return got.get("Type") == kind and got.get("Value") == value

    def secure_key():
        key = described.get(root + "db/password", {}).get("KeyId", "")
        config = _config_key(kms, prefix)
        return key in (f"alias/{prefix}-config", config["KeyId"], config["Arn"])

    check = Parts()
    check.part(
        "the String parameters db/host and db/port",
        lambda: is_ok("db/host") and is_ok("db/port"),
        why=f"{root}db/host and {root}db/port are not String parameters with the given values",
    )
    check.part(
        "the StringList allowed-origins",
        lambda: is_ok("allowed-origins"),
        why=f"{root}allowed-origins is not a StringList with the two given origins",
    )
    secure = check.part(
        "the SecureString db/password",
        lambda: is_ok("db/password"),
        why=f"{root}db/password is not a SecureString holding the given password",
    )
    check.part(
        "db/password encrypted with the config key",
        secure_key,
        requires=secure,
        why=f"{root}db/password is encrypted with another key than alias/{prefix}-config",
    )
    return check


def _secret_value(sm, name, stage):
    return json.loads(sm.get_secret_value(SecretId=name, VersionStage=stage)["SecretString"])


@state_check("ex8_state")
def db_secret(aws, prefix):
    """The secret under the config key (1/4), rotated once: two versions with AWSCURRENT and
    AWSPREVIOUS and different passwords (1/4 each), a resource policy that lets only the function
    role read it (1/4)."""
    sm, kms, iam = aws.client("secretsmanager"), aws.client("kms"), aws.client("iam")
    name = f"{prefix}/orders/db-credentials"
    described = sm.describe_secret(SecretId=name)
    check = Parts()
    check.part(
        "the secret under the config key",
        lambda: (
            described.get("KmsKeyId")
            in (
                f"alias/{prefix}-config",
                *(lambda k: (k["KeyId"], k["Arn"]))(_config_key(kms, prefix)),
            )
        ),
        why=f"the secret is not encrypted with alias/{prefix}-config",
    )
    current = check.part(
        "the current credentials",
        lambda: (lambda v: v.get("username") == "orders_app" and len(v.get("password", "")) == 32)(
            _secret_value(sm, name, "AWSCURRENT")
        ),
        why="AWSCURRENT must hold username orders_app and a 32-character password",
    )
    check.part(
        "the previous version",
        lambda: (
            _secret_value(sm, name, "AWSPREVIOUS")["password"]
            != _secret_value(sm, name, "AWSCURRENT")["password"]
            and _secret_value(sm, name, "AWSPREVIOUS").get("username") == "orders_app"
        ),
        requires=current,
        why="there is no AWSPREVIOUS version with another password (put a new value once)",
    )

    def policy_ok():
        policy = _doc(sm.get_resource_policy(SecretId=name)["ResourcePolicy"])
        role = iam.get_role(RoleName=f"{prefix}-orders-fn")["Role"]["Arn"]
        other = role.rsplit("/", 1)[0] + f"/{prefix}-developer"
        arn = described["ARN"]
        read = "secretsmanager:GetSecretValue"
        return (
            decide([], read, arn, resource_policy=policy, caller={"AWS": role}) == ALLOWED
            and decide([], read, arn, resource_policy=policy, caller={"AWS": other}) != ALLOWED
            and decide(
                [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                read,
                arn,
                resource_policy=policy,
                caller={"AWS": other},
            )
            == EXPLICIT_DENY
        )

    check.part(
        "the resource policy",
        policy_ok,
        why="the secret's policy must allow the orders function's role GetSecretValue and "
        "explicitly deny every other principal",
    )
    return check
