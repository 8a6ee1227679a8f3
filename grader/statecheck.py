"""State checks: what a lab asks to exist in AWS, verified from outside the student's kernel.

A lab's ``solutions/<lab>/checks.py`` registers one function per state-check cell::

    @state_check("ex1_state")
    def archive_bucket_versioned(aws, prefix): ...

After the notebook ran, the grader calls each check with a session (``aws.client(...)``) for the submission's
account (``aws.client(name)`` already points at the emulator) and the submission's prefix.

**All or nothing.** A check that returns None passes (full points) and one that raises fails
(0 points): an AssertionError's message is shown to the student, a botocore error in plain words.

**Partial credit.** A check made of several parts builds and returns a :class:`Parts`: each part
has a name the student reads, a weight, and a test; the check earns the weighted share of the
parts that passed, and the message names the parts that are missing::

    @state_check("ex5_state")
    def volume_and_snapshot(aws, prefix):
        ec2 = aws.client("ec2")
        web1 = _web1(ec2, prefix)             # raising here, before any part, fails the check
        check = Parts()
        volume = check.part("the data volume on web-1", lambda: _volume(ec2, prefix, web1))
        check.part("its snapshot", lambda: _snapshot(ec2, prefix), requires=volume)
        return check

A part whose test raises counts as failed, with the assert's message or the botocore error in
plain words as the reason; ``requires=`` makes a part count only once an earlier one passed
(milestones). :func:`best` scores several candidates (duplicates of a resource) and keeps the
best one's parts.
"""

from __future__ import annotations

import dataclasses
import fractions
import importlib.util
import threading
import traceback
import urllib.parse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import botocore.config
import botocore.session

from grader import botocache
from grader.plain import explain_exception

CheckFunction = Callable[[Any, str], "Parts | None"]
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
    missing: tuple[str, ...] = ()  #: the names of the parts that failed (a Parts check)


def _reason(exc: Exception) -> str:
    """One line for what a check or a part raised."""
    if isinstance(exc, AssertionError):
        return str(exc) or "the expected resource is not there"
    return explain_exception(exc) or traceback.format_exception_only(exc)[-1].strip()


@dataclasses.dataclass(frozen=True)
class Part:
    """One named part of a :class:`Parts` check; true when it passed."""

    name: str  #: what the student reads when it is missing ("the abort-incomplete-uploads rule")
    weight: float
    passed: bool
    reason: str = ""  #: why it failed (empty when it passed)

    def __bool__(self) -> bool:
        return self.passed


class Parts:
    """A state check made of named, weighted parts: return it from the check.

    ``part()`` evaluates a part at once and returns it (a :class:`Part`, true when it passed).
    The check earns ``sum(weights passed) / sum(weights)``, and its message lists every missing
    part with its share of the points and the reason::

        missing: the abort-incomplete-uploads rule (1/3 of the points); the TLS deny
        statement (1/2 of the points): bucket demo-archive has no bucket policy yet
    """

    def __init__(self) -> None:
        self.parts: list[Part] = []

    def part(
        self,
        name: str,
        test: Any,
        *,
        weight: float = 1,
        why: str = "",
        requires: Part | str | Iterable[Part | str] = (),
    ) -> Part:
        """Add the part ``name``, passed when ``test`` (a value, or a function called with no
        arguments) is true.

        - ``weight``: its points relative to the other parts (1 by default).
        - ``why``: the reason shown when ``test`` is false. When ``test`` raises, the reason is
          the AssertionError's message, or the botocore error in plain words.
        - ``requires``: parts (as returned by ``part()``, or their names) that must have passed
          for this one to count; otherwise it fails without being tested ("needs ... first").
        """
        if weight <= 0:
            raise ValueError(f"the weight of {name!r} must be positive, not {weight}")
        if any(p.name == name for p in self.parts):
            raise ValueError(f"two parts named {name!r}")
        unmet = [p for p in self._required(requires) if not p.passed]
        if unmet:
            outcome = Part(
                name, weight, False, f"needs {' and '.join(p.name for p in unmet)} first"
            )
        else:
            try:
                ok = bool(test() if callable(test) else test)
                outcome = Part(name, weight, ok, "" if ok else why)
            except Exception as exc:  # a missing resource usually surfaces as a ClientError
                outcome = Part(
                    name, weight, False, why if _unexplained(exc) and why else _reason(exc)
                )
        self.parts.append(outcome)
        return outcome

    def _required(self, requires: Part | str | Iterable[Part | str]) -> list[Part]:
        wanted = [requires] if isinstance(requires, Part | str) else list(requires)
        by_name = {p.name: p for p in self.parts}
        found = []
        for item in wanted:
            name = item.name if isinstance(item, Part) else item
            if name not in by_name:
                raise ValueError(f"requires {name!r}, which is not an earlier part")
            found.append(by_name[name])
        return found

    @property
    def fraction(self) -> float:
        """The weighted share of the parts that passed, 0.0 to 1.0."""
        if not self.parts:
            raise ValueError("a Parts check needs at least one part")
        total = sum(p.weight for p in self.parts)
        earned = sum(p.weight for p in self.parts if p.passed)
        return 1.0 if earned == total else earned / total

    @property
    def missing(self) -> tuple[str, ...]:
        """The names of the parts that failed, in order."""
        return tuple(p.name for p in self.parts if not p.passed)

    @property
    def message(self) -> str:
        """What is missing, part by part (empty when every part passed)."""
        total = sum(p.weight for p in self.parts)
        missing = [
            f"{p.name} ({_share(p.weight / total)} of the points)"
            + (f": {p.reason}" if p.reason else "")
            for p in self.parts
            if not p.passed
        ]
        return "missing: " + "; ".join(missing) if missing else ""

    def result(self, grade_id: str) -> CheckResult:
        """The CheckResult these parts earn."""
        return CheckResult(grade_id, self.fraction, self.message, self.missing)


