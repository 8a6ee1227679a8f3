"""Reference tables in the docs, generated from the code: settings (grader.config), exit codes
(grader.errors) and commands (grader.cli). A document holds a table between the lines
``<!-- generated: NAME -->`` and ``<!-- end generated -->``; NAME is a key of :data:`TABLES`.

    python -m grader.reference --write    # rewrite the tables in README.md and docs/*.md
    python -m grader.reference --check    # exit 1 when a table differs from the code (default)

tests/test_docs.py fails when the committed docs drift from the code.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import click

from grader import ROOT
from grader.config import (
    EmulatorConfig,
    GradeConfig,
    LateConfig,
    LtiConfig,
    SigningConfig,
    describe,
)
from grader.errors import EXIT_CODES, ExitCode
from grader.exam import ExamConfig
from grader.hub import HubConfig

#: The documents that may hold generated tables.
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: Each settings section: the name ``grader.config.load`` is called with, and its dataclass.
SECTIONS: dict[str, type] = {
    "emulator": EmulatorConfig, "grade": GradeConfig, "late": LateConfig,
    "signing": SigningConfig, "lti": LtiConfig, "hub": HubConfig, "exam": ExamConfig,
}  # fmt: skip

_BLOCK = re.compile(r"(<!-- generated: ([a-z-]+) -->\n)(.*?)(<!-- end generated -->)", re.S)


def _table(header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _cells(line: str) -> list[str]:
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]


def parse_table(text: str) -> list[dict[str, str]]:
    """The rows of the Markdown table in ``text`` (its lines that start with ``|``), as
    {column: cell}, cells stripped."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    if len(lines) < 2:
        return []
    header = _cells(lines[0])
    return [dict(zip(header, _cells(line), strict=True)) for line in lines[2:]]


def config_rows(section: str) -> list[tuple[str, str, str, str]]:
    """(field, environment variable, default, description) of each setting of ``section``; the
    variable and default are what ``grader.config.describe`` says (a test proves that
    ``grader.config.load`` reads that variable)."""
    cls = SECTIONS[section]
    rows = zip(dataclasses.fields(cls), describe(cls), strict=True)
    return [(field.name, env, default, doc) for field, (env, default, doc) in rows]


def config_table(section: str) -> str:
    fields = {f.name: f for f in dataclasses.fields(SECTIONS[section])}
    rows = []
    for name, env, default, doc in config_rows(section):
        shown = fields[name].metadata.get("shown")  # prose ("number of CPU cores"), not a value
        value = default if shown else f"`{default}`" if default else "(empty)"
        rows.append((f"`{name}`", f"`{env}`", value, doc))
    return _table(("Field", "Environment variable", "Default", "Meaning"), rows)


def exit_code_table() -> str:
    rows = [(str(int(code)), f"`{code.name}`", *EXIT_CODES[code]) for code in ExitCode]
    return _table(("Code", "`ExitCode`", "Meaning", "What to do"), rows)


def command_rows() -> list[tuple[str, str]]:
    """(name, first line of its help) of every ``cloudlabs`` command."""
    from grader.cli import cli

    return [(name, (command.help or "").strip().split("\n", 1)[0])
            for name, command in sorted(cli.commands.items())]  # fmt: skip


def command_table() -> str:
    return _table(("Command", "What it does"), [(f"`cloudlabs {n}`", h) for n, h in command_rows()])


#: Every generated table by the name its markers use.
TABLES: dict[str, Callable[[], str]] = {
    **{f"config-{section}": (lambda s=section: config_table(s)) for section in SECTIONS},
    "exit-codes": exit_code_table,
    "commands": command_table,
}


def blocks(text: str) -> dict[str, list[str]]:
    """{table name: [its contents, one per occurrence]} of the generated tables in ``text``."""
    found: dict[str, list[str]] = {}
    for match in _BLOCK.finditer(text):
        found.setdefault(match.group(2), []).append(match.group(3))
    return found


def render(text: str) -> str:
    """``text`` with every generated table replaced by what the code says now."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in TABLES:
            raise KeyError(f"no generated table called {name!r} (known: {', '.join(TABLES)})")
        return match.group(1) + TABLES[name]() + match.group(4)

    return _BLOCK.sub(replace, text)


def stale(documents: Iterable[Path] | None = None) -> list[Path]:
    """The documents (default :data:`DOCUMENTS`) whose generated tables differ from the code."""
    return [p for p in (DOCUMENTS if documents is None else documents)
            if render(text := p.read_text()) != text]  # fmt: skip


def write(documents: Iterable[Path] | None = None) -> list[Path]:
    """Rewrite the stale documents (default :data:`DOCUMENTS`); returns those rewritten."""
    rewritten = stale(documents)
    for path in rewritten:
        path.write_text(render(path.read_text()))
    return rewritten


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


@click.command()
@click.option("--write", "rewrite", is_flag=True, help="Rewrite the stale tables in place.")
@click.option("--check", is_flag=True, help="Only report stale tables, exit 1 if any (default).")
def main(rewrite: bool, check: bool) -> None:
    """Check (or, with --write, rewrite) the tables in the docs generated from the code."""
    if rewrite and check:
        raise click.UsageError("--write and --check exclude each other")
    if rewrite:
        for path in write():
            click.echo(f"rewrote {_shown(path)}")
        return
    outdated = stale()
    for path in outdated:
        click.echo(f"{_shown(path)} is stale: run python -m grader.reference --write", err=True)
    sys.exit(ExitCode.PROBLEM if outdated else ExitCode.OK)


if __name__ == "__main__":
    main()
