"""Which of the emulator's non-AWS routes a student may reach.

Besides the AWS APIs (matched later by service name, and checked by
:mod:`cloudlabs_emulator.isolation`), LocalStack serves HTTP routes of its own from two routers:
its internal API (``/_localstack/...``) and the edge router, to which services add routes as they
load (developer endpoints under ``/_aws/...``, API Gateway invoke URLs, SQS queue URLs, S3 website
endpoints, ...). LocalStack 2026.3.0 registers no ``/moto-api``, ``/_extension`` or ``/_pods``
routes in this setup; requests there are refused by prefix all the same. Every rule of both
routers is classified in :data:`ROUTES` by its path pattern (preceded by its host pattern, if it
has one):

- ``PUBLIC``: AWS-shaped user traffic that any caller may send, as in AWS;
- ``QUEUE``: an SQS queue URL (query protocol): public for the account in the URL only;
- ``HEALTH``: public for ``GET``/``HEAD`` only (LocalStack's health document);
- ``ADMIN``: the grader's only (requests with the admin token).

A request that a rule outside the table would serve is refused, and ``GET /_cloudlabs/routes``
lists the rule as ``unclassified`` (tests/emulator/test_guard.py fails until it is classified
here). Under the internal prefixes (:data:`ADMIN_PREFIXES`) a request is refused unless a
``PUBLIC`` rule (or the health document) serves it, whether or not any rule matches.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Rule

PUBLIC = "public"
HEALTH = "health"
ADMIN = "admin"
UNCLASSIFIED = "unclassified"

QUEUE = "queue"

#: Path prefixes of LocalStack's (and moto's) internal endpoints.
ADMIN_PREFIXES = (
    "/_localstack",  # includes /_localstack_lambda (the Docker Lambda executor's runtime API)
    "/_aws",
    "/_cloudlabs",
    "/moto-api",
    "/_extension",
    "/_pods",
)

_EXECUTE_API_HOST = (
    "<regex('.+?'):api_id><regex('(-vpce-[^.]+)?'):vpce_suffix>.execute-api.<regex('.*'):server>"
)
_EXECUTE_API_VPCE_HOST = (
    "<regex('vpce-.+'):vpce_dns>.execute-api.<regex('.*'):region>vpce.<regex('.*'):server>"
)
_LAMBDA_URL_HOST = (
    "<api_id>.lambda-url."
    r"<regex('(us(-gov)?|ap|ca|cn|eu|sa)-(central|(north|south)?(east|west)?)-\d'):region>."
    "<regex('.*'):server>"
)
_S3_WEBSITE_HOST = '<regex(".*"):bucket_name>.s3-website.<regex(".*"):domain>'
_SQS_ACCOUNT_QUEUE = '/<regex("[0-9]{12}"):account_id>/<regex("[a-zA-Z0-9_-]+(.fifo)?"):queue_name>'
_SQS_PORT = '<regex("(:[0-9]{2,5})?"):port>'

#: Every rule LocalStack 2026.3.0 registers here (with all services loaded), classified.
ROUTES: dict[str, str] = {
    # internal API
    "/_localstack/health": HEALTH,  # PUT/POST write the document (or stop the emulator)
    "/_localstack/info": ADMIN,
    "/_localstack/plugins": ADMIN,
    "/_localstack/init": ADMIN,
    "/_localstack/init/<stage>": ADMIN,
    "/_localstack/swagger": ADMIN,
    "/_localstack/config": ADMIN,  # only with ENABLE_CONFIG_UPDATES
    "/_localstack/diagnose": ADMIN,  # only with DEBUG
    "/_localstack/usage": ADMIN,  # only with DEBUG
    "/openapi.yaml": ADMIN,
    # developer endpoints: they read (or delete) every account's data
    "/_aws/cloudwatch/metrics/raw": ADMIN,
    "/_aws/lambda/init": ADMIN,
    "/_aws/lambda/runtimes": ADMIN,
    "/_aws/ses": ADMIN,
    "/_aws/sns/platform-endpoint-messages": ADMIN,
    "/_aws/sns/sms-messages": ADMIN,
    "/_aws/sns/subscription-tokens/<path:subscription_arn>": ADMIN,
    "/_aws/sns/phone-opt-outs": ADMIN,
    "/_aws/sqs/messages": ADMIN,
    "/_aws/sqs/messages/<region>/<account_id>/<queue_name>": ADMIN,
    # the certificate SNS signs messages with (AWS publishes its own): public
    "/_aws/sns/SimpleNotificationService-6c6f63616c737461636b69736e696365.pem": PUBLIC,
    # API Gateway invoke URLs (the labs use /restapis/<id>/<stage>/_user_request_/...)
    f"{_EXECUTE_API_HOST} /": PUBLIC,
    f"{_EXECUTE_API_HOST} /<stage>/": PUBLIC,
    f"{_EXECUTE_API_HOST} /<stage>/<greedy_path:path>": PUBLIC,
    f"{_EXECUTE_API_VPCE_HOST} /": PUBLIC,
    f"{_EXECUTE_API_VPCE_HOST} /<stage>/": PUBLIC,
    f"{_EXECUTE_API_VPCE_HOST} /<stage>/<greedy_path:path>": PUBLIC,
    "/_aws/execute-api/<api_id>/": PUBLIC,
    "/_aws/execute-api/<api_id>/<stage>/": PUBLIC,
    "/_aws/execute-api/<api_id>/<stage>/<greedy_path:path>": PUBLIC,
    "/restapis/<api_id>/<stage>/_user_request_": PUBLIC,
    "/restapis/<api_id>/<stage>/_user_request_/<greedy_path:path>": PUBLIC,
    # Lambda function URLs, S3 website endpoints
    f"{_LAMBDA_URL_HOST} /": PUBLIC,
    f"{_LAMBDA_URL_HOST} /<path:path>": PUBLIC,
    f"{_S3_WEBSITE_HOST} /": PUBLIC,
    f"{_S3_WEBSITE_HOST} /<path:path>": PUBLIC,
    # SQS queue URLs (query protocol), one rule per SQS_ENDPOINT_STRATEGY
    f'sqs.<regex("([a-z0-9-]+\\.)?"):region><regex(".*"):domain>{_SQS_PORT} {_SQS_ACCOUNT_QUEUE}': QUEUE,
    f'<regex("([a-z0-9-]+\\.)?"):region>queue.<regex(".*"):domain>{_SQS_PORT} {_SQS_ACCOUNT_QUEUE}': QUEUE,
    f'/queue/<regex("[a-z0-9-]+"):region>{_SQS_ACCOUNT_QUEUE}': QUEUE,
    _SQS_ACCOUNT_QUEUE: QUEUE,
}


#: Handlers that services add to LocalStack's handler chain ahead of the AWS service router, by
#: module and qualified name. They are not routes, but they answer requests too, so each is
#: reviewed here; those after the request parser run behind :class:`~.guard.IsolationGuard`.
HANDLERS: dict[str, str] = {
    # CORS preflight (OPTIONS) for S3 buckets, answered from the bucket's CORS rules without
    # credentials, as in AWS
    "localstack.services.s3.cors S3CorsHandler": PUBLIC,
    # CORS headers on S3 responses; runs after the isolation check
    "localstack.services.s3.cors s3_cors_request_handler": PUBLIC,
}


@dataclasses.dataclass(frozen=True)
class Verdict:
    refused: bool
    reason: str = ""
    message: str = ""


ALLOWED = Verdict(False)


def normalized_path(request: Any) -> str:
    """The request path as a router would see it: slashes merged, no trailing slash."""
    path = re.sub(r"/+", "/", request.path or "/")
    return path.rstrip("/") or "/"


def is_shutdown_switch(request: Any) -> bool:
    if request.method != "POST" or normalized_path(request) != "/_localstack/health":
        return False
    try:
        data = json.loads(request.get_data(cache=True) or b"{}")
    except (ValueError, RecursionError):
        return False
    return isinstance(data, dict) and data.get("action") in {"kill", "restart"}


def _routers() -> list[tuple[str, Any]]:
    from localstack.services.edge import ROUTER
    from localstack.services.internal import get_internal_apis

    return [("internal", get_internal_apis()), ("edge", ROUTER)]


def rule_key(rule: Rule) -> str:
    """A rule's key in :data:`ROUTES`: its path pattern, after its host pattern if it has one."""
    host = rule.host if rule.host not in (None, "", "<__host__>") else None
    return f"{host} {rule.rule}" if host else rule.rule


