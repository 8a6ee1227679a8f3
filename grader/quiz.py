"""Knowledge checks for lecture notebooks: the right answer is stored only as a digest.

In a lecture::

    from grader.quiz import check
    answer = None  # "A", "B", "C" or "D"
    check("storage-s3-1", answer, "<digest>")

``python -m grader.quiz digest storage-s3-1 C`` prints the digest to paste.
"""

from __future__ import annotations

import hashlib

import click


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
