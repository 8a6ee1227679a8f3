"""The AWS emulator behind a small interface, with two real backends:

- ``embedded``: LocalStack's runtime in host mode from its own virtualenv, with cloudlabs'
  extension (``emulator/``); started and stopped by cloudlabs.
- ``external``: any LocalStack endpoint someone else runs (for example in Docker); cloudlabs only
  checks that it is healthy.

The embedded emulator runs cloudlabs' request guard (``emulator/cloudlabs_emulator/guard.py``):
students' requests reach only AWS APIs of their own account and LocalStack's read-only health
document; the grader's requests carry the backend's :attr:`Emulator.admin_token` in
:data:`ADMIN_HEADER`. An external emulator has no guard and no token.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Protocol

from grader.config import EmulatorConfig, load
from grader.errors import ConfigError

#: Header that marks the grader's requests to a guarded emulator.
ADMIN_HEADER = "X-Cloudlabs-Admin"
#: File in ``config.home`` where the embedded backend keeps the running emulator's admin token.
TOKEN_FILE = "admin-token"


@dataclasses.dataclass(frozen=True)
class Status:
    """What ``cloudlabs status`` shows."""

    running: bool
    endpoint_url: str
    backend: str
    pid: int | None = None
    log_file: str | None = None
    version: str | None = None
    services: dict[str, str] = dataclasses.field(default_factory=dict)
    instance: str | None = None  #: the guard's instance id (embedded backend only)


class Emulator(Protocol):
    """What the grader needs from an emulator."""

    config: EmulatorConfig

    @property
    def endpoint_url(self) -> str: ...

    @property
    def admin_token(self) -> str | None:
        """The token that makes requests the grader's, or None (no guard: external backend)."""

    def instance_id(self) -> str | None:
        """An id that changes whenever the emulator restarts, or None when it cannot be read."""

    def start(self) -> None:
        """Make the emulator healthy (start it if this backend can); raise EmulatorError."""

    def stop(self) -> None:
        """Stop what this backend started; a no-op when there is nothing to stop."""

    def status(self) -> Status: ...

    def logs(self, lines: int = 100) -> str: ...


def _get_json(url: str, timeout: float, token: str | None) -> object | None:
    request = urllib.request.Request(url, headers={ADMIN_HEADER: token} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return json.loads(resp.read())
    except (OSError, urllib.error.URLError, ValueError):
        return None


def health(endpoint_url: str, timeout: float = 2.0, *, token: str | None = None) -> dict | None:
    """LocalStack's health document, or None when nothing healthy answers. ``token`` (the
    backend's :attr:`Emulator.admin_token`) marks the request as the grader's."""
    document = _get_json(f"{endpoint_url}/_localstack/health", timeout, token)
    return document if isinstance(document, dict) else None


def instance_id(endpoint_url: str, *, token: str | None, timeout: float = 2.0) -> str | None:
    """The guarded emulator's instance id (``GET /_cloudlabs/instance``, grader only), or None
    when no guard answers (no token, a wrong token, an external emulator, nothing running)."""
    if not token:
        return None
    document = _get_json(f"{endpoint_url}/_cloudlabs/instance", timeout, token)
    instance = document.get("instance") if isinstance(document, dict) else None
    return instance if isinstance(instance, str) else None


def create(config: EmulatorConfig | None = None) -> Emulator:
    """The backend named by ``config.backend``."""
    config = config or load(EmulatorConfig, "emulator")
    if config.backend == "embedded":
        from grader.emulator.embedded import EmbeddedEmulator

        return EmbeddedEmulator(config)
    if config.backend == "external":
        from grader.emulator.external import ExternalEmulator

        return ExternalEmulator(config)
    raise ConfigError(
        f"unknown emulator backend {config.backend!r}",
        fix="set CLOUDLABS_EMULATOR_BACKEND to 'embedded' or 'external'",
    )


@contextlib.contextmanager
def running(config: EmulatorConfig | None = None) -> Iterator[Emulator]:
    """An emulator that is healthy inside the block; stopped afterwards if this call started it."""
    emulator = create(config)
    was_running = emulator.status().running
    emulator.start()
    try:
        yield emulator
    finally:
        if not was_running:
            emulator.stop()
