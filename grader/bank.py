"""The question bank: exam-style items per domain, their checks, and their student release.

The source, with answers in the clear, is ``solutions/bank/<domain>.yaml`` (instructors only;
docs/authoring.md shows an item). ``cloudlabs release`` writes ``course/bank/<domain>.json``
for students: each item's answer only as a salted digest (:func:`grader.quiz.digest` of the
sorted letters), and the explanations sealed with a key derived from the right answer, so
neither can be read off the file. :mod:`grader.exam` draws exams from the released files.

What :func:`problems` enforces (``cloudlabs validate``): ids, exam and task statement tags from
the exam guides (:mod:`grader.exam_guides`), four options with one answer, or five or six with
two or three ("Choose two."), an explanation for every option, and no letter right in more than
:data:`MAX_LETTER_SHARE` of the single-answer items, per domain and across the bank."""

from __future__ import annotations

import base64
import collections
import dataclasses
import hashlib
import itertools
import json
import re
from pathlib import Path

import yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from grader import ROOT
from grader.errors import LabError
from grader.exam_guides import EXAMS
from grader.quiz import digest

SOURCE_DIR = ROOT / "solutions" / "bank"
RELEASE_DIR = ROOT / "course" / "bank"
LETTERS = "ABCDEF"
MAX_LETTER_SHARE = 0.30  #: no letter may be the answer of more single-answer items than this
CHOOSE_WORDS = {2: "Choose two.", 3: "Choose three."}
#: options per kind of item: single answer 4, "choose two" 5, "choose three" 6
OPTIONS_FOR = {1: 4, 2: 5, 3: 6}
ID = re.compile(r"^(?P<domain>[a-z]+)-b\d{2,3}$")


@dataclasses.dataclass(frozen=True)
class Item:
    """One exam-style item, as a student sees it (answer and explanations not in the clear)."""

    id: str
    domain: str  #: the course domain (compute, storage, ...)
    exam: str  #: SAA-C03 or DVA-C02
    task: str  #: the exam guide's task statement, e.g. "2.1"
    stem: str
    options: dict[str, str]
    choose: int  #: how many options are right
    answer_digest: str
    sealed: str  #: the explanations, sealed with the right answer (:func:`unseal`)

    @property
    def exam_domain(self) -> str:
        return self.task.split(".")[0]


def answer_key(letters: object) -> str:
    """The canonical form of an answer: its letters, upper-case, sorted, comma-separated."""
    if isinstance(letters, str):
        letters = re.split(r"[\s,;/]+", letters.strip())
    picked = sorted({str(x).strip().upper() for x in letters if str(x).strip()})  # type: ignore[union-attr]
    return ",".join(picked)


def _key(item_id: str, key: str) -> bytes:
    return hashlib.sha256(f"cloudlabs-bank\0{item_id}\0{key}".encode()).digest()


def seal(item_id: str, key: str, explanations: dict[str, str]) -> str:
    nonce = hashlib.sha256(f"nonce\0{item_id}".encode()).digest()[:12]  # one message per key
    data = AESGCM(_key(item_id, key)).encrypt(nonce, json.dumps(explanations).encode(), None)
    return base64.b64encode(nonce + data).decode()


def unseal(item: Item, key: str) -> dict[str, str]:
    """The explanations of ``item``, given its right answer ``key`` (:func:`answer_key` form)."""
    raw = base64.b64decode(item.sealed)
    return json.loads(AESGCM(_key(item.id, key)).decrypt(raw[:12], raw[12:], None))


def is_right(item: Item, answer: object) -> bool:
    return digest(item.id, answer_key(answer)) == item.answer_digest


def right_answer(item: Item) -> str:
    """The right answer, found by trying each possible one against the digest (after a student
    answered: the released file holds no answer to read)."""
    for combo in itertools.combinations(sorted(item.options), item.choose):
        if is_right(item, combo):
            return ",".join(combo)
    raise LabError(f"item {item.id}: no option matches its digest", fix="run `cloudlabs release`")


# --- the source ----------------------------------------------------------------------------


