"""The first line of every lecture's setup cell: is there an emulator at the endpoint? (Labs
hold their own copy of these few lines: a graded kernel runs sandboxed, without this package.)

``cloudlabs lab`` gives its kernels the emulator it runs in ``AWS_ENDPOINT_URL``, which the
parameters cell reads; graders inject their own ``endpoint_url``. When nothing answers there, the
student reads one line saying where we looked and what to run, not 60 lines of botocore."""

from __future__ import annotations

from grader.emulator import health


class NoEmulator(Exception):
    """Raised by :func:`require_emulator`; IPython shows only its message."""

    def _render_traceback_(self) -> list[str]:  # IPython's hook for a one-line error
        return [f"{type(self).__name__}: {self}"]


def require_emulator(endpoint_url: str) -> None:
    """Return when an emulator answers at ``endpoint_url``; otherwise raise :class:`NoEmulator`."""
    if health(endpoint_url, timeout=3.0) is None:
        raise NoEmulator(
            f"no AWS emulator answers at {endpoint_url}: start it with `cloudlabs up` in a "
            "terminal (or open the course with `cloudlabs lab`), then run this cell again"
        )
