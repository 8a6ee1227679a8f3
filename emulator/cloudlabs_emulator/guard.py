"""Keeps the shared emulator up and its accounts apart, whatever a student sends it.

Student code (Jupyter kernels, Lambda functions) can send any HTTP request to the emulator. The
``localstack.hooks.on_infra_start`` hook :func:`install` (entry point in ``emulator/pyproject.toml``)
runs before LocalStack starts serving and

- binds the gateway to the configured interface only: LocalStack 2026.3.0's twisted server
  ignores the host of ``GATEWAY_LISTEN`` for IPv4 and listens on every interface;
- puts :class:`RequestGuard` first in the gateway's request handler chain. Requests that carry
  ``X-Cloudlabs-Admin: $CLOUDLABS_ADMIN_TOKEN`` are the grader's (the embedded backend generates
  the token at each start, see ``grader/emulator/embedded.py``); requests that carry this emulator
  process's internal proof are LocalStack's own (see below); everything else is a student's and may
  reach only the routes :mod:`cloudlabs_emulator.routes` classifies as public. Unclassified routes
  are refused;
- puts :class:`IsolationGuard` right after LocalStack has parsed an AWS request (service,
  operation, account, parameters), where it refuses, with an ``AccessDenied`` error in the
  service's own protocol, what :mod:`cloudlabs_emulator.isolation` finds crossing accounts or
  touching LocalStack's own resources: for students' requests, and for LocalStack's internal calls
  made on a student's behalf (an API Gateway integration, an SNS subscription, ...);
- serves the grader-only endpoints ``GET /_cloudlabs/instance`` (``{"instance": id, "pid": n}``, a
  random id drawn at start, so the grader notices a restarted emulator) and
  ``GET /_cloudlabs/routes[?load=all]`` (every route the gateway serves, with its classification;
  ``load=all`` loads every service first, since services add their routes as they load).

LocalStack's internal clients (``localstack.aws.connect.connect_to``, which services use to call
each other, e.g. SNS delivering to SQS or Lambda reading its code bucket) are *not* in-memory here
(``IN_MEMORY_CLIENT`` is off): they send HTTP requests to the gateway on loopback, marked with the
header ``x-localstack-data`` (a JSON "DTO"), and with whatever account their access key names
(often the default account 000000000000 or LocalStack's internal account). Any student could send
that header too. So :func:`_prove_internal_calls` makes every DTO that this process writes carry a
secret drawn at start, which never leaves the process except on loopback to itself; the guard
treats a request as internal only when the secret matches, and strips the header from any other
request so LocalStack does not mistake it for an internal call either (in LocalStack 2026.3.0 the
DTO grants nothing by itself: it is read for logging, metrics and shutdown only). It also strips a
client's ``x-moto-account-id``: LocalStack adds that header to tell moto the request's account, and
moto would take a client's copy, which comes first, for account B to act in account A.

The guard does not authenticate anyone: LocalStack takes the account from the access key id, so
whoever knows an account id can act as that account. Account ids are unguessable (the grader
draws them) and, with the guard, no endpoint lists them; but they are part of every ARN and
queue URL, so a student who shows another an ARN has shown the account.

``POST /_localstack/health {"action": "kill"|"restart"}`` (LocalStack's remote shutdown switch) is
refused even for the grader: cloudlabs stops its emulator with a signal (``cloudlabs down``).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import socket
import sys
from typing import Any

from localstack.aws.api import CommonServiceException, RequestContext
from localstack.aws.chain import HandlerChain
from localstack.http import Response
from localstack.runtime import hooks

from cloudlabs_emulator import isolation, routes

LOG = logging.getLogger(__name__)

ADMIN_HEADER = "X-Cloudlabs-Admin"
TOKEN_ENV = "CLOUDLABS_ADMIN_TOKEN"
REFUSAL = "cloudlabs: this endpoint is for the grader only"
DTO_HEADER = "x-localstack-data"  # localstack.aws.connect.INTERNAL_REQUEST_PARAMS_HEADER
_PROOF_KEY = "cloudlabs"

#: Drawn at start: tells this emulator process from any earlier or later one.
INSTANCE_ID = secrets.token_hex(16)
#: Marks the DTOs this process writes (see the module docstring); never sent beyond loopback.
_INTERNAL_SECRET = secrets.token_urlsafe(32)
#: The grader's token; popped from the environment so no child process inherits it. Without it
#: (an emulator not started by the embedded backend) no request is the grader's.
_ADMIN_TOKEN = os.environ.pop(TOKEN_ENV, "") or None


def is_admin(headers: Any) -> bool:
    offered = (headers.get(ADMIN_HEADER) or "").encode("utf-8", "replace")
    return _ADMIN_TOKEN is not None and hmac.compare_digest(offered, _ADMIN_TOKEN.encode())


def _refuse(chain: HandlerChain, response: Response, message: str = REFUSAL) -> None:
    response.status_code = 403
    response.set_response(json.dumps({"message": message}) + "\n")
    response.mimetype = "application/json"
    chain.stop()


class RequestGuard:
    """First handler of the chain: decides who sent the request and what it may reach."""

    def __call__(self, chain: HandlerChain, context: RequestContext, response: Response) -> None:
        request = context.request
        headers = request.headers
        admin = is_admin(headers)
        headers.remove(ADMIN_HEADER)
        dto = self._internal(headers)
        internal = dto is not None
        if not internal:
            # LocalStack tells moto the account in this header (added later in the chain); a
            # copy from the client would come first and win.
            headers.remove("x-moto-account-id")
        context.cloudlabs_admin = admin  # type: ignore[attr-defined]
        context.cloudlabs_internal = internal  # type: ignore[attr-defined]
        context.cloudlabs_source_arn = (dto or {}).get("source_arn")  # type: ignore[attr-defined]

        if routes.is_shutdown_switch(request):
            _refuse(chain, response, "cloudlabs: stop the emulator with `cloudlabs down`")
            return
        if routes.normalized_path(request).startswith("/_cloudlabs"):
            if not admin:
                _refuse(chain, response)
                return
            self._serve_admin(chain, request, response)
            return
        if admin or internal:
            return
        verdict = routes.classify(request)
        if verdict.refused:
            LOG.info("cloudlabs guard refused %s %s: %s", request.method, request.path, verdict)
            _refuse(chain, response, verdict.message or REFUSAL)

    @staticmethod
    def _internal(headers: Any) -> dict[str, Any] | None:
        """The DTO of an internal call of this process (without its proof), else None."""
        raw = headers.get(DTO_HEADER)
        if raw is None:
            return None
        try:
            dto = json.loads(raw)
        except (ValueError, RecursionError):
            dto = None
        proof = dto.pop(_PROOF_KEY, None) if isinstance(dto, dict) else None
        if isinstance(proof, str) and hmac.compare_digest(
            proof.encode("utf-8", "replace"), _INTERNAL_SECRET.encode()
        ):
            headers[DTO_HEADER] = json.dumps(dto, separators=(",", ":"))
            return dto
        headers.remove(DTO_HEADER)  # a student's imitation: not an internal call
        return None

    @staticmethod
    def _serve_admin(chain: HandlerChain, request: Any, response: Response) -> None:
        path = routes.normalized_path(request).rstrip("/")
        if path == "/_cloudlabs/instance" and request.method in ("GET", "HEAD"):
            chain.respond(200, {"instance": INSTANCE_ID, "pid": os.getpid()})
        elif path == "/_cloudlabs/routes" and request.method == "GET":
            if request.args.get("load") == "all":
                _load_all_services()
            chain.respond(200, {"routes": list(routes.describe())})
        else:
            chain.respond(404, {"message": f"cloudlabs: no such endpoint {path}"})


class IsolationGuard:
    """Runs once LocalStack has parsed an AWS request (service, operation, account, parameters)."""

    def __call__(self, chain: HandlerChain, context: RequestContext, response: Response) -> None:
        if getattr(context, "cloudlabs_admin", False):
            return
        if context.service is None or context.operation is None:
            return
        internal = getattr(context, "cloudlabs_internal", False)
        account = context.account_id
        if internal:  # checked for the account it acts for (see isolation), if any
            account = isolation.acting_account(
                context, getattr(context, "cloudlabs_source_arn", None)
            )
            if account is None:
                return
        problem = isolation.check(context, account=account, internal=internal)
        if problem:
            LOG.info(
                "cloudlabs guard refused %s.%s %s %s: %s",
                context.service.service_name,
                context.operation.name,
                "(internal) for" if internal else "from",
                account,
                problem,
            )
            raise CommonServiceException(
                "AccessDenied", f"cloudlabs: {problem}", status_code=403, sender_fault=True
            )


def _load_all_services() -> None:
    """Load every service (their routes appear only once they load), for the route listing."""
    from localstack.services.plugins import SERVICE_PLUGINS

    for name in SERVICE_PLUGINS.list_available():
        try:
            SERVICE_PLUGINS.require(name)
        except Exception as exc:  # a service that cannot load has no routes
            LOG.debug("service %s did not load: %s", name, exc)


# -- installation --------------------------------------------------------------------------------


def _bind_to_configured_interfaces() -> None:
    """Make LocalStack's twisted server listen on GATEWAY_LISTEN's hosts, not on 0.0.0.0."""
    from localstack import config
    from localstack.aws.serving.twisted import TLSMultiplexerFactory
    from localstack.runtime.server.twisted import TwistedRuntimeServer
    from rolo.serving.twisted import TwistedGateway
    from twisted.internet import endpoints, reactor, ssl

    def register(self, gateway, listen, ssl_creds=None):  # LocalStack's signature
        site = TwistedGateway(gateway)
        if ssl_creds:
            cert_file_name, key_file_name = ssl_creds
            context_factory = ssl.DefaultOpenSSLContextFactory(key_file_name, cert_file_name)
            context_factory.getContext().use_certificate_chain_file(cert_file_name)
            protocol_factory = TLSMultiplexerFactory(context_factory, False, site)
        else:
            protocol_factory = site
        for host_and_port in listen:
            host = host_and_port.host
            if config.is_ipv6_address(host):
                endpoint = endpoints.TCP6ServerEndpoint(reactor, host_and_port.port, interface=host)
            else:  # twisted wants an address ("localhost" is not one)
                interface = socket.gethostbyname(host)
                endpoint = endpoints.TCP4ServerEndpoint(
                    reactor, host_and_port.port, interface=interface
                )
            endpoint.listen(protocol_factory)

    TwistedRuntimeServer.register = register  # type: ignore[method-assign]


def _prove_internal_calls() -> None:
    """Make every DTO this process writes carry the internal secret (see the module docstring)."""
    from localstack.aws import connect

    original = connect.dump_dto
    if getattr(original, "cloudlabs_proof", False):
        return

    def dump_dto(data: Any) -> str:
        return original({**data, _PROOF_KEY: _INTERNAL_SECRET})

    dump_dto.cloudlabs_proof = True  # type: ignore[attr-defined]
    # Modules that imported the function by name before now keep the original: rebind them too.
    for module in list(sys.modules.values()):
        try:
            if getattr(module, "dump_dto", None) is original:
                module.dump_dto = dump_dto  # type: ignore[attr-defined]
        except Exception:  # a module with a lazy __getattr__ of its own
            continue


def _insert_after(handlers: list[Any], anchor: Any, handler: Any) -> None:
    index = next(i for i, h in enumerate(handlers) if h is anchor)
    handlers.insert(index + 1, handler)


@hooks.on_infra_start(priority=100)
def install() -> None:
    from localstack.aws import handlers
    from localstack.runtime import get_current_runtime

    _bind_to_configured_interfaces()
    _prove_internal_calls()
    gateway = get_current_runtime().components.gateway
    chain = gateway.request_handlers
    if not any(isinstance(h, RequestGuard) for h in chain):
        chain.insert(0, RequestGuard())
        _insert_after(chain, handlers.parse_service_request, IsolationGuard())
    if _ADMIN_TOKEN is None:
        LOG.warning("%s is not set: every grader-only endpoint is refused", TOKEN_ENV)
    LOG.info("cloudlabs guard installed (instance %s)", INSTANCE_ID)
