"""The AWS emulator behind a small interface, with two real backends:

- ``embedded``: LocalStack's runtime in host mode from its own virtualenv, with cloudlabs'
  extension (``emulator/``); started and stopped by cloudlabs.
- ``external``: any LocalStack endpoint someone else runs (for example in Docker); cloudlabs only
  checks that it is healthy.
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


class Emulator(Protocol):
    """What the grader needs from an emulator."""

    config: EmulatorConfig

    @property
    def endpoint_url(self) -> str: ...

    def start(self) -> None:
        """Make the emulator healthy (start it if this backend can); raise EmulatorError."""

    def stop(self) -> None:
        """Stop what this backend started; a no-op when there is nothing to stop."""

    def status(self) -> Status: ...

    def logs(self, lines: int = 100) -> str: ...


def health(endpoint_url: str, timeout: float = 2.0) -> dict | None:
    """LocalStack's health document, or None when nothing healthy answers."""
    try:
        with urllib.request.urlopen(f"{endpoint_url}/_localstack/health", timeout=timeout) as resp:
            return json.loads(resp.read())
    except (OSError, urllib.error.URLError, ValueError):
        return None


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