def classification(rule: Rule) -> str:
    return ROUTES.get(rule_key(rule), UNCLASSIFIED)


def _match(router: Any, request: Any) -> tuple[Rule, dict[str, Any]] | None:
    from rolo.request import get_raw_path

    try:
        adapter = router.url_map.bind(server_name=request.host)
        return adapter.match(get_raw_path(request), method=request.method, return_rule=True)
    except HTTPException:  # NotFound, MethodNotAllowed, RequestRedirect: this router serves none
        return None


def caller_account(request: Any) -> str:
    """The account LocalStack will see in this request (from its access key id)."""
    from localstack.aws.accounts import get_account_id_from_access_key_id
    from localstack.constants import DEFAULT_AWS_ACCOUNT_ID
    from localstack.utils.aws.request_context import extract_access_key_id_from_auth_header

    key = extract_access_key_id_from_auth_header(request.headers)
    if not key:
        key = (request.args.get("X-Amz-Credential") or "").split("/")[0]
    return get_account_id_from_access_key_id(key) if key else DEFAULT_AWS_ACCOUNT_ID


def _allowed(access: str, request: Any, args: dict[str, Any]) -> bool:
    if access == PUBLIC:
        return True
    if access == HEALTH:
        return request.method in ("GET", "HEAD")
    if access == QUEUE:
        return args.get("account_id") == caller_account(request)
    return False


