"""Typed, frozen settings with defaults. Any field can be overridden from the environment as
``CLOUDLABS_<SECTION>_<FIELD>`` (for example ``CLOUDLABS_EMULATOR_PORT=4600``) or by keyword
arguments of the Python API; the command line passes its options as keyword arguments."""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from grader import ROOT
from grader.errors import ConfigError

ENV_PREFIX = "CLOUDLABS_"
T = TypeVar("T")


def _field(default: Any, doc: str, shown: str = "") -> Any:
    """A setting: its default, a one-line description, and how docs show a default that depends
    on the machine (``shown``)."""
    return dataclasses.field(default=default, metadata={"doc": doc, "shown": shown})


@dataclasses.dataclass(frozen=True)
class EmulatorConfig:
    """Where the AWS emulator runs and how cloudlabs starts it."""

    backend: str = _field("embedded", "'embedded' (LocalStack in host mode) or 'external'")
    host: str = _field("127.0.0.1", "interface the embedded emulator listens on")
    port: int = _field(4566, "port of the embedded emulator")
    endpoint_url: str = _field("", "URL of an external emulator (backend 'external')")
    home: Path = _field(ROOT / ".cloudlabs", "directory for emulator state, logs and pid file")
    python: Path = _field(ROOT / ".venv-emulator" / "bin" / "python", "the emulator's interpreter")
    start_timeout: float = _field(90.0, "seconds to wait for the emulator to become healthy")
    region: str = _field("us-east-1", "AWS region of every submission and of its state checks")

    @property
    def url(self) -> str:
        return self.endpoint_url or f"http://{self.host}:{self.port}"


@dataclasses.dataclass(frozen=True)
class GradeConfig:
    """How submissions are executed and scored."""

    # twice the cores: a submission's pipeline waits on the emulator and the trusted process
    # while another's kernel computes (storage lab, 2 cores: 2.6x nbgrader with 2, 3.0x with 4)
    workers: int = _field(
        2 * (os.cpu_count() or 1), "submissions graded at once", "twice the number of CPU cores"
    )
    cell_timeout: float = _field(60.0, "seconds one cell may run before it counts as hung")
    notebook_timeout: float = _field(600.0, "seconds of execution one submission may use in all")
    memory_mb: int = _field(2048, "address-space limit of a student's kernel, in MiB")
    output_limit: int = _field(100_000, "characters of output kept per cell")
    sandbox: str = _field("auto", "'bwrap', 'none' or 'auto' (bwrap when available)")


@dataclasses.dataclass(frozen=True)
class SigningConfig:
    """How results graded where students have write access are signed and verified."""

    key: str = _field("", "the instructor's secret for HMAC signatures of results (never shown)")


@dataclasses.dataclass(frozen=True)
class LateConfig:
    """When a lab is due and what handing it in late costs (grader.late)."""

    due: str = _field("", "due time, ISO 8601 with its zone (2026-12-10T23:59+01:00); empty: none")
    grace_minutes: float = _field(0.0, "minutes after the due time that still count as on time")
    penalty_per_day: float = _field(0.0, "percent of the lab's points lost per day (or part) late")
    max_penalty: float = _field(100.0, "the most lateness can cost, in percent of the lab's points")


@dataclasses.dataclass(frozen=True)
class LtiConfig:
    """The LMS course cloudlabs posts grades to, as an LTI 1.3 tool registered there."""

    issuer: str = _field("", "the platform's issuer (iss), e.g. https://canvas.instructure.com")
    client_id: str = _field("", "the tool's client id on the platform")
    deployment_id: str = _field("", "the tool's deployment id on the platform")
    token_url: str = _field("", "the platform's OAuth2 token endpoint")
    audience: str = _field("", "aud of the tool's token request (empty: the token URL)")
    private_key: str = _field("", "path of the PEM file of the tool's RSA private key")
    key_id: str = _field("", "kid of the tool's key, as in the JWKS registered on the platform")
    lineitems_url: str = _field("", "the course's AGS line items URL (from a launch's claim)")
    memberships_url: str = _field("", "the course's NRPS context memberships URL")
    student_field: str = _field(
        "user_id", "member field naming students as cloudlabs does: user_id, email, "
        "lis_person_sourcedid (the hub's username claim)",
    )  # fmt: skip
    authorize_url: str = _field("", "the platform's OIDC authorization endpoint (hub launches)")
    jwks_url: str = _field("", "the platform's public key set (JWKS) URL (hub launches)")
    username_claim: str = _field(
        "sub", "id_token claim that names the hub user (sub is NRPS's user_id); custom_<name> "
        "reads the custom claim",
    )  # fmt: skip
    tag: str = _field("cloudlabs", "tag of the line items cloudlabs creates (one per lab)")
    timeout: float = _field(30.0, "seconds one request to the platform may take")


def _convert(raw: str, kind: Any, name: str) -> Any:
    if isinstance(kind, types.UnionType):
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    try:
        if kind is bool:
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        return kind(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{name}={raw!r} is not a valid {getattr(kind, '__name__', kind)}",
            fix=f"set {name} to a valid value or unset it",
        ) from exc


def load(cls: type[T], section: str, **overrides: Any) -> T:
    """Build ``cls`` from its defaults, then ``CLOUDLABS_<SECTION>_*`` variables, then
    ``overrides`` (None values are ignored, so CLI options that were not given fall through)."""
    values: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = f"{ENV_PREFIX}{section.upper()}_{field.name.upper()}"
        if name in os.environ:
            values[field.name] = _convert(os.environ[name], hints[field.name], name)
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if unknown:
        raise ConfigError(f"unknown {section} settings: {', '.join(sorted(unknown))}")
    return cls(**values)


def describe(cls: type) -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for each field, for docs (grader.reference);
    a path in the checkout is shown as ``<checkout>/...``. The section is the class name without
    ``Config``, the name :func:`load` is called with (tests/test_docs.py proves that ``load``
    reads every variable named here)."""
    section = cls.__name__.removesuffix("Config").upper()
    rows = []
    for f in dataclasses.fields(cls):
        default = f.metadata.get("shown") or f.default
        if isinstance(default, Path) and default.is_relative_to(ROOT):
            default = f"<checkout>/{default.relative_to(ROOT)}"
        rows.append((f"{ENV_PREFIX}{section}_{f.name.upper()}", str(default), f.metadata["doc"]))
    return rows
