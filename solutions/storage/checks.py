"""State checks for the storage lab: what must exist in the submission's emulator account.

Each check reads configuration or objects the emulator really stores; none relies on
behaviour the emulator does not model (policy enforcement, lifecycle runs, replication copies).
"""

from __future__ import annotations

import json

from grader.statecheck import Parts, state_check

MiB = 1024 * 1024
SCANNER_PAGE = b"%PDF-1.4\n% ACME scanner, page 0001\n"


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _policy(s3, bucket):
    return json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])


@state_check("ex1_state")
def handbook_uploaded_with_multipart(aws, prefix):
    """scans/handbook.pdf is a 12 MiB object made of 3 parts."""
    s3 = aws.client("s3")
    head = s3.head_object(Bucket=f"{prefix}-archive", Key="scans/handbook.pdf")
    assert head["ContentLength"] == 12 * MiB, (
        f"scans/handbook.pdf is {head['ContentLength']} bytes, not 12 MiB"
    )
    assert head["ETag"].strip('"').endswith("-3"), (
        "scans/handbook.pdf was not uploaded in 3 multipart parts"
    )


@state_check("ex2_state")
def versioning_and_delete_markers(aws, prefix):
    """Versioning on; retention.txt restored with >= 2 versions; memo.txt behind a delete marker."""
    s3 = aws.client("s3")
    bucket = f"{prefix}-archive"
    status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    assert status == "Enabled", f"versioning on {bucket} is {status or 'off'}"
    listing = s3.list_object_versions(Bucket=bucket, Prefix="policies/retention.txt")
    versions = [v for v in listing.get("Versions", []) if v["Key"] == "policies/retention.txt"]
    assert len(versions) >= 2, "policies/retention.txt should have at least two versions"
    current = s3.get_object(Bucket=bucket, Key="policies/retention.txt")["Body"].read()
    assert current == b"Retention policy v2", "policies/retention.txt is not restored to v2"
    memo = s3.list_object_versions(Bucket=bucket, Prefix="drafts/memo.txt")
    assert any(m["IsLatest"] for m in memo.get("DeleteMarkers", [])), (
        "drafts/memo.txt should be hidden behind a delete marker"
    )
    assert memo.get("Versions"), "drafts/memo.txt's data version should still exist"


@state_check("ex3_state")
def ledgers_in_storage_classes(aws, prefix):
    """The three ledgers carry STANDARD_IA, GLACIER_IR and DEEP_ARCHIVE."""
    s3 = aws.client("s3")
    expected = {
        "records/2024/ledger.csv": "STANDARD_IA",
        "records/2019/ledger.csv": "GLACIER_IR",
        "records/2009/ledger.csv": "DEEP_ARCHIVE",
    }
    listing = s3.list_objects_v2(Bucket=f"{prefix}-archive", Prefix="records/")
    found = {o["Key"]: o.get("StorageClass", "STANDARD") for o in listing.get("Contents", [])}
    wrong = {k: found.get(k, "missing") for k, c in expected.items() if found.get(k) != c}
    assert not wrong, f"wrong or missing storage classes: {wrong}"


def _tiering_rule(rule):
    prefix_filter = (rule.get("Filter") or {}).get("Prefix", rule.get("Prefix"))
    steps = {t.get("Days"): t["StorageClass"] for t in rule.get("Transitions", [])}
    return (
        prefix_filter == "records/"
        and steps == {30: "STANDARD_IA", 90: "GLACIER", 365: "DEEP_ARCHIVE"}
        and rule.get("Expiration", {}).get("Days") == 3650
    )


def _noncurrent_rule(rule):
    nct = {
        (t["NoncurrentDays"], t["StorageClass"])
        for t in rule.get("NoncurrentVersionTransitions", [])
    }
    return (
        nct == {(30, "GLACIER_IR")}
        and rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") == 365
    )


def _abort_rule(rule):
    return rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == 7


@state_check("ex4_state")
def lifecycle_rules(aws, prefix):
    """Tiering for records/, noncurrent-version handling and the abort rule (1/3 each)."""
    s3 = aws.client("s3")
    rules = [
        r
        for r in s3.get_bucket_lifecycle_configuration(Bucket=f"{prefix}-archive")["Rules"]
        if r["Status"] == "Enabled"
    ]
    check = Parts()
    check.part(
        "the records/ tiering rule",
        lambda: any(_tiering_rule(r) for r in rules),
        why="no enabled rule for records/ moving to STANDARD_IA at 30 days, GLACIER at 90, "
        "DEEP_ARCHIVE at 365 and expiring at 3650",
    )
    check.part(
        "the noncurrent-version rule",
        lambda: any(_noncurrent_rule(r) for r in rules),
        why="no enabled rule moving noncurrent versions to GLACIER_IR at 30 days and "
        "expiring them at 365",
    )
    check.part(
        "the abort-incomplete-uploads rule",
        lambda: any(_abort_rule(r) for r in rules),
        why="no enabled rule aborting incomplete multipart uploads after 7 days",
    )
    return check


