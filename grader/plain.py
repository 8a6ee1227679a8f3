"""Errors in plain words: what a student reads instead of botocore's exception text.

``An error occurred (NoSuchBucket) when calling the PutObject operation: The specified bucket does
not exist`` becomes ``bucket demo-archive does not exist yet (PutObject)``. Used for what a test
raised (with the exception's own details, :func:`explain`) and for what an answer cell printed
(only its text, :func:`explain_text`)."""

from __future__ import annotations

import re
from typing import Any

#: The name of a test's error whose message is already in plain words (a failed AWS call).
PLAIN_ERROR = "AWSError"

_CLIENT_ERROR = re.compile(
    r"An error occurred \((?P<code>[^)]+)\) when calling the (?P<op>\w+) operation"
    r"(?: \(reached max retries: \d+\))?: ?(?P<message>.*)",
    re.DOTALL,
)

#: Error code -> sentence; ``{BucketName}``, ``{Key}`` and ``{message}`` come from the error.
_WORDS = {
    "NoSuchBucket": "bucket {BucketName} does not exist yet",
    "NoSuchKey": "object {Key} does not exist (yet)",
    "NoSuchUpload": "that multipart upload does not exist (was it completed or aborted?)",
    "NoSuchBucketPolicy": "bucket {BucketName} has no bucket policy yet",
    "NoSuchLifecycleConfiguration": "bucket {BucketName} has no lifecycle rules yet",
    "ServerSideEncryptionConfigurationNotFoundError": "bucket {BucketName} has no default "
    "encryption yet",
    "NoSuchCORSConfiguration": "bucket {BucketName} has no CORS rules yet",
    "NoSuchWebsiteConfiguration": "bucket {BucketName} is not a website yet",
    "ReplicationConfigurationNotFoundError": "bucket {BucketName} has no replication rules yet",
    "NoSuchPublicAccessBlockConfiguration": "bucket {BucketName} has no Block Public Access "
    "settings yet",
    "BucketAlreadyExists": "bucket name {BucketName} belongs to another account: name it from "
    "`prefix`",
    "EntityTooSmall": "a part other than the last is smaller than 5 MiB",
    "InvalidPart": "a part's number or ETag does not match what was uploaded",
    "InvalidPartOrder": "the parts are not listed in ascending part-number order",
    "AWS.SimpleQueueService.NonExistentQueue": "the queue does not exist yet",
    "QueueDoesNotExist": "the queue does not exist yet",
    "NoSuchEntity": "{message}",
    "ResourceNotFoundException": "{message}",
    "AccessDenied": "access denied: {message}",
    "ValidationError": "a parameter is not valid: {message}",
    "InvalidParameterValue": "a parameter is not valid: {message}",
}


def explain(code: str, operation: str, message: str, details: dict[str, Any] | None = None) -> str:
    """One sentence for a failed AWS call."""
    values = {"BucketName": "", "Key": "", **(details or {}), "message": message.strip()}
    template = _WORDS.get(code)
    if template is None and code.endswith(".NotFound"):
        template = "{message}"
    if template is None:
        return f"{operation} failed with {code}: {message.strip()}".rstrip(": ")
    template = re.sub(  # no name in the error: "the bucket"
        r"(bucket|object) \{(BucketName|Key)\}",
        lambda m: m[0] if values.get(m[2]) else f"the {m[1]}",
        template,
    )
    sentence = template.format_map({k: str(v) for k, v in values.items()})
    return f"{sentence} ({operation})"


def explain_text(name: str, value: str) -> str:
    """One line for an error known only by its name and text (an output of a notebook cell)."""
    match = _CLIENT_ERROR.match(value.strip())
    if match:
        return explain(match["code"], match["op"], match["message"])
    if name == "EndpointConnectionError":
        return f"the emulator did not answer ({value.strip()}): is `cloudlabs up` running?"
    if name == "NoEmulator":
        return value.strip()
    return f"{name}: {value.strip()}" if value.strip() else name


def explain_exception(exc: BaseException) -> str | None:
    """One line for a botocore exception, or None when ``exc`` is not one."""
    response = getattr(exc, "response", None)
    operation = getattr(exc, "operation_name", "") or ""
    if isinstance(response, dict) and isinstance(response.get("Error"), dict):
        error = response["Error"]
        code = str(error.get("Code", "")) or type(exc).__name__
        return explain(code, operation, str(error.get("Message", "")), error)
    if type(exc).__name__ == "EndpointConnectionError":
        return explain_text("EndpointConnectionError", str(exc))
    return None
