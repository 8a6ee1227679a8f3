"""LocalStack's runtime in host mode, started from the emulator virtualenv (``make setup``).

Each start draws an admin token, passes it to the emulator (``CLOUDLABS_ADMIN_TOKEN``) and keeps it
in ``config.home / "admin-token"`` (mode 0600, next to the pid file ``emulator.json``), where
``cloudlabs status``/``down`` and later grader processes find it. The emulator's request guard
(``emulator/cloudlabs_emulator/guard.py``) serves its internal endpoints only to requests that
carry it (header ``X-Cloudlabs-Admin``), and draws an instance id at each start that the grader
reads with :meth:`EmbeddedEmulator.instance_id` to notice a restarted emulator. Student code never
sees the token: the grader's sandbox hides ``config.home``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import tomllib
from pathlib import Path

import psutil

from grader import ROOT
from grader.config import EmulatorConfig
from grader.emulator import TOKEN_FILE, Status, health
from grader.emulator import instance_id as _instance_id
from grader.errors import EmulatorError, SetupError

EXTENSION = ROOT / "emulator"


@functools.cache
def extension_apis() -> tuple[str, ...]:
    """The APIs our extension serves, read from its entry points (one source of truth)."""
    project = tomllib.loads((EXTENSION / "pyproject.toml").read_text())
    providers = project["project"]["entry-points"]["localstack.aws.provider"]
    return tuple(name.split(":")[0] for name in providers)


def environment(config: EmulatorConfig, admin_token: str | None = None) -> dict[str, str]:
    """The emulator process's environment: host mode, offline, all state under ``config.home``,
    listening on ``config.host`` only (the guard makes LocalStack honour the host)."""
    state = config.home / "state"
    tmp = config.home / "tmp"
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        in {"PATH", "HOME", "LANG", "LC_ALL", "SSL_CERT_FILE", "USER", "CLOUDLABS_LAMBDA_SANDBOX"}
    }
    env.update(
        {
            "GATEWAY_LISTEN": f"{config.host}:{config.port}",
            "OVERRIDE_IN_DOCKER": "0",  # these machines look like containers; behave as a host
            "FILESYSTEM_ROOT": str(state),
            "TMPDIR": str(tmp),  # LocalStack unzips Lambda code under the temp directory
            "DNS_ADDRESS": "0",
            "DISABLE_EVENTS": "1",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "LAMBDA_RUNTIME_EXECUTOR": "cloudlabs",
            "SQS_ENDPOINT_STRATEGY": "path",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for api in extension_apis():
        env[f"PROVIDER_OVERRIDE_{api.upper().replace('-', '_')}"] = "cloudlabs"
    if admin_token:
        env["CLOUDLABS_ADMIN_TOKEN"] = admin_token
    return env


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file ``path`` that only this user can read."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a zombie child of ours counts as gone)."""
    if pid <= 0:
        return False
    try:
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return True
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
    with contextlib.suppress(ChildProcessError):  # reap it when it is our child
        os.waitpid(pid, os.WNOHANG)
    return False


def _is_our_emulator(pid: int, home: Path) -> bool:
    """True when ``pid`` is a LocalStack runtime whose state lives under ``home``."""
    if not _alive(pid):
        return False
    try:
        process = psutil.Process(pid)
        cmdline, environ = process.cmdline(), process.environ()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # not ours to inspect: trust the pid file
    home_text = str(home)
    return "localstack.runtime.main" in cmdline and any(
        home_text in value for value in environ.values()
    )


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class EmbeddedEmulator:
    """Starts, watches and stops one LocalStack process; its pid file lives in ``config.home``."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.state_file = config.home / "emulator.json"
        self.log_file = config.home / "emulator.log"
        self.token_file = config.home / TOKEN_FILE

    @property
    def admin_token(self) -> str | None:
        """The running emulator's admin token (read anew each time: a restart draws a new one)."""
        try:
            return self.token_file.read_text().strip() or None
        except OSError:
            return None

    def instance_id(self) -> str | None:
        """The running emulator's instance id (another one after any restart), or None."""
        token = self.admin_token
        return _instance_id(self.endpoint_url, token=token) if token else None

    @property
    def endpoint_url(self) -> str:
        """The running emulator's URL (its recorded port wins), else the configured one."""
        record = self._recorded()
        if record:
            return f"http://{record['host']}:{record['port']}"
        return self.config.url

    def _recorded(self) -> dict | None:
        try:
            record = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        if not _is_our_emulator(int(record.get("pid", 0)), self.config.home):
            return None
        return record

    def start(self) -> None:
        record = self._recorded()
        if record and health(self.endpoint_url, token=self.admin_token):
            return  # already running (to move it to another port: `cloudlabs down` first)
        if record:  # ours, but not answering: replace it
            self.stop()
        if not _port_free(self.config.host, self.config.port):
            raise EmulatorError(
                f"port {self.config.port} on {self.config.host} is already in use by another process",
                fix="stop that process, or choose another port with --port or "
                "CLOUDLABS_EMULATOR_PORT (or point CLOUDLABS_EMULATOR_BACKEND=external at it)",
            )
        if not self.config.python.exists():
            raise SetupError(
                f"the emulator's virtualenv is missing ({self.config.python})",
                fix="run `make setup` in the cloudlabs checkout",
            )
        for sub in ("state", "tmp"):
            (self.config.home / sub).mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(32)
        _write_private(self.token_file, token)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                [str(self.config.python), "-m", "localstack.runtime.main"],
                env=environment(self.config, token),
                cwd=self.config.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        record = {
            "pid": process.pid,
            "host": self.config.host,
            "port": self.config.port,
            "log_file": str(self.log_file),
            "started_at": time.time(),
        }
        self.state_file.write_text(json.dumps(record))
        self._wait_healthy(process)

    def _wait_healthy(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.config.start_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.state_file.unlink(missing_ok=True)
                raise EmulatorError(
                    f"the emulator exited with code {process.returncode} while starting:\n"
                    + self.logs(15),
                    fix=f"read {self.log_file}; `make setup` reinstalls the emulator",
                )
            if health(self.endpoint_url, timeout=1.0, token=self.admin_token):
                return
            time.sleep(0.2)
        self.stop()
        raise EmulatorError(
            f"the emulator did not become healthy within {self.config.start_timeout:.0f} s",
            fix=f"read {self.log_file}, or raise CLOUDLABS_EMULATOR_START_TIMEOUT",
        )

    def stop(self) -> None:
        record = self._recorded()
        self.state_file.unlink(missing_ok=True)
        if not record:
            return
        self.token_file.unlink(missing_ok=True)
        pid = int(record["pid"])
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not _alive(pid):
                    return
                time.sleep(0.1)

    def status(self) -> Status:
        record = self._recorded()
        token = self.admin_token
        document = health(self.endpoint_url, token=token) if record else None
        return Status(
            running=document is not None,
            endpoint_url=self.endpoint_url,
            backend="embedded",
            pid=record["pid"] if record else None,
            log_file=str(self.log_file),
            version=(document or {}).get("version"),
            services=(document or {}).get("services", {}),
            instance=_instance_id(self.endpoint_url, token=token) if document and token else None,
        )

    def logs(self, lines: int = 100) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
