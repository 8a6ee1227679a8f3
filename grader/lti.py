"""Grades back to the LMS over LTI 1.3 Advantage, as a tool: Assignment and Grade Services (AGS)
for the line item and scores, Names and Role Provisioning (NRPS) to find each student's LMS user.

A push is idempotent: the lab has one line item (found by ``resourceId`` = the lab's name and
``tag``), created only when missing and updated when its maximum changed; each graded student's
score is posted again, the LMS keeping the latest. Scores are final scores (after the late
penalty), from the same results as every other export. Students that were not graded, or that
have no LMS user, are reported and not posted."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt
import requests

from grader import late
from grader.config import LtiConfig
from grader.errors import CloudlabsError, ConfigError
from grader.results import GRADED, SubmissionResult

SCOPES = (
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
)
LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE = "application/vnd.ims.lis.v1.score+json"
MEMBERS = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


class LmsError(CloudlabsError):
    """The LMS refused or failed a request; nothing after it was posted."""


@dataclasses.dataclass
class PushReport:
    """What one push did: the line item, who got a score, and who did not and why."""

    lab: str
    lineitem: str = ""  #: the line item's URL (its id)
    lineitem_action: str = ""  #: "created", "updated" or "unchanged"
    posted: dict[str, float] = dataclasses.field(default_factory=dict)  #: student -> score
    not_graded: dict[str, str] = dataclasses.field(default_factory=dict)  #: student -> why
    not_in_lms: dict[str, str] = dataclasses.field(default_factory=dict)  #: student -> why
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every student has their score in the LMS."""
        return not self.not_graded and not self.not_in_lms


def push(
    *,
    lab: str,
    results: list[SubmissionResult],
    config: LtiConfig,
    max_score: float | None = None,
) -> PushReport:
    """Post the final score of every graded student of ``lab`` to the LMS (``max_score``: the
    lab's; by default the results' largest)."""
    _check(config)
    top = max_score if max_score is not None else max((r.max_score for r in results), default=0)
    report = PushReport(lab)
    with requests.Session() as session:
        platform = _Platform(config, session)
        platform.authenticate()
        report.lineitem, report.lineitem_action, duplicates = platform.lineitem(lab, top)
        if duplicates:
            report.warnings.append(
                f"the course has {duplicates + 1} line items for {lab} (tag {config.tag!r}); "
                f"scores go to the oldest, {report.lineitem}: delete the others in the LMS"
            )
        users = platform.members(config.student_field)
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        for result in sorted(results, key=lambda r: r.student):
            if result.status != GRADED:
                report.not_graded[result.student] = f"{result.status}: {result.reason}".strip()
                continue
            user = users.get(_key(config.student_field, result.student))
            if user is None:
                report.not_in_lms[result.student] = (
                    f"no member of the LMS course has {config.student_field} {result.student!r}"
                )
                continue
            if user.get("status", "Active") != "Active":
                report.not_in_lms[result.student] = f"{user['status'].lower()} in the LMS course"
                continue
            platform.score(report.lineitem, _score(result, user["user_id"], top, now))
            report.posted[result.student] = result.final_score
    return report


def _score(result: SubmissionResult, user_id: str, top: float, now: str) -> dict[str, Any]:
    comment = f"cloudlabs: {result.final_score:g}/{top:g}"
    lateness = late.summary(result)
    if lateness:
        comment += f" (raw score {result.score:g}; {lateness})"
    return {
        "userId": user_id,
        "scoreGiven": result.final_score,
        "scoreMaximum": top,
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
        "timestamp": now,
        "comment": comment,
    }


def _key(field: str, value: str) -> str:
    """How a member's field is compared with a student id (e-mail addresses: any case)."""
    return value.strip().lower() if field == "email" else value.strip()


def _check(config: LtiConfig) -> None:
    needed = ("issuer", "client_id", "token_url", "private_key", "key_id", "lineitems_url",
              "memberships_url")  # fmt: skip
    missing = [n for n in needed if not getattr(config, n)]
    if missing:
        names = ", ".join(f"CLOUDLABS_LTI_{n.upper()}" for n in missing)
        raise ConfigError(
            f"the LTI settings are incomplete: {names} not set",
            fix="set them from the tool's registration in the LMS (docs: LTI passback)",
        )
    if not Path(config.private_key).is_file():
        raise ConfigError(
            f"the tool's private key {config.private_key} does not exist",
            fix="set CLOUDLABS_LTI_PRIVATE_KEY to the PEM file whose public key the LMS has",
        )