@state_check("ex5_state")
def default_sse_kms(aws, prefix):
    """Default encryption is SSE-KMS with the key behind alias/<prefix>-archive."""
    s3, kms = aws.client("s3"), aws.client("kms")
    rule = s3.get_bucket_encryption(Bucket=f"{prefix}-archive")[
        "ServerSideEncryptionConfiguration"
    ]["Rules"][0]
    default = rule["ApplyServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == "aws:kms", (
        f"default encryption is {default['SSEAlgorithm']}, not aws:kms"
    )
    key = kms.describe_key(KeyId=default["KMSMasterKeyID"])["KeyMetadata"]
    assert key["KeyState"] == "Enabled", f"the bucket's KMS key is {key['KeyState']}"
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    assert aliases.get(f"alias/{prefix}-archive") == key["KeyId"], (
        f"alias/{prefix}-archive does not point to the bucket's default key"
    )


def _tls_deny(statement, arn):
    cond = statement.get("Condition", {})
    resources = set(_as_list(statement.get("Resource", [])))
    return (
        str(cond.get("Bool", {}).get("aws:SecureTransport", "")).lower() == "false"
        and {arn, f"{arn}/*"} <= resources
    )


def _encryption_deny(statement, arn):
    cond = statement.get("Condition", {})
    resources = set(_as_list(statement.get("Resource", [])))
    keys = {k.lower() for block in cond.values() for k in block}
    return (
        "s3:x-amz-server-side-encryption" in keys
        and f"{arn}/*" in resources
        and bool(set(_as_list(statement.get("Action"))) & {"s3:PutObject", "s3:*"})
    )


@state_check("ex6_state")
def archive_policy(aws, prefix):
    """TLS deny and encryption deny, half each. (Block Public Access is not graded: new buckets
    have it on by default, so it proves no work.)"""
    s3 = aws.client("s3")
    bucket = f"{prefix}-archive"
    arn = f"arn:aws:s3:::{bucket}"
    denies = [s for s in _policy(s3, bucket)["Statement"] if s.get("Effect") == "Deny"]
    check = Parts()
    check.part(
        "the TLS deny statement",
        lambda: any(_tls_deny(s, arn) for s in denies),
        why="no Deny statement for aws:SecureTransport false on the bucket and its objects",
    )
    check.part(
        "the encryption deny statement",
        lambda: any(_encryption_deny(s, arn) for s in denies),
        why="no Deny statement on s3:PutObject conditioned on s3:x-amz-server-side-encryption",
    )
    return check


@state_check("ex7_state")
def scanner_upload(aws, prefix):
    """scans/scanner-0001.pdf holds the scanner's page, as application/pdf with SSE-KMS."""
    s3 = aws.client("s3")
    obj = s3.get_object(Bucket=f"{prefix}-archive", Key="scans/scanner-0001.pdf")
    assert obj["Body"].read() == SCANNER_PAGE, (
        "scans/scanner-0001.pdf does not hold the scanner's page"
    )
    assert obj["ContentType"] == "application/pdf", f"Content-Type is {obj['ContentType']}"
    assert obj.get("ServerSideEncryption") == "aws:kms", "the scan is not encrypted with SSE-KMS"


def _website_configured(s3, bucket):
    site = s3.get_bucket_website(Bucket=bucket)
    return (
        site.get("IndexDocument", {}).get("Suffix") == "index.html"
        and site.get("ErrorDocument", {}).get("Key") == "error.html"
    )


def _public_read_only(s3, bucket):
    statements = _policy(s3, bucket)["Statement"]
    public = [
        s
        for s in statements
        if s.get("Effect") == "Allow" and s.get("Principal") in ("*", {"AWS": "*"})
    ]
    return bool(public) and all(
        _as_list(s["Action"]) == ["s3:GetObject"]
        and _as_list(s["Resource"]) == [f"arn:aws:s3:::{bucket}/*"]
        for s in public
    )


@state_check("ex8_state")
def portal_website(aws, prefix):
    """Website config, text/html index, public GetObject-only policy (1/3 each)."""
    s3 = aws.client("s3")
    bucket = f"{prefix}-portal"
    check = Parts()
    check.part(
        "the website configuration",
        lambda: _website_configured(s3, bucket),
        why="the index document is not index.html or the error document not error.html",
    )
    check.part(
        "index.html as text/html",
        lambda: s3.head_object(Bucket=bucket, Key="index.html")["ContentType"].startswith(
            "text/html"
        ),
        why="index.html's Content-Type is not text/html",
    )
    check.part(
        "the public-read policy",
        lambda: _public_read_only(s3, bucket),
        why=f"the policy does not allow everyone s3:GetObject on {bucket}/* and nothing else",
    )
    return check