def classify(request: Any) -> Verdict:
    """Whether a student's request may go on (AWS requests are checked later, in isolation)."""
    path = normalized_path(request)
    internal = next((p for p in ADMIN_PREFIXES if path.startswith(p)), None)
    for name, router in _routers():
        matched = _match(router, request)
        if matched is None:
            continue
        rule, args = matched
        access = classification(rule)
        if _allowed(access, request, args):
            return ALLOWED
        if access == QUEUE:
            return Verdict(
                True,
                f"queue of account {args.get('account_id')}",
                "cloudlabs: this queue belongs to another account",
            )
        return Verdict(True, f"{access} {name} route {rule_key(rule)}")
    if internal:
        return Verdict(True, f"internal path {internal}")
    return ALLOWED


def _handler_key(handler: Any) -> str:
    target = getattr(handler, "__self__", None) or handler  # a bound method: its object
    kind = target if callable(target) and hasattr(target, "__qualname__") else type(target)
    return f"{kind.__module__} {kind.__qualname__}"


def describe() -> Iterator[dict[str, Any]]:
    """Every rule of both routers and every handler services added to the chain, with its
    classification (for ``GET /_cloudlabs/routes``)."""
    from localstack.aws import handlers

    for chain_name in ("preprocess_request", "serve_custom_service_request_handlers"):
        for handler in getattr(handlers, chain_name).handlers:
            key = _handler_key(handler)
            yield {
                "router": chain_name,
                "key": key,
                "methods": [],
                "endpoint": key.split(" ")[1],
                "module": key.split(" ")[0],
                "access": HANDLERS.get(key, UNCLASSIFIED),
            }
    for name, router in _routers():
        for rule in router.url_map.iter_rules():
            endpoint = rule.endpoint
            yield {
                "router": name,
                "key": rule_key(rule),
                "methods": sorted(rule.methods or ()),
                "endpoint": getattr(endpoint, "__qualname__", None) or type(endpoint).__qualname__,
                "module": getattr(endpoint, "__module__", None),
                "access": classification(rule),
            }