class _Platform:
    """The LMS's services, with an access token for this tool."""

    def __init__(self, config: LtiConfig, session: requests.Session) -> None:
        self.config = config
        self.session = session

    def authenticate(self) -> None:
        """An access token by the client-credentials grant, with a JWT signed by the tool's key
        (IMS Security Framework 4.1)."""
        c = self.config
        now = int(time.time())
        claims = {
            "iss": c.client_id, "sub": c.client_id, "aud": c.audience or c.token_url,
            "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex,
        }  # fmt: skip
        try:
            assertion = jwt.encode(
                claims,
                Path(c.private_key).read_bytes(),
                algorithm="RS256",
                headers={"kid": c.key_id},
            )
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise ConfigError(
                f"cannot sign with the tool's private key {c.private_key}: {exc}",
                fix="CLOUDLABS_LTI_PRIVATE_KEY must be an RSA private key in PEM format",
            ) from exc
        data = {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
            "scope": " ".join(SCOPES),
        }
        resp = self._send("POST", c.token_url, data=data, what="the token request")
        if resp.status_code in (400, 401, 403):
            raise LmsError(
                f"the platform refused the token ({resp.status_code}: {_text(resp)})",
                fix="check CLOUDLABS_LTI_CLIENT_ID, CLOUDLABS_LTI_KEY_ID and that the tool's "
                "public key (or JWKS URL) is registered on the platform",
            )
        body = self._json(resp, "the token request")
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise LmsError(f"the platform's token response has no access_token: {body!r:.200}",
                           fix="check CLOUDLABS_LTI_TOKEN_URL")  # fmt: skip
        granted = set(str(body.get("scope", " ".join(SCOPES))).split())
        if not granted >= set(SCOPES):
            raise LmsError(
                f"the platform did not grant {', '.join(sorted(set(SCOPES) - granted))}",
                fix="enable Assignment and Grade Services (line items and scores) and Names "
                "and Role Provisioning for the tool in the LMS",
            )
        self.session.headers["Authorization"] = f"Bearer {token}"

    def lineitem(self, lab: str, top: float) -> tuple[str, str, int]:
        """The lab's line item (URL, what was done to it, how many duplicates there are)."""
        url = self.config.lineitems_url
        params = {"resource_id": lab, "tag": self.config.tag}
        mine = [
            item for item in self._pages(url, LINEITEMS, params)
            if item.get("resourceId") == lab and item.get("tag") == self.config.tag
        ]  # fmt: skip
        if not mine:
            item = {"scoreMaximum": top, "label": lab, "resourceId": lab, "tag": self.config.tag}
            created = self._json(
                self._send("POST", url, json=item, headers=_content(LINEITEM),
                           what="creating the line item"),
                "creating the line item",
            )  # fmt: skip
            return created["id"], "created", 0
        item = mine[0]
        if float(item.get("scoreMaximum", -1)) == top:
            return item["id"], "unchanged", len(mine) - 1
        changed = {k: v for k, v in item.items() if k != "id"} | {"scoreMaximum": top}
        self._send("PUT", item["id"], json=changed, headers=_content(LINEITEM),
                   what="updating the line item")  # fmt: skip
        return item["id"], "updated", len(mine) - 1

    def members(self, field: str) -> dict[str, dict[str, Any]]:
        """The course's members by ``field`` (as cloudlabs names students)."""
        users: dict[str, dict[str, Any]] = {}
        for member in self._pages(self.config.memberships_url, MEMBERS, {}, key="members"):
            value = member.get(field)
            if isinstance(value, str) and value and "user_id" in member:
                users.setdefault(_key(field, value), member)
        return users

    def score(self, lineitem: str, score: dict[str, Any]) -> None:
        parts = urlsplit(lineitem)
        url = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/scores"))
        self._send("POST", url, json=score, headers=_content(SCORE), what="posting a score")

    def _pages(
        self, url: str, accept: str, params: dict[str, str], key: str = ""
    ) -> Iterator[dict[str, Any]]:
        """Every item of a paged container, following ``Link: <...>; rel="next"``."""
        next_url: str | None = url
        while next_url:
            resp = self._send("GET", next_url, params=params, headers={"Accept": accept},
                              what=f"reading {url}")  # fmt: skip
            body = self._json(resp, f"reading {url}")
            yield from body.get(key, []) if key else body
            next_url, params = resp.links.get("next", {}).get("url"), {}

    def _send(self, method: str, url: str, *, what: str, **kwargs: Any) -> requests.Response:
        try:
            resp = self.session.request(method, url, timeout=self.config.timeout, **kwargs)
        except requests.RequestException as exc:
            raise LmsError(f"{what} failed: cannot reach {url}: {exc}",
                           fix="check the URL and that this machine can reach the LMS") from exc  # fmt: skip
        if resp.status_code in (401, 403) and "Authorization" in self.session.headers:
            raise LmsError(
                f"{what}: the platform refused the access token ({resp.status_code}: "
                f"{_text(resp)})",
                fix="enable Assignment and Grade Services and Names and Role Provisioning for "
                "the tool in the LMS course, and check that the URLs belong to that course",
            )
        if resp.status_code >= 400 and not (resp.status_code < 500 and what == "the token request"):
            raise LmsError(f"{what}: {method} {url} answered {resp.status_code}: {_text(resp)}",
                           fix="check the LTI URLs of the course and try again")  # fmt: skip
        return resp

    @staticmethod
    def _json(resp: requests.Response, what: str) -> Any:
        try:
            return resp.json()
        except ValueError as exc:
            raise LmsError(f"{what}: the platform answered with no JSON: {_text(resp)}",
                           fix="check the LTI URLs of the course") from exc  # fmt: skip


def _content(media_type: str) -> dict[str, str]:
    return {"Content-Type": media_type, "Accept": media_type}


def _text(resp: requests.Response) -> str:
    return " ".join(resp.text.split())[:300]
