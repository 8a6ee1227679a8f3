"""Sharded grading: a class graded as 3 shards in 3 processes, merged, equals one run (late
penalties included); merge refuses shards that do not make one class."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from grader import merge, shard
from grader.errors import ConfigError
from grader.results import GRADED, SubmissionResult
from tests.grader.conftest import FILES, write_collected
from tests.grader.test_grade import answered

#: what differs between two gradings of the same notebook: the account and prefix it ran in
#: (random, and named in messages), how long it took, and where the file was
VARYING = ("account_id", "prefix", "timings", "source")


def _identities(root: Path) -> dict[str, tuple[str, str]]:
    """student -> (prefix, account id) of that grading."""
    return {p.stem: (d["prefix"], d["account_id"])
            for p in (root / "results").glob("*.json") for d in [json.loads(p.read_text())]}  # fmt: skip


def _anonymous(text: str, identity: tuple[str, str]) -> str:
    prefix, account = identity
    if prefix:
        text = text.replace(prefix, "<prefix>")
    return text.replace(account, "<account>") if account else text


def _class(release) -> dict:
    """14 students: solved, blank, half done, wrong answers, and two that cannot be graded."""
    kinds = {
        "solved": answered(release),
        "blank": release,
        "half": answered(release, ex2_solution="queue_name = 'nothing'\n"),
        "wrong": answered(release, kc1_solution='answer_1 = "A"\n'),
    }
    students = {f"{kind}-{n}": nb for n in range(3) for kind, nb in kinds.items()}
    students |= {"broken-json": "{not json", "empty": ""}
    return students


#: the late policy of the class, as the environment gives it to every shard's process
LATE = {"CLOUDLABS_LATE_DUE": "2026-12-01T12:00Z", "CLOUDLABS_LATE_PENALTY_PER_DAY": "25"}


def _handed_in(students) -> dict[str, str]:
    """On time, a day late, three days late, in turn (nbgrader's timestamp format)."""
    days = ["2026-11-30 10:00:00 UTC", "2026-12-02 11:00:00 UTC", "2026-12-04 09:00:00 UTC"]
    return {s: days[i % 3] for i, s in enumerate(sorted(students))}


def _grade_shard(k: int, n: int, submissions: Path, out: Path, emulator) -> subprocess.Popen:
    code = (
        "import sys; from pathlib import Path; from grader import grade; "
        "from grader.config import GradeConfig, load; from grader.shard import Shard; "
        f"from tests.grader.conftest import FILES; "
        f"run = grade.main(lab='minilab', submissions=Path({str(submissions)!r}), "
        f"out=Path({str(out)!r}), shard=Shard({k}, {n}), source_dir=FILES, "
        "release_dir=FILES / 'release', grade_config=load(GradeConfig, 'grade', workers=1, "
        "cell_timeout=20.0, notebook_timeout=120.0)); "
        "sys.exit(grade.exit_code(run))"
    )
    env = {**os.environ, "CLOUDLABS_EMULATOR_HOME": str(emulator.config.home),
           "CLOUDLABS_EMULATOR_PORT": str(emulator.config.port), **LATE}  # fmt: skip
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=Path(__file__).parents[2])


@pytest.fixture(scope="module")
def runs(minilab_release, tmp_path_factory, emulator):
    """The same class graded once whole (in this process) and as 3 shards (3 processes)."""
    from grader import grade
    from grader.config import GradeConfig, LateConfig, load

    root = tmp_path_factory.mktemp("sharded")
    students = _class(minilab_release)
    submissions = write_collected(root / "submitted", students, _handed_in(students))
    shards = [root / f"shard-{k}" for k in (1, 2, 3)]
    processes = [_grade_shard(k, 3, submissions, out, emulator) for k, out in enumerate(shards, 1)]
    single = grade.main(
        lab="minilab", submissions=submissions, out=root / "single", source_dir=FILES,
        release_dir=FILES / "release", emulator_config=emulator.config,
        grade_config=load(GradeConfig, "grade", workers=1, cell_timeout=20.0,
                          notebook_timeout=120.0),
        late_config=LateConfig(due="2026-12-01T12:00Z", penalty_per_day=25),
    )  # fmt: skip
    assert [p.wait(timeout=600) for p in processes] == [0, 0, 0]
    merged = merge.main(
        lab="minilab", shards=shards, out=root / "merged", source_dir=FILES,
        release_dir=FILES / "release",
    )  # fmt: skip
    return single, merged, shards