def read_source(path: Path) -> list[dict]:
    """The items of one source file, as written (``problems`` says what is wrong with them)."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise LabError(f"{path.name} is not YAML: {error}", fix="fix the file") from error
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise LabError(f"{path.name} must be a mapping with 'domain' and a list of 'items'",
                       fix="see docs/authoring.md, 'The question bank'")  # fmt: skip
    return [dict(item, domain=data.get("domain")) for item in data["items"]]


def item_problems(raw: dict) -> list[str]:
    """What is wrong with one source item, one sentence each."""
    out: list[str] = []
    item_id = str(raw.get("id", "?"))
    match = ID.match(item_id)
    if not match or match["domain"] != raw.get("domain"):
        out.append(f"{item_id}: the id must be '<domain>-bNN' of the file's domain")
    exam = EXAMS.get(str(raw.get("exam")))
    if exam is None:
        out.append(f"{item_id}: exam must be one of {sorted(EXAMS)}")
    elif str(raw.get("task")) not in exam.tasks:
        out.append(f"{item_id}: task {raw.get('task')!r} is not a task statement of {exam.name}")
    if not isinstance(raw.get("options"), dict) or not isinstance(raw.get("explain"), dict):
        return [*out, f"{item_id}: options and explain must map letters to text"]
    options, answer = raw["options"], raw.get("answer") or []
    choose = len(answer) if isinstance(answer, list) else 0
    if choose not in OPTIONS_FOR:
        out.append(f"{item_id}: answer must list 1, 2 or 3 letters")
        return out
    letters = list(LETTERS[: OPTIONS_FOR[choose]])
    if sorted(options) != letters:
        out.append(f"{item_id}: with {choose} right, the options must be {', '.join(letters)}")
    if not set(answer) <= set(options) or len(set(answer)) != choose:
        out.append(f"{item_id}: the answer must name {choose} different options")
    stem = str(raw.get("stem") or "").strip()
    if len(stem.split()) < 12:
        out.append(f"{item_id}: the stem must set a scenario (12 words or more)")
    if choose > 1 and CHOOSE_WORDS[choose] not in stem:
        out.append(
            f"{item_id}: a stem with {choose} right options must say '{CHOOSE_WORDS[choose]}'"
        )
    explain = raw.get("explain") or {}
    if sorted(explain) != sorted(options) or not all(str(v).strip() for v in explain.values()):
        out.append(f"{item_id}: explain must say why each option is right or wrong")
    if any(not str(v).strip() for v in options.values()):
        out.append(f"{item_id}: an option is empty")
    return out


def share_problems(letters: list[str], where: str) -> list[str]:
    """No letter is the answer of more than MAX_LETTER_SHARE of ``letters`` (single answers)."""
    counts = collections.Counter(letters)
    return [
        f"{where}: {letter} is the answer of {n} of {len(letters)} single-answer items "
        f"(at most {MAX_LETTER_SHARE:.0%}); move the right option elsewhere"
        for letter, n in sorted(counts.items())
        if n > MAX_LETTER_SHARE * len(letters)
    ]


def letter_problems(items: list[dict], where: str) -> list[str]:
    singles = [item["answer"][0] for item in items
               if isinstance(item.get("answer"), list) and len(item["answer"]) == 1]  # fmt: skip
    return share_problems(singles, where)


def problems(source_dir: Path = SOURCE_DIR) -> dict[str, list[str]]:
    """Problems per source file (``bank/<domain>.yaml``), and for the whole bank."""
    found: dict[str, list[str]] = {}
    everything: list[dict] = []
    ids: collections.Counter[str] = collections.Counter()
    for path in sorted(source_dir.glob("*.yaml")):
        try:
            items = read_source(path)
        except LabError as error:
            found[f"bank/{path.name}"] = [error.message]
            continue
        out = [p for raw in items for p in item_problems(raw)]
        if any(raw["domain"] != path.stem for raw in items):
            out.append(f"{path.name}: 'domain' must be {path.stem!r}")
        out += letter_problems(items, path.name)
        found[f"bank/{path.name}"] = out
        everything += items
        ids.update(str(raw.get("id")) for raw in items)
    whole = letter_problems(everything, "the bank")
    whole += [f"the bank: id {i} is used {n} times" for i, n in sorted(ids.items()) if n > 1]
    found["bank"] = whole
    return found


# --- the release ---------------------------------------------------------------------------


def released(raw: dict) -> dict:
    key = answer_key(raw["answer"])
    return {
        "id": raw["id"], "exam": raw["exam"], "task": str(raw["task"]),
        "stem": raw["stem"].strip(), "options": {k: str(v).strip() for k, v in raw["options"].items()},
        "choose": len(raw["answer"]), "answer_digest": digest(raw["id"], key),
        "sealed": seal(raw["id"], key, {k: str(v).strip() for k, v in raw["explain"].items()}),
    }  # fmt: skip


def release(*, source_dir: Path = SOURCE_DIR, out_dir: Path = RELEASE_DIR) -> list[Path]:
    """Write the student release of every source file; returns the files written."""
    bad = {where: out for where, out in problems(source_dir).items() if out}
    if bad:
        first = next(iter(bad.values()))[0]
        raise LabError(f"the question bank has problems, first: {first}",
                       fix="run `cloudlabs validate` and fix solutions/bank/")  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source_dir.glob("*.yaml")):
        items = [released(raw) for raw in read_source(path)]
        target = out_dir / f"{path.stem}.json"
        text = json.dumps({"domain": path.stem, "items": items}, indent=1, ensure_ascii=False)
        target.write_text(text + "\n")
        written.append(target)
    return written


def load(domains: list[str] | None = None, *, release_dir: Path = RELEASE_DIR) -> list[Item]:
    """The released items of ``domains`` (all when None)."""
    items = []
    for path in sorted(release_dir.glob("*.json")):
        if domains and path.stem not in domains:
            continue
        data = json.loads(path.read_text())
        items += [Item(domain=data["domain"], **raw) for raw in data["items"]]
    if domains and not items:
        raise LabError(f"no released questions for {', '.join(domains)}",
                       fix=f"pick from {', '.join(sorted(p.stem for p in release_dir.glob('*.json')))}")  # fmt: skip
    return items


if __name__ == "__main__":
    import sys

    for where, out in problems(Path(sys.argv[1]) if sys.argv[1:] else SOURCE_DIR).items():
        print(f"{where}: {'ok' if not out else ''}")
        for line in out:
            print(f"  - {line}")
