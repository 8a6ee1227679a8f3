"""The question bank: what validate refuses in a source file, what the student release hides,
and that the committed bank is whole (every domain, enough items for each exam's weights)."""

from __future__ import annotations

import copy
import json

import pytest
from cryptography.exceptions import InvalidTag

from grader import bank, exam
from grader.errors import LabError
from grader.exam_guides import EXAMS
from tests.factories import bank_item, write_bank


def balanced(domain: str, singles: int = 8, *, exam_name: str = "SAA-C03") -> list[dict]:
    items = [bank_item(domain, n + 1, exam=exam_name, answer="ABCD"[n % 4]) for n in range(singles)]
    items.append(bank_item(domain, singles + 1, exam=exam_name, answer="B,E"))
    items.append(bank_item(domain, singles + 2, exam=exam_name, answer="A,C,F"))
    return items


def test_a_well_formed_file_has_no_problems(tmp_path):
    write_bank(tmp_path, "storage", balanced("storage"))
    assert bank.problems(tmp_path) == {"bank/storage.yaml": [], "bank": []}


def _break(change):
    def broken(items):
        items = copy.deepcopy(items)
        change(items[0])
        return items

    return broken


BROKEN = {
    "the id must be": _break(lambda i: i.update(id="compute-b01")),
    "exam must be one of": _break(lambda i: i.update(exam="SAA-C02")),
    "is not a task statement of SAA-C03": _break(lambda i: i.update(task="5.1")),
    "the options must be A, B, C, D": _break(lambda i: i["options"].pop("D")),
    "must name 1 different options": _break(lambda i: i.update(answer=["E"])),
    "must list 1, 2 or 3 letters": _break(lambda i: i.update(answer=[])),
    "must set a scenario": _break(lambda i: i.update(stem="Which one?")),
    "why each option is right or wrong": _break(lambda i: i["explain"].update(B=" ")),
    "options and explain must map": _break(lambda i: i.update(options=["x", "y"])),
}


@pytest.mark.parametrize("expected", BROKEN)
def test_validate_names_what_is_wrong_with_an_item(tmp_path, expected):
    write_bank(tmp_path, "storage", BROKEN[expected](balanced("storage")))
    found = bank.problems(tmp_path)["bank/storage.yaml"]
    assert any(expected in problem for problem in found), found


def test_a_multiple_response_stem_must_say_how_many(tmp_path):
    items = balanced("storage")
    items[-2]["stem"] = items[-2]["stem"].replace(" Choose two.", "")
    write_bank(tmp_path, "storage", items)
    (problem,) = bank.problems(tmp_path)["bank/storage.yaml"]
    assert "must say 'Choose two.'" in problem


def test_no_letter_is_right_in_more_than_30_percent(tmp_path):
    items = balanced("storage")
    items[0]["answer"] = ["B"]  # B now right in 3 of 8 single-answer items: 37.5 %
    items[0]["explain"] = {x: "why" for x in "ABCD"}
    write_bank(tmp_path, "storage", items)
    found = bank.problems(tmp_path)
    assert any("B is the answer of 3 of 8" in p for p in found["bank/storage.yaml"]), found
    assert any("B is the answer of 3 of 8" in p for p in found["bank"]), found


def test_ids_are_unique_across_the_bank_and_broken_yaml_is_a_problem(tmp_path):
    write_bank(tmp_path, "storage", balanced("storage"))
    (tmp_path / "compute.yaml").write_text("domain: compute\nitems: [\n")
    found = bank.problems(tmp_path)
    assert any("is not YAML" in p for p in found["bank/compute.yaml"])
    write_bank(tmp_path, "compute", balanced("storage"))  # storage ids in compute's file
    found = bank.problems(tmp_path)
    assert any("of the file's domain" in p for p in found["bank/compute.yaml"])
    assert any("id storage-b01 is used 2 times" in p for p in found["bank"])


def test_the_release_holds_no_answer_or_explanation_in_the_clear(tmp_path):
    items = balanced("storage")
    items[0]["explain"]["A"] = "Glacier Deep Archive restores within twelve hours"
    write_bank(tmp_path / "src", "storage", items)
    (path,) = bank.release(source_dir=tmp_path / "src", out_dir=tmp_path / "out")
    text = path.read_text()
    assert "twelve hours" not in text and '"answer"' not in text and "explain" not in text
    released = json.loads(text)["items"]
    assert sorted(released[0]) == sorted(
        ["id", "exam", "task", "stem", "options", "choose", "answer_digest", "sealed"]
    )
    loaded = bank.load(release_dir=tmp_path / "out")
    first, multi = loaded[0], loaded[-2]
    assert bank.is_right(first, "a") and not bank.is_right(first, "B")
    assert bank.right_answer(first) == "A" and bank.right_answer(multi) == "B,E"
    assert bank.is_right(multi, "e, b") and not bank.is_right(multi, "B")
    assert bank.unseal(first, "A")["A"] == "Glacier Deep Archive restores within twelve hours"
    with pytest.raises(InvalidTag):  # the wrong answer opens nothing
        bank.unseal(first, "B")
    # the same source releases the same bytes (release --check compares them)
    (again,) = bank.release(source_dir=tmp_path / "src", out_dir=tmp_path / "again")
    assert again.read_bytes() == path.read_bytes()


def test_a_bank_with_problems_is_not_released(tmp_path):
    write_bank(tmp_path / "src", "storage", BROKEN["exam must be one of"](balanced("storage")))
    with pytest.raises(LabError, match="the question bank has problems"):
        bank.release(source_dir=tmp_path / "src", out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_answers_normalize():
    assert bank.answer_key("c, a") == bank.answer_key(["A", "C"]) == "A,C"
    assert bank.answer_key(" b ") == "B" and bank.answer_key("") == ""


# --- the committed bank --------------------------------------------------------------------


def test_the_committed_bank_covers_every_domain_and_has_no_problems():
    from grader import labs

    assert {p.stem for p in bank.SOURCE_DIR.glob("*.yaml")} == set(labs.available())
    assert all(found == [] for found in bank.problems().values()), bank.problems()
    released = bank.load()
    assert len(released) == sum(len(bank.read_source(p)) for p in bank.SOURCE_DIR.glob("*.yaml"))
    assert sum(item.choose > 1 for item in released) >= 0.2 * len(released)


@pytest.mark.parametrize("name", sorted(EXAMS))
def test_the_committed_bank_fills_a_full_exam_in_its_weights(name):
    guide = EXAMS[name]
    need = exam.shares({d.number: d.weight for d in guide.domains}, guide.items)
    have = {d.number: 0 for d in guide.domains}
    for item in bank.load():
        if item.exam == name:
            have[item.exam_domain] += 1
    assert all(have[d] >= need[d] for d in need), (have, need)