@state_check("ex9_state")
def archive_cors(aws, prefix):
    """CORS allows only the intranet origin with GET/HEAD."""
    s3 = aws.client("s3")
    origin = f"https://intranet.{prefix}.example.com"
    rules = s3.get_bucket_cors(Bucket=f"{prefix}-archive")["CORSRules"]
    origins = {o for r in rules for o in r["AllowedOrigins"]}
    assert origins == {origin}, f"allowed origins are {sorted(origins)}, expected only {origin}"
    methods = {m for r in rules for m in r["AllowedMethods"]}
    assert methods == {"GET", "HEAD"}, (
        f"allowed methods are {sorted(methods)}, expected GET and HEAD"
    )


def _replica_ok(aws, s3, replica):
    location = s3.get_bucket_location(Bucket=replica)["LocationConstraint"] or "us-east-1"
    return (
        s3.get_bucket_versioning(Bucket=replica).get("Status") == "Enabled"
        and location != aws.region_name
    )


def _replication_rule_ok(s3, iam, prefix, replica):
    role_arn = iam.get_role(RoleName=f"{prefix}-replication")["Role"]["Arn"]
    config = s3.get_bucket_replication(Bucket=f"{prefix}-archive")["ReplicationConfiguration"]
    return config.get("Role") == role_arn and any(
        r["Status"] == "Enabled" and r["Destination"]["Bucket"] == f"arn:aws:s3:::{replica}"
        for r in config["Rules"]
    )


@state_check("ex10_state")
def replication_configured(aws, prefix):
    """Versioned replica in another Region (1/3), role trusted by S3 (1/3), rule to the replica
    with that role (1/3)."""
    s3, iam = aws.client("s3"), aws.client("iam")
    replica = f"{prefix}-replica"
    check = Parts()
    check.part(
        "the versioned replica bucket in another Region",
        lambda: _replica_ok(aws, s3, replica),
        why=f"{replica} is not versioned or is in the source bucket's Region",
    )
    role = check.part(
        "the replication role trusted by S3",
        lambda: (
            "s3.amazonaws.com"
            in json.dumps(
                iam.get_role(RoleName=f"{prefix}-replication")["Role"]["AssumeRolePolicyDocument"]
            )
        ),
        why=f"{prefix}-replication's trust policy does not name s3.amazonaws.com",
    )
    check.part(
        "the replication rule",
        lambda: _replication_rule_ok(s3, iam, prefix, replica),
        requires=role,
        why=f"no enabled rule replicating to {replica} with the replication role",
    )
    return check


def _notifies(q, queue_arn):
    rules = {
        r["Name"].lower(): r["Value"]
        for r in q.get("Filter", {}).get("Key", {}).get("FilterRules", [])
    }
    return (
        q["QueueArn"] == queue_arn
        and "s3:ObjectCreated:*" in q["Events"]
        and rules == {"prefix": "inbox/", "suffix": ".pdf"}
    )


def _allows_s3(statement, bucket):
    return (
        statement.get("Effect") == "Allow"
        and "s3.amazonaws.com" in json.dumps(statement.get("Principal"))
        and "SendMessage" in json.dumps(statement.get("Action"))
        and f"arn:aws:s3:::{bucket}" in json.dumps(statement.get("Condition", {}))
        and "sourcearn" in json.dumps(statement).lower()
    )


@state_check("ex11_state")
def inbox_notifications(aws, prefix):
    """Notification for inbox/*.pdf to the intake queue (1/2), queue policy allowing S3 (1/2)."""
    s3, sqs = aws.client("s3"), aws.client("sqs")
    bucket = f"{prefix}-archive"
    queue_url = sqs.get_queue_url(QueueName=f"{prefix}-intake")["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["Policy", "QueueArn"])[
        "Attributes"
    ]
    queues = s3.get_bucket_notification_configuration(Bucket=bucket).get("QueueConfigurations", [])
    check = Parts()
    check.part(
        "the notification to the intake queue",
        lambda: any(_notifies(q, attrs["QueueArn"]) for q in queues),
        why="no notification of s3:ObjectCreated:* for inbox/*.pdf to the intake queue",
    )
    check.part(
        "the queue policy allowing S3",
        lambda: any(
            _allows_s3(s, bucket)
            for s in json.loads(attrs.get("Policy", '{"Statement": []}'))["Statement"]
        ),
        why=f"the intake queue's policy does not let s3.amazonaws.com send for {bucket} (aws:SourceArn)",
    )
    return check
