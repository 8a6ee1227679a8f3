"""State checks: what a lab asks to exist in AWS, verified from outside the student's kernel.

A lab's ``solutions/<lab>/checks.py`` registers one function per state-check cell::

    @state_check("ex1_state")
    def archive_bucket_versioned(aws, prefix): ...

After the notebook ran, the grader calls each check with a boto3 session for the submission's
account (``aws.client(name)`` already points at the emulator) and the submission's prefix.
A check passes by returning None or True, earns partial credit by returning a fraction in [0, 1],
and fails (0 points) by raising; an AssertionError's message is shown to the student. A check may
also be a generator that ``yield``s the fraction earned so far at milestones: if a later assert
fails, the student keeps the last fraction yielded::

    @state_check("ex5_state")
    def volume_and_snapshot(aws, prefix):
        assert volume_exists(...), "no data volume"
        yield 0.5                      # half the points once the volume is right
        assert snapshot_exists(...), "no snapshot of the volume"
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import inspect
import traceback
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.loaders
import botocore.session

from grader.plain import explain_exception

CheckFunction = Callable[[Any, str], float | bool | None]
_MARK = "__cloudlabs_state_check__"
#: The most a state check or a test reads of one S3 object or Lambda payload: a student can
#: store a huge object where a small one is expected, and the grader must not read it whole.
MAX_READ_BYTES = 16 * 2**20


def bound_reads() -> None:
    """Make ``StreamingBody.read()`` without a size read at most MAX_READ_BYTES (and raise when
    there is more) in this process: the grader's and the trusted test process."""
    from botocore.response import StreamingBody

    if getattr(StreamingBody.read, "_cloudlabs_bounded", False):
        return
    original = StreamingBody.read

    def read(self: StreamingBody, amt: int | None = None) -> bytes:
        if amt is not None:
            return original(self, amt)
        data = original(self, MAX_READ_BYTES + 1)
        if len(data) > MAX_READ_BYTES:
            raise ValueError(f"the object is larger than the {MAX_READ_BYTES // 2**20} MiB read")
        return data

    read._cloudlabs_bounded = True  # type: ignore[attr-defined]
    StreamingBody.read = read  # type: ignore[method-assign]


bound_reads()


def state_check(grade_id: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated function as the check for the state-check cell ``grade_id``."""

    def mark(function: CheckFunction) -> CheckFunction:
        setattr(function, _MARK, grade_id)
        return function

    return mark


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The outcome of one state check."""

    grade_id: str
    fraction: float  #: share of the cell's points earned, 0.0 to 1.0
    message: str  #: why it failed (empty when it passed)


@functools.cache
def _shared_loader() -> botocore.loaders.Loader:
    return botocore.loaders.create_loader()


class _EndpointSession(boto3.Session):
    """A boto3 session whose clients talk to the emulator by default."""

    def __init__(self, *, endpoint_url: str, account_id: str, region: str) -> None:
        core = botocore.session.Session()
        # Every submission gets a session; they share one loader, so the service models are read
        # from disk once per grading run instead of once per submission.
        core.register_component("data_loader", _shared_loader())
        super().__init__(
            botocore_session=core,
            aws_access_key_id=account_id,
            aws_secret_access_key="test",
            region_name=region,
        )
        self._endpoint_url = endpoint_url

    def client(self, service_name: str, **kwargs: Any):  # type: ignore[override]
        kwargs.setdefault("endpoint_url", self._endpoint_url)
        kwargs.setdefault(
            "config",
            botocore.config.Config(
                retries={"max_attempts": 2}, read_timeout=30, inject_host_prefix=False
            ),
        )
        client = super().client(service_name, **kwargs)
        # S3 Control puts the account id in front of the host ({account}.127.0.0.1), which does not
        # resolve without LocalStack's DNS: send such requests to the endpoint itself.
        client.meta.events.register("before-send", self._strip_host_prefix)
        return client

    def _strip_host_prefix(self, request: Any, **_: Any) -> None:
        endpoint_host = urllib.parse.urlsplit(self._endpoint_url).netloc
        url = urllib.parse.urlsplit(request.url)
        if url.netloc != endpoint_host and url.netloc.endswith("." + endpoint_host):
            request.url = url._replace(netloc=endpoint_host).geturl()


def session_for(*, endpoint_url: str, account_id: str, region: str = "us-east-1") -> boto3.Session:
    """A boto3 session for one account whose clients point at ``endpoint_url``."""
    return _EndpointSession(endpoint_url=endpoint_url, account_id=account_id, region=region)


def load_checks(path: Path) -> dict[str, CheckFunction]:
    """The state checks registered in a lab's ``checks.py``, by grade id."""
    spec = importlib.util.spec_from_file_location(f"cloudlabs_checks_{path.parent.name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load state checks from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    checks: dict[str, CheckFunction] = {}
    for value in vars(module).values():
        grade_id = getattr(value, _MARK, None)
        if grade_id is None:
            continue
        if grade_id in checks:
            raise ValueError(f"{path}: two state checks for {grade_id}")
        checks[grade_id] = value
    return checks


def run_check(grade_id: str, check: CheckFunction, *, aws: Any, prefix: str) -> CheckResult:
    """Run one check; any exception is a failure with a one-line reason."""
    earned = 0.0
    try:
        outcome = check(aws, prefix)
        if inspect.isgenerator(outcome):
            for milestone in outcome:
                earned = min(1.0, max(earned, float(milestone)))
            outcome = None
    except AssertionError as exc:
        return CheckResult(grade_id, earned, str(exc) or "the expected resource is not there")
    except Exception as exc:  # a missing resource usually surfaces as a botocore ClientError
        reason = explain_exception(exc) or traceback.format_exception_only(exc)[-1].strip()
        return CheckResult(grade_id, earned, reason)
    if outcome is None or outcome is True:
        return CheckResult(grade_id, 1.0, "")
    if outcome is False:
        return CheckResult(grade_id, 0.0, "the check did not pass")
    fraction = min(1.0, max(0.0, float(outcome)))
    return CheckResult(grade_id, fraction, "" if fraction == 1.0 else "partly done")


def run_checks(
    checks: dict[str, CheckFunction], *, aws: Any, prefix: str
) -> dict[str, CheckResult]:
    """Run every check against one submission's account."""
    return {gid: run_check(gid, fn, aws=aws, prefix=prefix) for gid, fn in checks.items()}


def _main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Run a lab's state checks against an account.")
    parser.add_argument("checks", type=Path, help="path to solutions/<lab>/checks.py")
    parser.add_argument("--endpoint-url", default="http://127.0.0.1:4566")
    parser.add_argument("--account-id", default="000000000000")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--prefix", default="student")
    args = parser.parse_args()
    aws = session_for(
        endpoint_url=args.endpoint_url, account_id=args.account_id, region=args.region
    )
    results = run_checks(load_checks(args.checks), aws=aws, prefix=args.prefix)
    for result in results.values():
        print(f"{result.grade_id:20} {result.fraction:4.0%}  {result.message}")
    return 0 if all(r.fraction == 1.0 for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(_main())