def _results(root: Path, *, anonymous: bool = True) -> dict[str, dict]:
    found, who = {}, _identities(root)
    for path in (root / "results").glob("*.json"):
        text = path.read_text()
        data = json.loads(_anonymous(text, who[path.stem]) if anonymous else text)
        found[path.stem] = {k: v for k, v in data.items() if k not in VARYING or not anonymous}
    return found


def test_every_shard_grades_its_own_students_only(runs):
    single, _, shards = runs
    owned = [set(shard.Manifest.read(s).students) for s in shards]
    assert all(owned), "each of the 3 shards has students (else the test proves little)"
    assert set.union(*owned) == {r.student for r in single.results}
    assert sum(map(len, owned)) == len(single.results)  # no student graded twice
    for k, (root, students) in enumerate(zip(shards, owned, strict=True), 1):
        assert set(_results(root)) == students
        assert all(shard.shard_of(s, 3) == k for s in students)


def test_merged_results_are_the_shards_results(runs):
    _, merged, shards = runs
    from_shards = {}
    for root in shards:
        from_shards |= _results(root, anonymous=False)
    assert _results(merged.workspace.root, anonymous=False) == from_shards


def test_merged_results_equal_one_run(runs):
    single, merged, _ = runs
    one, many = _results(single.workspace.root), _results(merged.workspace.root)
    assert len(one) == 14 and one == many
    assert {r.status for r in merged.results} == {GRADED, "rejected"}
    assert len({r.score for r in merged.results if r.status == GRADED}) >= 3
    assert len({r.late_penalty for r in merged.results if r.status == GRADED}) >= 3


def test_merged_csv_junit_and_gradebook_equal_one_run(runs):
    from nbgrader.api import Gradebook

    single, merged, _ = runs
    a, b = single.workspace.root, merged.workspace.root
    assert (a / "grades.csv").read_text() == (b / "grades.csv").read_text()
    rows = list(csv.DictReader((b / "grades.csv").open()))
    assert len(rows) == 14

    def cases(root: Path) -> list:
        who = _identities(root)
        tree = ET.parse(root / "junit.xml").getroot()
        return [(s.get("name"), s.get("tests"), s.get("failures"),
                 [(c.get("classname"), c.get("name"),
                   [(e.tag, _anonymous(e.get("message"), who[c.get("classname").split(".")[0]]))
                    for e in c])
                  for c in s]) for s in tree]  # fmt: skip

    assert cases(a) == cases(b)

    for root in (a, b):  # each summary is its results, in student order
        summary = json.loads((root / "summary.json").read_text())
        assert summary == [_results(root, anonymous=False)[r["student"]] for r in summary]
        assert [r["student"] for r in summary] == sorted(_results(root))

    def scores(run) -> dict:
        with Gradebook(run.workspace.db_url) as gb:
            return {
                (s.student.id, g.name): g.score
                for s in gb.assignment_submissions("minilab") for n in s.notebooks
                for g in n.grades
            }  # fmt: skip

    assert scores(single) == scores(merged) and len(scores(merged)) > 10

    def lateness(run) -> dict:
        with Gradebook(run.workspace.db_url) as gb:
            due = gb.find_assignment("minilab").duedate
            return {s.student.id: (due, s.timestamp, s.late_submission_penalty)
                    for s in gb.assignment_submissions("minilab")}  # fmt: skip

    assert lateness(single) == lateness(merged)
    assert len({penalty for _, _, penalty in lateness(merged).values()}) >= 3