def _unexplained(exc: Exception) -> bool:
    """True when ``exc`` has no plain reason of its own (not an assert with a message, not a
    botocore error): a part's ``why`` says it better."""
    if isinstance(exc, AssertionError):
        return not str(exc)
    return explain_exception(exc) is None


def _share(share: float) -> str:
    """A part's share of the points for the student: "1/3", "3/10", "all" or "12%"."""
    if share >= 1:
        return "all"
    simple = fractions.Fraction(share).limit_denominator(20)
    if abs(float(simple) - share) < 1e-9:
        return f"{simple.numerator}/{simple.denominator}"
    return f"{share:.0%}"


def best(candidates: Iterable[Any], parts_of: Callable[[Any], Parts], *, none: str = "") -> Parts:
    """The parts of the best candidate: ``parts_of(candidate)`` for each one, the highest
    fraction kept (the first on a tie). Use it when a student may have made a resource twice
    (a cell run twice) and the best copy counts.

    With no candidate it raises AssertionError(``none``) (the check fails with that message);
    pass ``[None]`` instead to let ``parts_of(None)`` report every part missing."""
    scored = [parts_of(candidate) for candidate in candidates]
    if not scored:
        raise AssertionError(none or "the expected resource is not there")
    return max(scored, key=lambda parts: parts.fraction)


_THREAD = threading.local()


def _core() -> botocore.session.Session:
    """This thread's botocore session (a session is not thread-safe; its clients are). All of
    them share one loader, so service models are read once per grading run."""
    core = getattr(_THREAD, "session", None)
    if core is None:
        botocache.share_loader()
        core = _THREAD.session = botocore.session.Session()
    return core


class AccountSession:
    """What a state check gets as ``aws``: clients of one account, talking to the emulator."""

    def __init__(
        self, *, endpoint_url: str, account_id: str, region: str, reuse: bool = False
    ) -> None:
        self.endpoint_url = endpoint_url
        self.account_id = account_id
        self.region_name = region
        #: ``reuse``: one client per service and plain settings (the lab's state checks, which
        #: register no event handlers), else a new one every time
        self._clients: dict[tuple, Any] | None = {} if reuse else None

    def client(self, service_name: str, **kwargs: Any) -> Any:
        """A client for ``service_name``: a new one unless this session reuses them, since a
        caller may register event handlers on it, such as a test's admin token, that must not
        reach other callers. Keywords as for ``boto3.client``."""
        plain = all(isinstance(v, str | int | float | bool | None) for v in kwargs.values())
        key = (service_name, *sorted(kwargs.items()))
        if self._clients is not None and plain and key in self._clients:
            return self._clients[key]
        client = self._new_client(service_name, **kwargs)
        if self._clients is not None and plain:
            self._clients[key] = client
        return client

    def _new_client(self, service_name: str, **kwargs: Any) -> Any:
        kwargs.setdefault("endpoint_url", self.endpoint_url)
        kwargs.setdefault("region_name", self.region_name)
        kwargs.setdefault(
            "config",
            botocore.config.Config(
                retries={"max_attempts": 2}, read_timeout=30, inject_host_prefix=False
            ),
        )
        client = _core().create_client(
            service_name, aws_access_key_id=self.account_id, aws_secret_access_key="test", **kwargs
        )
        # S3 Control puts the account id in front of the host ({account}.127.0.0.1), which does not
        # resolve without LocalStack's DNS: send such requests to the endpoint itself.
        client.meta.events.register("before-send", self._strip_host_prefix)
        return client

    def _strip_host_prefix(self, request: Any, **_: Any) -> None:
        endpoint_host = urllib.parse.urlsplit(self.endpoint_url).netloc
        url = urllib.parse.urlsplit(request.url)
        if url.netloc != endpoint_host and url.netloc.endswith("." + endpoint_host):
            request.url = url._replace(netloc=endpoint_host).geturl()


def session_for(
    *, endpoint_url: str, account_id: str, region: str = "us-east-1", reuse: bool = False
) -> AccountSession:
    """Clients of one account whose requests go to ``endpoint_url`` (see :class:`AccountSession`
    for ``reuse``)."""
    return AccountSession(
        endpoint_url=endpoint_url, account_id=account_id, region=region, reuse=reuse
    )


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
    try:
        outcome = check(aws, prefix)
        if isinstance(outcome, Parts):
            return outcome.result(grade_id)
    except Exception as exc:  # a missing resource usually surfaces as a botocore ClientError
        return CheckResult(grade_id, 0.0, _reason(exc))
    if outcome is None or outcome is True:
        return CheckResult(grade_id, 1.0, "")
    if outcome is False:
        return CheckResult(grade_id, 0.0, "the check did not pass")
    # A fraction or a generator: the partial-credit styles before Parts, no longer supported.
    return CheckResult(
        grade_id, 0.0, f"the state check returned {type(outcome).__name__}: return None or Parts"
    )


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
    # run as grader.statecheck, not __main__: checks.py files return grader.statecheck.Parts
    from grader import statecheck

    raise SystemExit(statecheck._main())
