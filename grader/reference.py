"""Reference tables in the docs, generated from the code: settings (grader.config), exit codes
(grader.errors) and commands (grader.cli). A document holds a table between the lines
``<!-- generated: NAME -->`` and ``<!-- end generated -->``.

    python -m grader.reference --write    # rewrite the tables in docs/ and README.md
    python -m grader.reference            # exit 1 when a table differs from the code

tests/test_docs.py fails when the committed docs drift from the code.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import click

from grader import ROOT
from grader.config import EmulatorConfig, GradeConfig, describe
from grader.errors import EXIT_CODES

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"(<!-- generated: ([a-z-]+) -->\n)(.*?)(<!-- end generated -->)", re.S)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def config_table(cls: type) -> str:
    rows = [(f"`{env}`", f"`{default}`" if default else "(empty)", doc)
            for env, default, doc in describe(cls)]  # fmt: skip
    return _table(("Environment variable", "Default", "Meaning"), rows)


def exit_codes() -> str:
    rows = [(str(int(code)), meaning, todo) for code, (meaning, todo) in EXIT_CODES.items()]
    return _table(("Code", "Meaning", "What to do"), rows)


def commands() -> str:
    from grader.cli import cli

    rows = []
    for name, command in sorted(cli.commands.items()):
        summary = (command.help or "").strip().splitlines()[0] if command.help else ""
        rows.append((f"`cloudlabs {name}`", summary))
    return _table(("Command", "What it does"), rows)


TABLES: dict[str, Callable[[], str]] = {
    "config-emulator": lambda: config_table(EmulatorConfig),
    "config-grade": lambda: config_table(GradeConfig),
    "exit-codes": exit_codes,
    "commands": commands,
}


def render(text: str) -> str:
    """``text`` with every generated table replaced by what the code says now."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in TABLES:
            raise KeyError(f"no generated table called {name!r} (known: {', '.join(TABLES)})")
        return match.group(1) + TABLES[name]() + match.group(4)

    return _BLOCK.sub(replace, text)


def stale(documents: list[Path] = DOCUMENTS) -> list[Path]:
    """The documents whose generated tables differ from the code."""
    return [p for p in documents if render(p.read_text()) != p.read_text()]


@click.command()
@click.option("--write", is_flag=True, help="Rewrite the tables instead of checking them.")
def main(write: bool) -> None:
    """Check (or, with --write, rewrite) the generated tables in the docs."""
    for path in stale():
        if write:
            path.write_text(render(path.read_text()))
            click.echo(f"rewrote {path.relative_to(ROOT)}")
        else:
            click.echo(f"{path.relative_to(ROOT)} is stale: run python -m grader.reference --write")
    if not write and stale():
        sys.exit(1)


if __name__ == "__main__":
    main()
