"""The class hub: JupyterHub for one class on one machine (deploy/jupyterhub/jupyterhub_config.py).

- **One emulator for the class**, a service the hub starts and stops (``python -m grader.hub
  emulator``), listening on loopback.
- **Each student in an account of their own**: the account id and resource prefix come from the
  user name and a class secret (:func:`identity`), the same after every restart, never the default
  ``000000000000``, and unguessable to other students (the secret is out of their reach, and the
  emulator has no way to list accounts). The notebooks' parameters cells read them from
  ``CLOUDLABS_ACCOUNT_ID`` and ``CLOUDLABS_PREFIX``.
- **A self-check service** (:mod:`grader.hub_check`): a lab's check cell sends the saved notebook
  there, as data, and gets the table back; the lab's state checks never enter a student's sandbox.
- **Each student's server in a sandbox** (:mod:`grader.hub_spawner`): bubblewrap's allow-list of
  :mod:`grader.sandbox`, with the student's home as the only writable place, a user id of its own
  when the hub runs as root, memory and process limits. No student sees another's files, the hub's
  database, the class secret or the emulator's state.

Settings: :class:`HubConfig` (``CLOUDLABS_HUB_*``)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import secrets
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from grader import ROOT
from grader.config import EmulatorConfig, LtiConfig, _field, load
from grader.errors import ConfigError

SECRET_FILE = "class-secret"


@dataclasses.dataclass(frozen=True)
class HubConfig:
    """The class hub on one machine (deploy/jupyterhub)."""

    ip: str = _field("127.0.0.1", "interface the hub listens on (behind a TLS proxy in production)")
    port: int = _field(8000, "port of the hub (its proxy's public side)")
    hub_api_port: int = _field(8081, "port of the hub's own API (loopback)")
    proxy_api_port: int = _field(8001, "port of the proxy's API (loopback)")
    data: Path = _field(
        ROOT / ".cloudlabs-hub", "the hub's state: homes, exchange, secret, database"
    )
    authenticator: str = _field("lti13", "'lti13' (launched from the LMS) or 'dummy' (demo, tests)")
    password: str = _field("", "the shared password of the 'dummy' authenticator (demo and tests)")
    admin_users: str = _field("", "comma-separated user names with the instructor's rights")
    memory_mb: int = _field(4096, "address-space limit of each process of a student's server, MiB")
    emulator_port: int = _field(4599, "port of the class's emulator (loopback)")
    check_port: int = _field(4598, "port of the class's self-check service (loopback)")
    check_ip: str = _field("127.0.0.1", "interface the self-check service listens on")
    emulator_url: str = _field("", "the class's emulator, when not on loopback (Kubernetes)")
    course_id: str = _field("cloudlabs", "nbgrader course id of the exchange")


@dataclasses.dataclass(frozen=True)
class Identity:
    """Where one student works in the emulator."""

    account_id: str
    prefix: str


def class_secret(data: Path) -> bytes:
    """The class secret (made on first use, readable by the hub's user alone)."""
    path = data / SECRET_FILE
    if not path.exists():
        data.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return path.read_bytes().strip()


def identity(secret: bytes, username: str) -> Identity:
    """``username``'s account id (12 digits, never 000000000000) and prefix, from ``secret``."""

    def mac(purpose: str) -> bytes:
        return hmac.new(secret, f"{purpose}\0{username}".encode(), hashlib.sha256).digest()

    account = 10**11 + int.from_bytes(mac("account")[:8], "big") % (9 * 10**11)
    return Identity(str(account), "u" + mac("prefix").hex()[:10])


def emulator_config(config: HubConfig) -> EmulatorConfig:
    return load(
        EmulatorConfig, "emulator", port=config.emulator_port, home=config.data / "emulator"
    )


def configure(c: Any, config: HubConfig | None = None) -> HubConfig:
    """Set JupyterHub's configuration object ``c`` for the class (jupyterhub_config.py)."""
    config = config or load(HubConfig, "hub")
    data = config.data.resolve()
    class_secret(data)
    c.JupyterHub.ip = config.ip
    c.JupyterHub.port = config.port
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = config.hub_api_port
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{config.proxy_api_port}"
    c.JupyterHub.db_url = f"sqlite:///{data / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(data / "jupyterhub_cookie_secret")
    c.ConfigurableHTTPProxy.pid_file = str(data / "jupyterhub-proxy.pid")
    proxy = ROOT / "deploy" / "jupyterhub" / "node_modules" / ".bin" / "configurable-http-proxy"
    c.ConfigurableHTTPProxy.command = [str(proxy)]
    c.JupyterHub.cleanup_servers = True  # the servers end with the hub
    c.JupyterHub.spawner_class = "grader.hub_spawner.SandboxSpawner"
    c.Spawner.default_url = "/lab"
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 120
    admins = {name.strip() for name in config.admin_users.split(",") if name.strip()}
    c.Authenticator.admin_users = admins
    if config.authenticator == "dummy":
        c.JupyterHub.authenticator_class = "dummy"
        c.DummyAuthenticator.password = config.password
        c.Authenticator.allow_all = True
    elif config.authenticator == "lti13":
        _launch_from_the_lms(c, load(LtiConfig, "lti"))
    else:
        raise ConfigError(
            f"unknown authenticator {config.authenticator!r}",
            fix="set CLOUDLABS_HUB_AUTHENTICATOR to 'lti13' or 'dummy'",
        )
    env = {
        "CLOUDLABS_HUB_DATA": str(data),
        "CLOUDLABS_HUB_EMULATOR_PORT": str(config.emulator_port),
        "CLOUDLABS_HUB_CHECK_PORT": str(config.check_port),
    }
    c.JupyterHub.services = [
        {
            "name": "cloudlabs-emulator",
            "command": [sys.executable, "-m", "grader.hub", "emulator"],
            "environment": env,
            "cwd": str(ROOT),
        },
        {  # students' self-checks (grader/hub_check.py), graded outside their sandboxes
            "name": "cloudlabs-check",
            "command": [sys.executable, "-m", "grader.hub_check"],
            "environment": env,
            "cwd": str(ROOT),
        },
    ]
    return config


def _launch_from_the_lms(c: Any, lti: LtiConfig) -> None:
    """jupyterhub-ltiauthenticator, on the tool registration that grade passback uses too."""
    needed = {"issuer": lti.issuer, "client_id": lti.client_id,
              "authorize_url": lti.authorize_url, "jwks_url": lti.jwks_url}  # fmt: skip
    missing = [f"CLOUDLABS_LTI_{name.upper()}" for name, value in needed.items() if not value]
    if missing:
        raise ConfigError(f"launching from the LMS needs {', '.join(missing)}",
                          fix="set them from the tool's registration on the LMS "
                          "(docs/classroom.md), or CLOUDLABS_HUB_AUTHENTICATOR=dummy for a demo")  # fmt: skip
    c.JupyterHub.authenticator_class = "ltiauthenticator.lti13.auth.LTI13Authenticator"
    c.LTI13Authenticator.issuer = lti.issuer
    c.LTI13Authenticator.client_id = {lti.client_id}
    c.LTI13Authenticator.authorize_url = lti.authorize_url
    c.LTI13Authenticator.jwks_endpoint = lti.jwks_url
    c.LTI13Authenticator.username_key = lti.username_claim
    c.Authenticator.allow_all = True  # who may launch is the LMS's decision: it signs each launch


def serve_emulator(config: HubConfig | None = None) -> None:
    """The class's emulator, in the foreground until SIGTERM or SIGINT (a hub-managed service)."""
    from grader import emulator as emu

    config = config or load(HubConfig, "hub")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with emu.running(emulator_config(config)) as running:
        print(f"cloudlabs emulator for the class at {running.endpoint_url}", flush=True)
        stop.wait()


if __name__ == "__main__":
    if sys.argv[1:] == ["emulator"]:
        serve_emulator()
    else:
        sys.exit("usage: python -m grader.hub emulator")
