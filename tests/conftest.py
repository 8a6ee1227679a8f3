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
