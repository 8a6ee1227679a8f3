"""A real LTI 1.3 platform on loopback, for the classroom demo and the tests: `lti1p3platform`'s
OIDC login, resource-link launch, token endpoint and AGS and NRPS services, served with
``http.server`` (the library has no server of its own; this is what its Django adapter does).

It stands in for the LMS (Canvas, Moodle): students launch the hub from it (``/launch``), and
``cloudlabs lms push`` posts grades to it. :class:`Store` is what it holds and received."""

from __future__ import annotations

import dataclasses
import html
import json
import threading
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lti1p3platform.exceptions import LineItemNotFoundException
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.membership import Context
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request
from lti1p3platform.score import UpdateScoreStatus
from lti1p3platform.service_connector import (
    AssignmentsGradesService,
    NamesRoleProvisioningService,
)

ISSUER, CLIENT_ID, DEPLOYMENT_ID = "https://lms.example.edu", "cloudlabs-tool", "d1"
TOOL_KID, PLATFORM_KID = "tool-1", "platform-1"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
CONTEXT = {"id": "course-1", "label": "CL101", "title": "Cloud labs"}


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip


def public_pem(key: rsa.RSAPrivateKey) -> str:
    public = key.public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, t.Any]:
    public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**public, "kid": kid, "alg": "RS256", "use": "sig"}


def member(name: str, role: str = LEARNER) -> dict[str, t.Any]:
    """A course member as NRPS lists them: an opaque LMS id, the login id as lis_person_sourcedid."""
    return {"user_id": f"lms-{name}", "roles": [role], "status": "Active", "name": name.title(),
            "email": f"{name}@example.edu", "lis_person_sourcedid": name}  # fmt: skip


@dataclasses.dataclass
class Store:
    """What the platform holds and received."""

    members: list[dict[str, t.Any]]
    lineitems: dict[str, dict[str, t.Any]] = dataclasses.field(default_factory=dict)
    scores: dict[str, list[dict[str, t.Any]]] = dataclasses.field(default_factory=dict)
    tokens: int = 0  #: access tokens issued
    refused: list[str] = dataclasses.field(default_factory=list)  #: why token requests failed
    launches: list[str] = dataclasses.field(default_factory=list)  #: user ids launched

    def gradebook(self) -> dict[str, dict[str, t.Any]]:
        """The latest score of each user on each line item: {label: {user_id: score}}."""
        book: dict[str, dict[str, t.Any]] = {}
        for url, scores in self.scores.items():
            column = book.setdefault(self.lineitems[url]["label"], {})
            for score in scores:
                column[score["userId"]] = score
        return book


class PlatformRegistration(Registration):
    """The tool's registration; the platform's key carries a kid, so tools pick it from JWKS."""

    def get_kid(self) -> str:
        return PLATFORM_KID

    def get_jwks(self) -> list[dict[str, t.Any]]:
        return [{**key, "kid": PLATFORM_KID} for key in super().get_jwks()]


