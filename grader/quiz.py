"""Knowledge checks for lecture notebooks: the right answer is stored only as a digest.

In a lecture::

    from grader.quiz import check
    answer = None  # "A", "B", "C" or "D"
    check("storage-s3-1", answer, "<digest>")

``python -m grader.quiz digest storage-s3-1 C`` prints the digest to paste.
"""

from __future__ import annotations

import hashlib
import sys


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


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "digest":
        print("usage: python -m grader.quiz digest <question-id> <answer>", file=sys.stderr)
        return 2
    print(digest(argv[1], argv[2]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
