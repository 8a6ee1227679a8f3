"""Grades back to the LMS over LTI 1.3, end to end against a real LTI 1.3 platform on loopback:
lti1p3platform's token endpoint and its AGS and NRPS services (the library has no server of its
own: :class:`Platform` serves its handlers with ``http.server``, as its Django adapter would)."""

from __future__ import annotations

import dataclasses
import json
import threading
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lti1p3platform.exceptions import LineItemNotFoundException
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.membership import Context
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request
from lti1p3platform.score import UpdateScoreStatus
from lti1p3platform.service_connector import (
    AssignmentsGradesService,
    NamesRoleProvisioningService,
)

from grader import lti
from grader.errors import ConfigError
from grader.results import GRADED, REJECTED, SubmissionResult

ISSUER, CLIENT_ID, DEPLOYMENT_ID, KID = "https://lms.example.edu", "cloudlabs-tool", "d1", "k1"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    """Made at test time: the tool's key (registered on the platform), another key, and the
    platform's own."""
    return {"tool": _key(), "other": _key(), "platform": _key()}


# -- the platform ----------------------------------------------------------------------------


@dataclasses.dataclass
class Store:
    """What the platform holds and received."""

    members: list[dict[str, t.Any]]
    lineitems: dict[str, dict[str, t.Any]] = dataclasses.field(default_factory=dict)
    scores: dict[str, list[dict[str, t.Any]]] = dataclasses.field(default_factory=dict)
    tokens: int = 0  #: access tokens issued
    refused: list[str] = dataclasses.field(default_factory=list)  #: why token requests failed


class PlatformConf(LTI1P3PlatformConfAbstract):
    def init_platform_config(self, **kwargs: t.Any) -> None:
        self.tool_jwks = kwargs["tool_jwks"]
        self.platform_key = kwargs["platform_key"]

    def get_registration_by_params(self, **kwargs: t.Any) -> Registration:
        return (
            Registration()
            .set_iss(ISSUER)
            .set_client_id(CLIENT_ID)
            .set_deployment_id(DEPLOYMENT_ID)
            .set_platform_private_key(self.platform_key)
            .set_platform_public_key(self.platform_public_key)
            .set_tool_key_set(self.tool_jwks)
        )


class HttpRequest(Request):
    def build_metadata(self, request: dict[str, t.Any]) -> t.Any:
        return request


class Grades(AssignmentsGradesService):
    store: Store

    def find_lineitems(self, page=1, limit=None, line_item_id=None, resource_link_id=None,
                       resource_id=None, tag=None):  # fmt: skip
        items = [
            i for i in self.store.lineitems.values()
            if (resource_id is None or i.get("resourceId") == resource_id)
            and (tag is None or i.get("tag") == tag)
        ]  # fmt: skip
        return {"content": items, "has_next": False}

    def find_lineitem(self, line_item_id):
        try:
            return self.store.lineitems[line_item_id]
        except KeyError:
            raise LineItemNotFoundException(line_item_id) from None

    def create_lineitem(self, creation_data):
        url = f"{self.ags.lineitems_url}/{len(self.store.lineitems) + 1}"
        item = {**creation_data, "id": url}
        self.store.lineitems[url] = item
        return item

    def update_lineitem(self, update_data):
        url = update_data["id"]
        self.find_lineitem(url)
        self.store.lineitems[url] = dict(update_data)
        return self.store.lineitems[url]

    def delete_lineitem(self, line_item_id):
        self.store.lineitems.pop(line_item_id)

    def update_score(self, line_item_id, score):
        self.find_lineitem(line_item_id)
        self.store.scores.setdefault(line_item_id, []).append(score)
        return UpdateScoreStatus.SUCCESS

    def get_results(self, line_item_id, page=1, limit=None, user_id=None):
        return {"content": [], "has_next": False}