class PlatformConf(LTI1P3PlatformConfAbstract):
    def init_platform_config(self, **kwargs: t.Any) -> None:
        self.tool_jwks = kwargs["tool_jwks"]
        self.platform_key = kwargs["platform_key"]
        self.platform_public_key = kwargs["platform_public_key"]
        self.tool_login_url = kwargs.get("tool_login_url", "")
        self.tool_launch_url = kwargs.get("tool_launch_url", "")

    def get_registration_by_params(self, **kwargs: t.Any) -> Registration:
        return (
            PlatformRegistration()
            .set_iss(ISSUER)
            .set_client_id(CLIENT_ID)
            .set_deployment_id(DEPLOYMENT_ID)
            .set_platform_private_key(self.platform_key)
            .set_platform_public_key(self.platform_public_key)
            .set_tool_key_set(self.tool_jwks)
            .set_oidc_login_url(self.tool_login_url)
            .set_launch_url(self.tool_launch_url)
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
        return Context(**CONTEXT)


class Login(OIDCLoginAbstract):
    """Step 1 of a launch: the platform sends the browser to the tool's login URL."""

    def set_lti_message_hint(self, **kwargs: t.Any) -> None:
        self._lti_message_hint = kwargs["hint"]

    def get_redirect(self, url: str) -> str:
        return url


class Launch(LTIAdvantageMessageLaunchAbstract):
    """Step 3: the tool's authentication request answered with a signed id_token, posted by an
    auto-submitting form to the tool's redirect URI."""

    def render_launch_form(self, launch_data: dict[str, t.Any], **kwargs: t.Any) -> str:
        fields = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(launch_data[name])}">'
            for name in ("id_token", "state")
        )
        return (f'<form id="launch" method="post" action="{html.escape(launch_data["launch_url"])}">'
                f'{fields}</form><script>document.getElementById("launch").submit()</script>')  # fmt: skip


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

    @classmethod
    def create(cls, *, tool_key: rsa.RSAPrivateKey, members: list[dict[str, t.Any]],
               tool_login_url: str = "", tool_launch_url: str = "") -> Platform:  # fmt: skip
        """A platform with a key of its own, ``tool_key``'s public half registered for the tool."""
        key = new_key()
        conf = PlatformConf(
            tool_jwks={"keys": [jwk(tool_key, TOOL_KID)]}, platform_key=pem(key).decode(),
            platform_public_key=public_pem(key), tool_login_url=tool_login_url,
            tool_launch_url=tool_launch_url,
        )  # fmt: skip
        conf.get_registration()
        return cls(Store(members=[dict(m) for m in members]), conf)

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
        if parts.path == "/jwks":
            return self.send(http, 200, self.conf.get_jwks())
        if parts.path == "/launch":
            return self.login(http, request.get_data.get("user", ""))
        if parts.path == "/authorize":
            return self.authorize(http, request)
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

    def _member(self, user_id: str) -> dict[str, t.Any] | None:
        return next((m for m in self.store.members if m["user_id"] == user_id), None)

    def login(self, http: BaseHTTPRequestHandler, user_id: str) -> None:
        """A member clicks the course's link to the tool: the OIDC login initiation."""
        if self._member(user_id) is None:
            return self.send(http, 403, {"error": f"{user_id!r} is not in the course"})
        login = Login(None, self.conf)
        login.set_lti_message_hint(hint="resource-1")
        self.redirect(http, login.prepare_preflight_url(user_id))

    def authorize(self, http: BaseHTTPRequestHandler, request: HttpRequest) -> None:
        """The tool's authentication request: a signed launch of the member named by the hint."""
        found = self._member(request.get_data.get("login_hint", ""))
        if found is None:
            return self.send(http, 403, {"error": "unknown login_hint"})
        launch = Launch(request, self.conf)
        launch.set_user_data(found["user_id"], found["roles"], found["name"], found["email"],
                             found["lis_person_sourcedid"])  # fmt: skip
        launch.set_resource_link_claim("resource-1", title="cloudlabs")
        launch.set_launch_context_claim(context_id=CONTEXT["id"], context_label=CONTEXT["label"],
                                        context_title=CONTEXT["title"])  # fmt: skip
        launch.set_ags(f"{self.url}/lineitems")
        launch.set_nrps(f"{self.url}/memberships")
        try:
            form = launch.lti_launch()
        except Exception as exc:  # the tool's request is malformed: the platform says why
            return self.send(http, 400, {"error": f"{type(exc).__name__}: {exc}"})
        self.store.launches.append(found["user_id"])
        body = form.encode()
        http.send_response(200)
        http.send_header("Content-Type", "text/html")
        http.send_header("Content-Length", str(len(body)))
        http.end_headers()
        http.wfile.write(body)

    def token(self, http: BaseHTTPRequestHandler, form: dict[str, str]) -> None:
        try:
            answer = self.conf.get_access_token(form)
        except Exception as exc:  # every refusal is the client's: invalid_client
            self.store.refused.append(f"{type(exc).__name__}: {exc}")
            return self.send(http, 401, {"error": "invalid_client", "error_description": str(exc)})
        self.store.tokens += 1
        self.send(http, 200, answer)

    @staticmethod
    def redirect(http: BaseHTTPRequestHandler, url: str) -> None:
        http.send_response(302)
        http.send_header("Location", url)
        http.send_header("Content-Length", "0")
        http.end_headers()

    @staticmethod
    def send(http: BaseHTTPRequestHandler, code: int, data: t.Any,
             media_type: str = "application/json") -> None:  # fmt: skip
        body = json.dumps(data).encode()
        http.send_response(code)
        http.send_header("Content-Type", media_type)
        http.send_header("Content-Length", str(len(body)))
        http.end_headers()
        http.wfile.write(body)