def test_merged_feedback_and_summary_exist_for_every_student(runs):
    _, merged, _ = runs
    root = merged.workspace.root
    for result in merged.results:
        page = merged.workspace.feedback_path(result.student, "minilab").read_text()
        assert result.student in page
    assert (root / "summary.png").stat().st_size > 1000
    assert "broken-json" in (root / "summary.html").read_text()


# -- refusals, on shard workspaces made by hand ------------------------------------------------


def _fake_shards(tmp_path: Path, minilab, count: int, students: list[str], changes=None) -> list:
    roots = []
    for k in range(1, count + 1):
        owned = tuple(s for s in students if shard.shard_of(s, count) == k)
        fields = {"lab": "minilab", "lab_digest": minilab.digest, "shard": k, "shards": count,
                  "students": owned} | (changes or {}).get(k, {})  # fmt: skip
        root = tmp_path / f"shard-{k}"
        shard.Manifest(**fields).write(root)
        for student in fields["students"]:
            result = SubmissionResult(student, "minilab", GRADED, lab_digest=minilab.digest)
            result.save(root / "results" / f"{student}.json")
        roots.append(root)
    return roots


def _merge(roots, tmp_path):
    return merge.main(lab="minilab", shards=roots, out=tmp_path / "merged", source_dir=FILES,
                      release_dir=FILES / "release")  # fmt: skip


STUDENTS = [f"student-{n}" for n in range(12)]


@pytest.mark.parametrize(
    ("why", "changes", "drop", "message"),
    [
        ("missing shard", {}, 2, "shard 2/3 missing"),
        ("other lab version", {3: {"lab_digest": "0ld"}}, None, "another version of the lab"),
        ("other lab", {1: {"lab": "storage"}}, None, "holds the storage lab"),
        ("other split", {2: {"shards": 4, "shard": 2}}, None, "split the class in different"),
        ("same shard twice", {3: {"shard": 1}}, None, "shard 1/3 is given twice"),
        ("overlap", {3: {"students": ("student-0",)}}, None, "student-0 is in two shards"),
        (
            "other late policy",
            {2: {"late": "due 2026-12-24T00:00:00+00:00, grace 0 min"}},
            None,
            "different late policies",
        ),
    ],
)
def test_merge_refuses_shards_that_are_not_one_class(
    tmp_path, minilab, why, changes, drop, message
):
    roots = _fake_shards(tmp_path, minilab, 3, STUDENTS, changes)
    if drop:
        roots.pop(drop - 1)
    with pytest.raises(ConfigError, match=message):
        _merge(roots, tmp_path)
    assert not (tmp_path / "merged").exists()  # nothing written before every check passed


def test_merge_refuses_a_shard_stopped_before_it_graded_everyone(tmp_path, minilab):
    roots = _fake_shards(tmp_path, minilab, 3, STUDENTS)
    victim = shard.Manifest.read(roots[1]).students[0]
    (roots[1] / "results" / f"{victim}.json").unlink()
    with pytest.raises(ConfigError, match=f"shard 2/3 .* has no result for {victim}") as caught:
        _merge(roots, tmp_path)
    assert "--shard 2/3" in caught.value.fix


def test_merge_refuses_a_folder_that_is_not_a_shard(tmp_path, minilab):
    (tmp_path / "plain").mkdir()
    with pytest.raises(ConfigError, match="not a shard workspace"):
        _merge([tmp_path / "plain"], tmp_path)


def test_shards_are_stable_and_share_the_class():
    # fixed values: the split must not change between machines, processes or releases
    assert [shard.shard_of(f"s{n}", 4) for n in range(8)] == [4, 4, 3, 1, 4, 1, 1, 3]
    sizes = [sum(shard.shard_of(f"student-{n}", 8) == k for n in range(4000)) for k in range(1, 9)]
    assert min(sizes) > 400 and max(sizes) < 600
    assert shard.Shard.parse(" 2 / 8 ") == shard.Shard(2, 8)
    for bad in ("0/3", "4/3", "2", "a/b", "1/0"):
        with pytest.raises(ConfigError):
            shard.Shard.parse(bad)
