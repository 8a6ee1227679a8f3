"""Keeps one account's AWS requests away from other accounts' resources.

LocalStack selects the account of a request from its access key id and then, for many services,
looks a resource up wherever its name, URL or ARN says: account B, with its own credentials, can
read, change or delete account A's S3 buckets (bucket names are global), SQS queues (by queue
URL), Lambda functions, SNS topics and KMS keys (by ARN), or assume A's IAM roles. AWS refuses all
of these unless A granted access with a policy, which the labs never do across accounts.
:func:`check` refuses, for the *acting* account of a request:

- any request made as LocalStack's internal account (``INTERNAL_RESOURCE_ACCOUNT``);
- any ARN in the request's parameters that names another account (members holding data rather
  than references, such as message bodies, items, policies or tags, are not looked at), and Lambda
  partial ARNs (``123456789012:function:name``);
- SQS queue URLs and ``QueueOwnerAWSAccountId`` of another account;
- S3: buckets named like LocalStack's internal ones (``awslambda-*``: Lambda's code store, whose
  keys are ``snapshots/<account>/<function>``), and buckets owned by another account, whether
  named by ``Bucket`` or ``CopySource`` of an S3 request, by an S3 ARN, or by a bucket parameter
  of another service (Lambda's ``Code.S3Bucket``, ...), except reads the owner made public (a
  bucket policy allowing ``Principal: "*"`` or a public-read ACL, not overridden by the bucket's
  public access block): anonymous and cross-account ``GetObject``/``HeadObject``/``ListObjects``
  then work as in AWS.

A student's request acts as its own account (``context.account_id``; without credentials that is
the default account 000000000000). LocalStack's internal calls (see :mod:`cloudlabs_emulator.guard`)
act on behalf of the account that owns the resource that caused them, their DTO's ``source_arn``
(an SNS topic delivering to SQS, an API Gateway API calling its integration, an S3 bucket sending
notifications, an EventBridge rule, ...), or else of the real account whose credentials they use;
those made with LocalStack's own credentials and no source (Lambda reading its code bucket) are not
checked. Internal calls may reach resources of the default account, and never mix two accounts.
Without this, an API Gateway ``AWS`` integration (``arn:aws:apigateway:<region>:s3:path/<bucket>/
<key>``) or a state machine would read other accounts' resources for the student.
"""

from __future__ import annotations

import fnmatch
import json
import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

from localstack import config
from localstack.aws.api import RequestContext
from localstack.constants import DEFAULT_AWS_ACCOUNT_ID

#: Bucket name prefixes of LocalStack's internal buckets (awslambda-<region>-tasks: Lambda code).
INTERNAL_BUCKET_PREFIXES = ("awslambda-",)

#: Request members that hold data (which may well look like an ARN) rather than references.
DATA_MEMBERS = frozenset(
    {
        "Body",
        "Description",
        "Detail",
        "ExpressionAttributeValues",
        "Item",
        "Items",
        "Key",
        "Message",
        "MessageAttributes",
        "MessageBody",
        "Payload",
        "Policy",
        "PolicyDocument",
        "Principal",
        "Resources",
        "SecretString",
        "Tags",
        "TagList",
        "Value",
        "tags",
    }
)
#: Members of other services' requests that name an S3 bucket.
BUCKET_MEMBERS = frozenset({"S3Bucket", "S3BucketName", "BucketName", "s3BucketName"})

_ARN = re.compile(r"arn:aws[a-z-]*:([a-z0-9-]+):[a-z0-9-]*:(\d{12}):")
_S3_ARN = re.compile(r"arn:aws[a-z-]*:s3:::([^/*]+)")
_LAMBDA_PARTIAL_ARN = re.compile(r"(\d{12}):function:")
_QUEUE_URL_ACCOUNT = re.compile(r"/(\d{12})/[^/]+/?$")

_PUBLIC_READS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
}
_PUBLIC_GROUPS = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)


def is_real(account: str | None) -> bool:
    """A student's (or the grader's) account: not the default or LocalStack's internal one."""
    return bool(account) and account not in (
        DEFAULT_AWS_ACCOUNT_ID,
        config.INTERNAL_RESOURCE_ACCOUNT,
    )


def acting_account(context: RequestContext, source_arn: Any) -> str | None:
    """On whose behalf an internal call acts (see the module docstring), or None."""
    owner = None
    if isinstance(source_arn, str):
        if match := _ARN.match(source_arn):
            owner = match.group(2)
        elif match := _S3_ARN.match(source_arn):
            owner = _bucket_owner(context, match.group(1))
    if is_real(owner):
        return owner
    return context.account_id if is_real(context.account_id) else None


