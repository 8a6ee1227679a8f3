"""Shared fixtures: one real embedded emulator per test session, a fresh account per test."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader import emulator as emu
from grader.config import EmulatorConfig, load
from grader.statecheck import session_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def emulator_config(home: Path, **overrides) -> EmulatorConfig:
    overrides.setdefault("port", free_port())
    return load(EmulatorConfig, "emulator", home=home, **overrides)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emu.Emulator]:
    """The session's emulator (embedded unless CLOUDLABS_EMULATOR_BACKEND says otherwise)."""
    config = emulator_config(tmp_path_factory.mktemp("emulator-home"))
    with emu.running(config) as instance:  # the context manager of the Python API
        yield instance


@pytest.fixture
def endpoint_url(emulator: emu.Emulator) -> str:
    return emulator.endpoint_url


def new_account_id() -> str:
    """A random 12-digit account id (the access key id selects the emulator account)."""
    return str(secrets.randbelow(9 * 10**11) + 10**11)


@pytest.fixture
def account_id() -> str:
    return new_account_id()


@pytest.fixture
def aws(endpoint_url: str, account_id: str):
    """A boto3 session for a fresh account whose clients point at the emulator."""
    return session_for(endpoint_url=endpoint_url, account_id=account_id)


# -- processes a test leaves behind ------------------------------------------------------------

_PR_SET_CHILD_SUBREAPER = 36


def _child_subreaper(on: bool) -> None:
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)


class ProcessWatch:
    """The processes started while a watch runs. This process is a child subreaper meanwhile,
    so a descendant's orphans come back to it instead of init and stay among its descendants;
    children of init are counted too when their command line, environment or working directory
    names ``marker`` (the test's tmp_path, where the kernels' working directories are)."""

    def __init__(self, marker: str) -> None:
        import time

        import psutil

        self.marker = marker
        self.me = psutil.Process()
        self.since = time.time()
        self.before = {self._key(p) for p in self.me.children(recursive=True)}

    @staticmethod
    def _key(process) -> tuple[int, float]:
        import psutil

        try:
            return process.pid, process.create_time()
        except psutil.Error:
            return process.pid, 0.0

    def _names_marker(self, process) -> bool:
        import psutil

        try:
            if process.create_time() < self.since - 1:
                return False
            text = " ".join([*process.cmdline(), *process.environ().values(), process.cwd()])
        except psutil.Error:
            return False
        return self.marker in text

    def new(self) -> list:
        """The processes started since the watch began that exist now (zombies included)."""
        import contextlib

        import psutil

        found = [p for p in self.me.children(recursive=True) if self._key(p) not in self.before]
        with contextlib.suppress(psutil.Error):
            found += [p for p in psutil.Process(1).children() if self._names_marker(p)]
        return found

    def left(self, timeout: float = 15.0) -> list:
        """The new processes still there after waiting up to ``timeout`` s for them to end
        (children of this process are reaped while waiting)."""
        import psutil

        _, alive = psutil.wait_procs(self.new(), timeout=timeout)
        return alive

    @staticmethod
    def describe(processes) -> str:
        import psutil

        lines = []
        for p in processes:
            try:
                lines.append(f"{p.pid} (parent {p.ppid()}, {p.status()}): {' '.join(p.cmdline())}")
            except psutil.Error as exc:
                lines.append(f"{p.pid}: {exc!r}")
        return "\n".join(lines)

    def kill(self) -> None:
        import contextlib

        import psutil

        processes = self.new()
        for process in processes:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(processes, timeout=10)


@pytest.fixture
def process_watch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProcessWatch]:
    """A :class:`ProcessWatch` for the test; temporary files (so the kernels' working
    directories) go under tmp_path; whatever the test left is killed afterwards."""
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    _child_subreaper(True)
    watch = ProcessWatch(str(tmp_path))
    try:
        yield watch
    finally:
        watch.kill()
        _child_subreaper(False)