class Members(NamesRoleProvisioningService):
    store: Store

    def get_member_data_page(self, page=1, limit=None, role=None, since=None):
        return {"content": [dict(m) for m in self.store.members], "has_next": False}

    def get_context_by_id(self):
        return Context(id="course-1", label="CL101", title="Cloud labs")


class Platform:
    """lti1p3platform's handlers behind ``http.server`` on a free loopback port."""

    def __init__(self, store: Store, conf: PlatformConf) -> None:
        self.store, self.conf = store, conf
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                platform.handle(self)

            do_POST = do_PUT = do_DELETE = do_GET

            def log_message(self, *args: t.Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = False  # server_close() joins every request's thread
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="lti-platform")

    def __enter__(self) -> Platform:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def handle(self, http: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(http.path)
        body = http.rfile.read(int(http.headers.get("Content-Length") or 0))
        ctype = http.headers.get("Content-Type", "")
        request = HttpRequest({
            "method": http.command, "path": parts.path, "headers": http.headers,
            "content_type": ctype, "get_data": dict(parse_qsl(parts.query)),
            "form_data": dict(parse_qsl(body.decode())) if "form" in ctype else {},
            "json": json.loads(body) if body and "json" in ctype else None,
        })  # fmt: skip
        if parts.path == "/token":
            return self.token(http, request.form_data)
        segments = parts.path.strip("/").split("/")
        if segments[0] == "memberships":
            service: t.Any = Members(request, self.conf, f"{self.url}/memberships")
            handler, kwargs = service.handle_get_members, {}
        elif segments[0] == "lineitems":
            service = Grades(request, self.conf, f"{self.url}/lineitems")
            item = f"{self.url}/lineitems/{segments[1]}" if len(segments) > 1 else None
            if item is None:
                handler = {"GET": service.handle_get_lineitems,
                           "POST": service.handle_create_lineitem}[http.command]  # fmt: skip
                kwargs = {}
            elif len(segments) == 3 and segments[2] == "scores":
                handler, kwargs = service.handle_update_score, {"line_item_id": item}
            else:
                handler = {"GET": service.handle_get_lineitem,
                           "PUT": service.handle_update_lineitem}[http.command]  # fmt: skip
                kwargs = {"line_item_id": item}
        else:
            return self.send(http, 404, {"error": "not found"})
        service.store = self.store
        try:
            resp = service.handle_resp(handler, **kwargs)
        except jwt.PyJWTError as exc:  # a token not signed by this platform
            return self.send(http, 401, {"error": str(exc)})
        if not 200 <= resp.code < 300:
            return self.send(http, resp.code, {"error": resp.message})
        data = resp.result
        if isinstance(data, dict) and "content" in data:
            data = data["content"]  # as the library's Django adapter answers
        self.send(http, resp.code, data, resp.media_type)

    def token(self, http: BaseHTTPRequestHandler, form: dict[str, str]) -> None:
        try:
            answer = self.conf.get_access_token(form)
        except Exception as exc:  # every refusal is the client's: invalid_client
            self.store.refused.append(f"{type(exc).__name__}: {exc}")
            return self.send(http, 401, {"error": "invalid_client", "error_description": str(exc)})
        self.store.tokens += 1
        self.send(http, 200, answer)

    @staticmethod
    def send(http: BaseHTTPRequestHandler, code: int, data: t.Any,
             media_type: str = "application/json") -> None:  # fmt: skip
        body = json.dumps(data).encode()
        http.send_response(code)
        http.send_header("Content-Type", media_type)
        http.send_header("Content-Length", str(len(body)))
        http.end_headers()
        http.wfile.write(body)


#: the course's members as NRPS lists them: opaque LMS ids, the login id as cloudlabs knows it
MEMBERS = [
    {"user_id": f"lms-{name}", "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
     "status": "Active", "name": name.title(), "email": f"{name}@example.edu",
     "lis_person_sourcedid": name}
    for name in ("alice", "bob", "carol", "dave")
]  # fmt: skip


@pytest.fixture
def platform(keys) -> t.Iterator[Platform]:
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(keys["tool"].public_key(), as_dict=True)
    conf = PlatformConf(
        tool_jwks={"keys": [{**jwk, "kid": KID, "alg": "RS256", "use": "sig"}]},
        platform_key=_pem(keys["platform"]).decode(),
    )
    conf.platform_public_key = _public_pem(keys["platform"])
    conf.get_registration()
    with Platform(Store(members=[dict(m) for m in MEMBERS]), conf) as running:
        yield running


def _config(platform: Platform, key: Path, **fields: t.Any) -> lti.LtiConfig:
    return lti.LtiConfig(**{
        "issuer": ISSUER, "client_id": CLIENT_ID, "deployment_id": DEPLOYMENT_ID,
        "token_url": f"{platform.url}/token", "private_key": key, "key_id": KID,
        "lineitems_url": f"{platform.url}/lineitems",
        "memberships_url": f"{platform.url}/memberships",
        "student_field": "lis_person_sourcedid", **fields,
    })  # fmt: skip


@pytest.fixture
def tool_key(keys, tmp_path) -> Path:
    path = tmp_path / "tool.pem"
    path.write_bytes(_pem(keys["tool"]))
    return path


def _class() -> list[SubmissionResult]:
    """On time, late (3 of 10 points lost), rejected, and graded but not in the LMS course."""
    return [
        SubmissionResult("alice", "minilab", GRADED, score=8.0, max_score=10.0),
        SubmissionResult(
            "dave",
            "minilab",
            GRADED,
            score=9.5,
            max_score=10.0,
            submitted_at="2026-12-02T13:00:00+00:00",
            submitted_from="timestamp.txt",
            late_seconds=90_000.0,
            late_penalty=3.0,
        ),
        SubmissionResult("carol", "minilab", REJECTED, max_score=10.0, reason="not a notebook"),
        SubmissionResult("eve", "minilab", GRADED, score=10.0, max_score=10.0),
    ]


def test_push_posts_final_scores_once_per_line_item(platform, tool_key):
    config = _config(platform, tool_key)
    report = lti.push(lab="minilab", results=_class(), config=config)

    assert platform.store.tokens == 1 and not platform.store.refused
    [(url, item)] = platform.store.lineitems.items()
    assert item == {"id": url, "label": "minilab", "resourceId": "minilab", "tag": "cloudlabs",
                    "scoreMaximum": 10.0}  # fmt: skip
    assert (report.lineitem, report.lineitem_action) == (url, "created")
    assert report.posted == {"alice": 8.0, "dave": 6.5}
    assert report.not_graded == {"carol": "rejected: not a notebook"}
    assert report.not_in_lms == {
        "eve": "no member of the LMS course has lis_person_sourcedid 'eve'"
    }
    assert not report.complete and not report.warnings

    received = {s["userId"]: s for s in platform.store.scores[url]}
    assert set(received) == {"lms-alice", "lms-dave"}  # carol (rejected) and eve: not posted
    dave = received["lms-dave"]
    assert {k: dave[k] for k in ("scoreGiven", "scoreMaximum", "activityProgress",
                                 "gradingProgress")} == {
        "scoreGiven": 6.5, "scoreMaximum": 10.0, "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
    }  # fmt: skip
    assert dave["comment"] == (
        "cloudlabs: 6.5/10 (raw score 9.5; handed in 1 day 1 h after the due time: -3 points)"
    )
    assert received["lms-alice"]["scoreGiven"] == 8.0
    assert received["lms-alice"]["comment"] == "cloudlabs: 8/10"
    assert dave["timestamp"].endswith("Z")

    # a second push: the same line item, no duplicate; the scores posted again (latest wins)
    again = lti.push(lab="minilab", results=_class(), config=config)
    assert (again.lineitem, again.lineitem_action) == (url, "unchanged")
    assert list(platform.store.lineitems) == [url]
    assert [s["userId"] for s in platform.store.scores[url]] == ["lms-alice", "lms-dave"] * 2

    # the lab's maximum changed: the line item is updated, still one
    changed = lti.push(lab="minilab", results=_class(), config=config, max_score=20.0)
    assert changed.lineitem_action == "updated"
    assert platform.store.lineitems == {url: {**item, "scoreMaximum": 20.0}}
    assert platform.store.scores[url][-1]["scoreMaximum"] == 20.0


def test_line_items_of_other_labs_and_tools_are_left_alone(platform, tool_key):
    config = _config(platform, tool_key)
    lti.push(lab="other-lab", results=_class(), config=config)
    lti.push(lab="minilab", results=_class(), config=config, max_score=10.0)
    lti.push(lab="minilab", results=_class(), config=_config(platform, tool_key, tag="section-b"))
    tags = sorted((i["resourceId"], i["tag"]) for i in platform.store.lineitems.values())
    assert tags == [("minilab", "cloudlabs"), ("minilab", "section-b"), ("other-lab", "cloudlabs")]


def test_email_names_students(platform, tool_key):
    platform.store.members[0]["email"] = "Alice@Example.edu"
    results = [SubmissionResult("alice@example.edu", "minilab", GRADED, score=5, max_score=10)]
    report = lti.push(lab="minilab", results=results,
                      config=_config(platform, tool_key, student_field="email"))  # fmt: skip
    assert report.posted == {"alice@example.edu": 5.0} and report.complete


def test_inactive_member_is_reported_not_posted(platform, tool_key):
    platform.store.members[0]["status"] = "Inactive"
    report = lti.push(lab="minilab", results=_class()[:1], config=_config(platform, tool_key))
    assert report.not_in_lms == {"alice": "inactive in the LMS course"}
    assert not platform.store.scores


def test_token_refused_with_another_key(platform, keys, tmp_path):
    other = tmp_path / "other.pem"
    other.write_bytes(_pem(keys["other"]))
    with pytest.raises(lti.LmsError) as caught:
        lti.push(lab="minilab", results=_class(), config=_config(platform, other))
    assert "the platform refused the token (401" in str(caught.value)
    assert "public key" in caught.value.fix
    assert platform.store.tokens == 0
    assert platform.store.refused == ["InvalidSignatureError: Signature verification failed"]
    assert not platform.store.lineitems and not platform.store.scores


def test_a_forged_access_token_is_refused(platform, keys, tool_key):
    """The services take only the platform's tokens: one signed by the tool itself is refused."""
    forged = jwt.encode({"iss": ISSUER, "sub": CLIENT_ID, "scopes": " ".join(lti.SCOPES)},
                        _pem(keys["tool"]), algorithm="RS256")  # fmt: skip
    import requests

    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {forged}"
        answer = session.get(f"{platform.url}/lineitems", timeout=10)
    assert answer.status_code == 401


def test_incomplete_settings_say_which(tmp_path):
    with pytest.raises(ConfigError) as caught:
        lti.push(lab="minilab", results=[], config=lti.LtiConfig(issuer=ISSUER))
    assert "CLOUDLABS_LTI_CLIENT_ID" in str(caught.value)
    assert "CLOUDLABS_LTI_ISSUER" not in str(caught.value)


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    from grader.config import describe, load

    monkeypatch.setenv("CLOUDLABS_LTI_PRIVATE_KEY", str(tmp_path / "k.pem"))
    monkeypatch.setenv("CLOUDLABS_LTI_STUDENT_FIELD", "email")
    config = load(lti.LtiConfig, "lti")
    assert config.private_key == str(tmp_path / "k.pem") and config.student_field == "email"
    assert {row[0] for row in describe(lti.LtiConfig)} >= {"CLOUDLABS_LTI_TOKEN_URL"}
