"""The ``cloudlabs`` command: a thin layer over the keyword-only Python API in ``grader``.

Exit codes: 0 done; 1 a usage or input problem (the message says what to fix); 2 bad command-line
syntax (click); 3 an infrastructure failure (emulator, kernel, setup) — retry after fixing it.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from grader.emulator import commands as emulator_commands
from grader.errors import CloudlabsError


def _reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except CloudlabsError as exc:
            click.echo(f"cloudlabs: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


port_option = click.option("--port", type=int, default=None, help="Emulator port (default 4566).")


@click.group()
@click.version_option(package_name="cloudlabs")
def cli() -> None:
    """cloudlabs: AWS labs in Jupyter, graded against a local emulator."""


@cli.command()
@port_option
@_reports_errors
def up(port: int | None) -> None:
    """Start the emulator in the background and wait until it is healthy."""
    status = emulator_commands.up(port=port)
    click.echo(
        f"emulator running at {status.endpoint_url} (pid {status.pid}, log {status.log_file})"
    )


@cli.command()
@port_option
@_reports_errors
def down(port: int | None) -> None:
    """Stop the emulator that `cloudlabs up` started."""
    emulator_commands.down(port=port)
    click.echo("emulator stopped")


@cli.command()
@port_option
@_reports_errors
def status(port: int | None) -> None:
    """Show whether the emulator runs and which services it serves."""
    state = emulator_commands.status(port=port)
    if not state.running:
        click.echo(f"emulator not running at {state.endpoint_url} — start it with `cloudlabs up`")
        sys.exit(1)
    click.echo(
        f"emulator {state.version} ({state.backend}) at {state.endpoint_url}, pid {state.pid}"
    )
    for name, service_state in sorted(state.services.items()):
        click.echo(f"  {name:26} {service_state}")


@cli.command()
@port_option
@click.option("-n", "--lines", type=int, default=100, show_default=True, help="Lines to show.")
@_reports_errors
def logs(port: int | None, lines: int) -> None:
    """Print the end of the emulator's log."""
    click.echo(emulator_commands.logs(port=port, lines=lines))
