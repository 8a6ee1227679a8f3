"""One exception family for cloudlabs. Every error says what failed and how to fix it."""

from __future__ import annotations


class CloudlabsError(Exception):
    """Base class. ``fix`` is the next step for the user; ``lab``/``cell`` locate the problem."""

    exit_code = 1

    def __init__(
        self, message: str, *, fix: str = "", lab: str | None = None, cell: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.lab = lab
        self.cell = cell

    def __str__(self) -> str:
        where = ", ".join(
            p for p in (self.lab and f"lab {self.lab}", self.cell and f"cell {self.cell}") if p
        )
        text = f"{where}: {self.message}" if where else self.message
        return f"{text}\n  fix: {self.fix}" if self.fix else text


class ConfigError(CloudlabsError):
    """A setting has a value cloudlabs cannot use."""


class SetupError(CloudlabsError):
    """Something `make setup` installs is missing."""

    exit_code = 3


class EmulatorError(CloudlabsError):
    """The emulator cannot be started, reached or stopped (an infrastructure failure)."""

    exit_code = 3


class LabError(CloudlabsError):
    """A lab's source notebook or checks break the lab contract (docs/lab-format.md)."""


class SubmissionError(CloudlabsError):
    """A submission cannot be graded as it is; the reason goes into its report."""