class _Check:
    def __init__(self, context: RequestContext, account: str, internal: bool) -> None:
        self.context = context
        self.account = account
        self.internal = internal

    def foreign(self, owner: str | None) -> bool:
        """Whether a resource of ``owner`` is out of this request's reach."""
        if owner is None or owner == self.account:
            return False
        return is_real(owner) or not self.internal

    def run(self) -> str | None:
        context, account = self.context, self.account
        if not self.internal and context.account_id == config.INTERNAL_RESOURCE_ACCOUNT:
            return f"account {context.account_id} is the emulator's own"
        if self.internal and is_real(context.account_id) and context.account_id != account:
            return f"a call for account {account} with account {context.account_id}'s credentials"
        params = context.service_request or {}
        service = context.service.service_name
        if service == "s3":
            return self.s3(params) or self.references(params)
        if service in ("sqs", "sqs-query"):
            return self.sqs(params) or self.references(params)
        if service == "lambda":
            name = params.get("FunctionName")
            match = _LAMBDA_PARTIAL_ARN.match(name) if isinstance(name, str) else None
            if match and self.foreign(match.group(1)):
                return f"{name} belongs to another account"
        return self.references(params)

    def references(self, params: dict[str, Any]) -> str | None:
        for key, value in _strings(params):
            if match := _ARN.match(value):
                if self.foreign(match.group(2)):
                    return f"{value} belongs to another account"
                continue
            bucket = None
            if match := _S3_ARN.match(value):
                bucket = match.group(1)
            elif key in BUCKET_MEMBERS:
                bucket = value
            if bucket and (problem := self.bucket(bucket, "")):
                return problem
        return None

    def sqs(self, params: dict[str, Any]) -> str | None:
        url = params.get("QueueUrl")
        if isinstance(url, str) and self.foreign(queue_url_account(url)):
            return f"queue {url} belongs to another account"
        owner = params.get("QueueOwnerAWSAccountId")
        if isinstance(owner, str) and self.foreign(owner):
            return f"account {owner}'s queues are not yours"
        return None

    def s3(self, params: dict[str, Any]) -> str | None:
        operation = self.context.operation.name
        bucket = params.get("Bucket")
        if isinstance(bucket, str) and bucket:
            if operation == "CreateBucket":  # an existing name is refused by S3 itself
                if is_internal_bucket(bucket):
                    return f"bucket {bucket} is the emulator's own"
            elif problem := self.bucket(bucket, operation, params):
                return problem
        source = _copy_source_bucket(params.get("CopySource"))
        if source:
            return self.bucket(source, "")
        return None

    def bucket(self, name: str, operation: str, params: dict[str, Any] | None = None) -> str | None:
        if is_internal_bucket(name):
            return f"bucket {name} is the emulator's own"
        owner = _bucket_owner(self.context, name)
        if owner == config.INTERNAL_RESOURCE_ACCOUNT:
            return f"bucket {name} is the emulator's own"
        if not self.foreign(owner):
            return None
        if operation and _public_read(self.context, name, owner, operation, params or {}):
            return None
        return f"bucket {name} belongs to another account"


def check(
    context: RequestContext, *, account: str | None = None, internal: bool = False
) -> str | None:
    """Why this request must be refused, or None. ``account`` is the acting account (a student's
    request: its own, the default; an internal call: :func:`acting_account`)."""
    return _Check(context, account or context.account_id, internal).run()


def _strings(value: Any, key: str = "", depth: int = 0) -> Iterator[tuple[str, str]]:
    """(member name, string) for every string in a request's parameters, except data members."""
    if depth > 12:
        return
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for name, item in value.items():
            if name not in DATA_MEMBERS:
                yield from _strings(item, str(name), depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item, key, depth + 1)


def queue_url_account(queue_url: str) -> str | None:
    match = _QUEUE_URL_ACCOUNT.search(urllib.parse.urlsplit(queue_url).path)
    return match.group(1) if match else None


# -- S3 ------------------------------------------------------------------------------------------


def is_internal_bucket(name: str) -> bool:
    return name.startswith(INTERNAL_BUCKET_PREFIXES)


def _copy_source_bucket(source: Any) -> str | None:
    if isinstance(source, dict):
        return source.get("Bucket")
    if isinstance(source, str):
        return urllib.parse.unquote(source).lstrip("/").split("/", 1)[0] or None
    return None


def _bucket_owner(context: RequestContext, bucket: str) -> str | None:
    from localstack.services.s3.models import s3_stores

    account = context.account_id or DEFAULT_AWS_ACCOUNT_ID
    return s3_stores[account][context.region or "us-east-1"].global_bucket_map.get(bucket)


def _public_read(
    context: RequestContext, name: str, owner: str, operation: str, params: dict[str, Any]
) -> bool:
    """Whether the bucket's owner lets anyone make this read (see the module docstring)."""
    action = _PUBLIC_READS.get(operation)
    if action is None:
        return False
    from localstack.services.s3.models import s3_stores

    bucket = s3_stores[owner][context.region or "us-east-1"].buckets.get(name)
    if bucket is None:
        return False
    block = bucket.public_access_block or {}
    if not block.get("RestrictPublicBuckets") and _policy_allows(bucket.policy, action):
        return True
    if block.get("IgnorePublicAcls"):
        return False
    acls = [bucket.acl]
    if action == "s3:GetObject" and isinstance(params.get("Key"), str):
        with_key = bucket.objects.get(params["Key"])
        acls.append(getattr(with_key, "acl", None))
    return any(_acl_allows_read(acl) for acl in acls)


def _statements(policy: Any) -> list[dict[str, Any]]:
    try:
        document = json.loads(policy) if isinstance(policy, str | bytes) else policy
    except (ValueError, RecursionError):
        return []
    statements = (document or {}).get("Statement", []) if isinstance(document, dict) else []
    if isinstance(statements, dict):
        statements = [statements]
    return [s for s in statements if isinstance(s, dict)]


def _public_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        aws = principal.get("AWS")
        return aws == "*" or (isinstance(aws, list) and "*" in aws)
    return False


def _policy_allows(policy: Any, action: str) -> bool:
    allowed = False
    for statement in _statements(policy):
        if not _public_principal(statement.get("Principal")):
            continue
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not any(fnmatch.fnmatch(action.lower(), str(a).lower()) for a in actions):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _acl_allows_read(acl: Any) -> bool:
    if not isinstance(acl, dict):
        return False
    for grant in acl.get("Grants") or []:
        grantee = grant.get("Grantee") or {}
        if grantee.get("URI") in _PUBLIC_GROUPS and grant.get("Permission") in (
            "READ",
            "FULL_CONTROL",
        ):
            return True
    return False
