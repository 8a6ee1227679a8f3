"""Closes LocalStack's remote shutdown switch.

``POST /_localstack/health {"action": "kill"|"restart"}`` stops the emulator for everyone, and any
student kernel could send it. cloudlabs stops its emulator with a signal (`cloudlabs down`), so the
switch is refused. Loaded by the ``localstack.hooks.on_infra_start`` entry point.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from localstack.http import Request, Response
from localstack.runtime import hooks

LOG = logging.getLogger(__name__)


def _guard(on_post: Callable[[Request], Response]) -> Callable[[Request], Response]:
    def guarded(request: Request) -> Response:
        data = request.get_json(True, True) or {}
        if isinstance(data, dict) and data.get("action") in {"kill", "restart"}:
            return Response("cloudlabs: stop the emulator with `cloudlabs down`", 403)
        return on_post(request)

    return guarded


@hooks.on_infra_start()
def refuse_remote_shutdown() -> None:
    from localstack.services.internal import get_internal_apis

    for rule in get_internal_apis().url_map.iter_rules():
        if rule.rule == "/_localstack/health" and "POST" in (rule.methods or ()):
            rule.endpoint = _guard(rule.endpoint)
            LOG.info("remote shutdown through /_localstack/health is refused")
