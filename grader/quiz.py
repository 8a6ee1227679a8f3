"""Knowledge checks for lecture notebooks: the right answer is stored only as a digest.

In a lecture::

    from grader.quiz import check
    answer = None  # "A", "B", "C" or "D"
    check("storage-s3-1", answer, "<digest>")

``python -m grader.quiz digest storage-s3-1 C`` prints the digest to paste.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import click

#: a lecture's check cell: ``check("<id>", answer, "<digest>")``
CHECK = re.compile(r'check\(\s*"([^"]+)"\s*,\s*answer\s*,\s*"([0-9a-f]{64})"\s*\)')


def normalize(answer: object) -> str:
    """Answers compare trimmed and case-insensitively; numbers compare by value (``5`` == ``5.0``)."""
    if isinstance(answer, bool):
        return str(answer).lower()
    text = " ".join(str(answer).split()).lower()
    try:
        return repr(float(text.replace(",", "")))
    except ValueError:
        return text


def digest(question_id: str, answer: object) -> str:
    """The digest of ``answer`` to ``question_id`` (salted by the id, so equal answers differ)."""
    return hashlib.sha256(f"{question_id}\0{normalize(answer)}".encode()).hexdigest()


def check(question_id: str, answer: object, expected_digest: str) -> bool:
    """Print whether ``answer`` is right; never raise. Returns True when right."""
    if answer is None or answer == "":
        print(f"{question_id}: not answered yet — set the answer above and run this cell again.")
        return False
    right = digest(question_id, answer) == expected_digest
    verdict = "correct" if right else "not quite — reread the section above and try again"
    print(f"{question_id}: {verdict}.")
    return right


def letter_answers(paths: list[Path]) -> dict[str, str]:
    """The letter (A to F) that answers each check of the lecture notebooks ``paths``, found by
    trying each letter against the digest; checks with other answers (numbers) are left out."""
    found = {}
    for path in paths:
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            for question_id, expected in CHECK.findall("".join(cell["source"])):
                letter = next((x for x in "ABCDEF" if digest(question_id, x) == expected), None)
                if letter:
                    found[question_id] = letter
    return found


@click.group()
def main() -> None:
    """Knowledge-check digests for lecture notebooks."""


# an answer may start with a dash (``digest q -5``): an unknown option is taken as the answer
@main.command("digest", context_settings={"ignore_unknown_options": True})
@click.argument("question_id")
@click.argument("answer")
def digest_command(question_id: str, answer: str) -> None:
    """Print the digest of ANSWER to QUESTION_ID (paste it into the lecture's check)."""
    click.echo(digest(question_id, answer))


if __name__ == "__main__":
    main()
