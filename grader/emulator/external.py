"""An emulator someone else runs, for example LocalStack in Docker (pinned):

    docker run -d -p 4566:4566 localstack/localstack:4.14.0
    export CLOUDLABS_EMULATOR_BACKEND=external CLOUDLABS_EMULATOR_ENDPOINT_URL=http://127.0.0.1:4566

Images after 4.14.0 need a LOCALSTACK_AUTH_TOKEN. Without cloudlabs' extension such an emulator
may lack services the labs use (the community image has no ELBv2, Auto Scaling or ECS).

Such an emulator has no cloudlabs request guard either: no admin token (:attr:`admin_token` is
None, requests go without one), no instance id (:meth:`instance_id` is None, so the grader cannot
tell a restart), and LocalStack's internal endpoints (``/_localstack/*``, ``/_aws/*``), internal
buckets and cross-account lookups stay open to any client that reaches it. Use it for trusted
notebooks, not to grade a class.
"""

from __future__ import annotations

import time

from grader.config import EmulatorConfig
from grader.emulator import Status, health
from grader.errors import ConfigError, EmulatorError


class ExternalEmulator:
    """Checks an endpoint it does not own; never starts or stops anything."""

    def __init__(self, config: EmulatorConfig) -> None:
        if not config.endpoint_url:
            raise ConfigError(
                "the external emulator backend needs an endpoint URL",
                fix="set CLOUDLABS_EMULATOR_ENDPOINT_URL, e.g. http://127.0.0.1:4566",
            )
        self.config = config

    @property
    def endpoint_url(self) -> str:
        return self.config.endpoint_url

    @property
    def admin_token(self) -> str | None:
        """Always None: an external emulator has no cloudlabs guard."""
        return None

    def instance_id(self) -> str | None:
        """Always None: without the guard there is no instance id to read."""
        return None

    def start(self) -> None:
        deadline = time.monotonic() + min(self.config.start_timeout, 30.0)
        while time.monotonic() < deadline:
            if health(self.endpoint_url):
                return
            time.sleep(0.5)
        raise EmulatorError(
            f"no emulator answers at {self.endpoint_url}",
            fix="start it (e.g. `docker run -d -p 4566:4566 localstack/localstack:4.14.0`) or "
            "use the embedded one: unset CLOUDLABS_EMULATOR_BACKEND and run `cloudlabs up`",
        )

    def stop(self) -> None:
        return None

    def status(self) -> Status:
        document = health(self.endpoint_url)
        return Status(
            running=document is not None,
            endpoint_url=self.endpoint_url,
            backend="external",
            version=(document or {}).get("version"),
            services=(document or {}).get("services", {}),
        )

    def logs(self, lines: int = 100) -> str:
        return f"the external emulator at {self.endpoint_url} keeps its own logs"
