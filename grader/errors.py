"""One exception family for cloudlabs. Every error says what failed and how to fix it."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """What every ``cloudlabs`` command's exit status means (docs/grading.md is generated from
    :data:`EXIT_CODES`)."""

    OK = 0
    PROBLEM = 1
    USAGE = 2
    INFRASTRUCTURE = 3


#: code -> (meaning, what to do)
EXIT_CODES = {
    ExitCode.OK: (
        "done: for `grade`, the class was graded, whatever the scores (rejected submissions "
        "included)",
        "read the reports",
    ),
    ExitCode.PROBLEM: (
        "a usage or input problem, found before any grading starts: unknown lab, no submissions "
        "at the path given, a `.zip` that is not a zip, a setting with an invalid value "
        "(`CLOUDLABS_GRADE_WORKERS=many`); for `check`-style commands (`release --check`, "
        "`validate`, `status`, `demo`), the check failed",
        "the message says what to fix",
    ),
    ExitCode.USAGE: (
        "bad command-line syntax (reported by click)",
        "see `cloudlabs COMMAND --help`",
    ),
    ExitCode.INFRASTRUCTURE: (
        "an infrastructure failure left work undone: the emulator could not start or keep "
        "running, a kernel could not start, setup is incomplete",
        "fix it (`cloudlabs logs`, `cloudlabs status`, `make setup`) and rerun the same command: "
        "only the unfinished submissions run",
    ),
}


class CloudlabsError(Exception):
    """Base class. ``fix`` is the next step for the user; ``lab``/``cell`` locate the problem."""

    exit_code = ExitCode.PROBLEM

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

    exit_code = ExitCode.INFRASTRUCTURE


class EmulatorError(CloudlabsError):
    """The emulator cannot be started, reached or stopped (an infrastructure failure)."""

    exit_code = ExitCode.INFRASTRUCTURE


class LabError(CloudlabsError):
    """A lab's source notebook or checks break the lab contract (docs/lab-format.md)."""


class SubmissionError(CloudlabsError):
    """A submission cannot be graded as it is; the reason goes into its report."""


class HubError(CloudlabsError):
    """The class hub, or a student's server on it, did not start or answer (infrastructure)."""

    exit_code = ExitCode.INFRASTRUCTURE
