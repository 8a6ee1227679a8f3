"""Signed results, for grading where the student can reach the files (a student's own CI).

``cloudlabs sign DIR`` adds to every result an HMAC-SHA256 of its JSON (keys sorted, no spaces),
made with the instructor's secret (``CLOUDLABS_SIGNING_KEY``); ``cloudlabs verify-signatures``
recomputes it when the instructor collects the results. A result that was edited, made up, or
signed with another key fails; so does one graded with another version of the lab, or one found
in another student's folder (a copied result). The signature covers the student, the lab version,
the submitted notebook's digest and every point, so none of them can change without the key.

The signature is only as safe as the key: it must never be in the environment of anything a
student controls (docs/ci-grading.md says how each CI keeps it out of reach)."""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from grader.config import SigningConfig, load
from grader.errors import ConfigError
from grader.labs import Lab
from grader.results import write_atomically

SCHEME = "hmac-sha256"


def _key(key: str | None) -> bytes:
    value = key if key is not None else load(SigningConfig, "signing").key
    if len(value) < 16:
        raise ConfigError(
            "no signing key (CLOUDLABS_SIGNING_KEY is empty or shorter than 16 characters)",
            fix="set CLOUDLABS_SIGNING_KEY to the instructor's secret, for example from "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`",
        )
    return value.encode()


def canonical(data: dict[str, Any]) -> bytes:
    """The bytes that are signed: the result without its signature, keys sorted, ASCII."""
    unsigned = {k: v for k, v in data.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def key_id(key: bytes) -> str:
    """A short name for a key that does not reveal it: tells "another key" from "edited"."""
    return hashlib.sha256(b"cloudlabs signing key:" + key).hexdigest()[:12]


def signature(data: dict[str, Any], key: bytes) -> str:
    mac = hmac.new(key, canonical(data), hashlib.sha256).hexdigest()
    return f"{SCHEME}:{key_id(key)}:{mac}"


def sign(*, root: Path, key: str | None = None) -> list[Path]:
    """Sign every result in ``root/results``; returns the files signed."""
    secret = _key(key)
    paths = sorted((root / "results").glob("*.json"))
    if not paths:
        raise ConfigError(f"no results in {root / 'results'}", fix="grade first: cloudlabs grade")
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["signature"] = signature(data, secret)
        write_atomically(path, json.dumps(data, indent=2))
    return paths


@dataclasses.dataclass(frozen=True)
class Verdict:
    path: Path
    student: str  #: the student the result is for ("" when it cannot be read)
    problem: str = ""  #: why it cannot be trusted; "" when it can
    score: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


def verify(*, lab: Lab, paths: list[Path], key: str | None = None) -> list[Verdict]:
    """A verdict for every result found under ``paths`` (files, or folders searched for
    ``results/*.json``). Under a folder, a result not directly in its ``results/`` is taken to
    be collected as ``<student>/.../results/<student>.json``: that first folder must be its
    student."""
    secret = _key(key)
    found: list[tuple[Path, str]] = []  # (file, the student its location says)
    for given in paths:
        if given.is_file():
            found.append((given, given.stem))
            continue
        if not given.is_dir():
            raise ConfigError(f"{given} does not exist", fix="give result files or folders")
        for path in sorted(given.rglob("results/*.json")):
            parts = path.relative_to(given).parts
            found.append((path, path.stem if parts[0] == "results" else parts[0]))
    if not found:
        raise ConfigError(f"no results found in {', '.join(map(str, paths))}",
                          fix="give the folders where the results were collected")  # fmt: skip
    verdicts = [_verdict(path, where, lab, secret) for path, where in found]
    claimed = collections.Counter(v.student for v in verdicts if v.student)
    return [
        dataclasses.replace(v, problem=f"{claimed[v.student]} results claim this student")
        if v.ok and claimed[v.student] > 1 else v
        for v in verdicts
    ]  # fmt: skip


def _verdict(path: Path, where: str, lab: Lab, key: bytes) -> Verdict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return Verdict(path, where, f"cannot be read: {exc.__class__.__name__}")
    if not isinstance(data, dict):
        return Verdict(path, where, "is not a result")
    student = str(data.get("student", ""))
    found = str(data.get("signature", ""))
    if not found:
        return Verdict(path, where, "is not signed")
    scheme, _, rest = found.partition(":")
    signed_with, _, _ = rest.partition(":")
    if scheme != SCHEME:
        return Verdict(path, where, f"unknown signature scheme {scheme[:20]!r}")
    if not hmac.compare_digest(found, signature(data, key)):
        if signed_with != key_id(key):
            return Verdict(path, where, "signed with another key")
        return Verdict(path, where, "the signature does not match: changed after grading")
    if student != where:
        return Verdict(path, where, f"a result for {student[:100]!r} found as {where!r}'s")
    if data.get("lab") != lab.name or data.get("lab_digest") != lab.digest:
        return Verdict(path, student, "graded with another version of the lab")
    score = f"{data.get('score', 0):g}/{data.get('max_score', 0):g}"
    return Verdict(path, student, score=f"{score} ({data.get('status', '')})")
