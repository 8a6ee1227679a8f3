"""The emulator commands: ``cloudlabs up | down | status | logs``."""

from __future__ import annotations

from typing import Any

from grader import emulator as emu
from grader.config import EmulatorConfig, load


def _emulator(**overrides: Any) -> emu.Emulator:
    return emu.create(load(EmulatorConfig, "emulator", **overrides))


def up(*, port: int | None = None, backend: str | None = None) -> emu.Status:
    """Start the emulator in the background and wait until it is healthy."""
    emulator = _emulator(port=port, backend=backend)
    emulator.start()
    return emulator.status()


def down(*, port: int | None = None, backend: str | None = None) -> None:
    """Stop the emulator this checkout started (never another process)."""
    _emulator(port=port, backend=backend).stop()


def status(*, port: int | None = None, backend: str | None = None) -> emu.Status:
    """Whether the emulator runs, where, and which services it has."""
    return _emulator(port=port, backend=backend).status()


def logs(*, lines: int = 100, port: int | None = None, backend: str | None = None) -> str:
    """The last lines of the emulator's log."""
    return _emulator(port=port, backend=backend).logs(lines)
