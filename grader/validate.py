"""``cloudlabs validate``: check every lab in solutions/ against docs/lab-format.md, and the
question bank in solutions/bank (:func:`grader.bank.problems`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from nbformat import NotebookNode

from grader import ROOT, bank, quiz
from grader import answers as ans
from grader import labs as lab_index
from grader import notebook as nbu
from grader.labs import Lab
from grader.samples import expected
from grader.statecheck import load_checks

PARAMETERS = {"endpoint_url", "region", "account_id", "prefix"}
GRADE_ID = re.compile(r"^(parameters|setup|(ex\d+|kc\d+)_[a-z0-9_]+)$")


def _assigned_names(source: str) -> set[str] | None:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    return {
        t.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }


def problems(
    lab: Lab, *, min_exercises: int = 8, samples_dir: Path = lab_index.SAMPLES_DIR
) -> list[str]:
    """Everything in ``lab`` that breaks the contract, one sentence each."""
    out: list[str] = []
    nb = lab.notebook
    code = [c for c in nb.cells if c.cell_type == "code"]
    if nb.metadata.get("kernelspec", {}).get("name") != "python3":
        out.append("the kernelspec must be python3")
    if not code or "parameters" not in nbu.tags(code[0]):
        out.append("the first code cell must be tagged 'parameters'")
    elif _assigned_names(code[0].source) != PARAMETERS:
        out.append(f"the parameters cell must assign exactly {sorted(PARAMETERS)}")
    if not any("setup" in nbu.tags(c) for c in code):
        out.append("no cell is tagged 'setup'")
    for cell in nb.cells:
        if cell.get("outputs") or cell.get("execution_count"):
            out.append("the source notebook has outputs: strip them before committing")
            break
    ids = [nbu.grade_id(c) for c in nb.cells if nbu.grade_id(c)]
    for dup in sorted({g for g in ids if ids.count(g) > 1}):
        out.append(f"grade id {dup} is used twice")
    sections: dict[str, dict[str, int]] = {}
    for cell in nb.cells:
        gid = nbu.grade_id(cell)
        if not gid or cell.cell_type != "code":
            continue
        if not GRADE_ID.match(gid):
            out.append(f"{gid}: grade ids look like ex3_test_a, ex3_state, kc2_solution")
            continue
        section = nbu.section_of(gid)
        counts = sections.setdefault(
            section or "", {"test": 0, "state": 0, "hidden": 0, "solution": 0}
        )
        if nbu.is_solution(cell):
            counts["solution"] += 1
            if "### BEGIN SOLUTION" not in cell.source or "### END SOLUTION" not in cell.source:
                out.append(f"{gid}: a solution cell needs ### BEGIN SOLUTION / ### END SOLUTION")
            continue
        if not nbu.is_graded(cell):
            continue
        if nbu.points(cell) <= 0:
            out.append(f"{gid}: a graded cell needs points > 0")
        if not cell.source.lstrip().lower().startswith("# hint:"):
            out.append(f"{gid}: the first line must be '# Hint: ...'")
        if nbu.is_state_check(cell):
            counts["state"] += 1
            if nbu.has_code(cell.source):
                out.append(
                    f"{gid}: a state-check cell holds only comments (the check is in checks.py)"
                )
        else:
            counts["test"] += 1
            counts["hidden"] += "### BEGIN HIDDEN TESTS" in cell.source
            out += bare_asserts(cell)
    exercises = [s for s in sections if s.startswith("ex")]
    if len(exercises) < min_exercises:
        out.append(f"{len(exercises)} exercises; a lab has at least {min_exercises}")
    for section in exercises:
        counts = sections[section]
        for need, what in (
            ("test", "a test cell"),
            ("hidden", "hidden tests"),
            ("state", "a state check"),
        ):
            if counts[need] == 0:
                out.append(f"{section}: needs {what}")
    if not any(s.startswith("kc") for s in sections):
        out.append("no knowledge-check questions (grade ids kcN_...)")
    out += answer_problems(lab)
    state_ids = {c.grade_id for c in lab.graded_cells if c.kind == "state"}
    if state_ids:
        try:
            checks = set(load_checks(lab.checks))
        except Exception as exc:  # report a broken checks.py instead of crashing validation
            out.append(f"checks.py cannot be loaded: {exc}")
            checks = set()
        else:
            for gid in sorted(state_ids - checks):
                out.append(f"{gid}: no @state_check in checks.py")
            for gid in sorted(checks - state_ids):
                out.append(f"checks.py: {gid} has no state-check cell in the notebook")
    scores = expected(lab, samples_dir)
    if not scores:
        out.append(f"samples/{lab.name}/expected.json is missing")
    elif abs(float(scores.get("solution", -1)) - lab.max_score) > 1e-6:
        out.append(
            f"expected.json says the solution scores {scores.get('solution')}, the lab has {lab.max_score:g} points"
        )
    return out


def bare_asserts(cell: NotebookNode) -> list[str]:
    """Every assert of a test cell, visible or hidden, needs a message: it is what the student
    reads when the assert fails (the hidden-test markers are comments, so the whole cell parses).
    A cell that does not parse is reported by :func:`answer_problems`."""
    if not nbu.is_test(cell):
        return []
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:
        return []
    lines = sorted(
        node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert) and node.msg is None
    )
    gid = nbu.grade_id(cell)
    return [f"test cell {gid}: line {n}: assert without a message for the student" for n in lines]


def answer_problems(lab: Lab) -> list[str]:
    """Tests run outside the student's kernel: each may read only the setup's names, builtins
    and answers that a solution cell of its exercise (or an earlier one) declares."""
    out: list[str] = []
    nb = lab.notebook
    for source in ans.setup_sources(nb):
        try:
            ast.parse(source)
        except SyntaxError as exc:
            out.append(f"a setup cell is not plain Python (the test process runs it): {exc.msg}")
            return out
    given = ans.setup_names(nb)
    declared: set[str] = set()
    for cell in nb.cells:
        gid = nbu.grade_id(cell) or ""
        if cell.cell_type != "code":
            continue
        if nbu.is_solution(cell):
            names = ans.declared_answers(cell)
            body = cell.source.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", "")
            try:
                assigned = ans.assigned_names(body)
            except SyntaxError:
                assigned = set()
            for name in names:
                if name not in assigned:
                    out.append(f"{gid}: declares the answer `{name}` but never assigns it")
            declared |= set(names)
        elif nbu.is_test(cell):
            try:
                reads = ans.free_names(cell.source, given)
            except SyntaxError as exc:
                out.append(f"{gid}: not valid Python ({exc.msg})")
                continue
            for name in sorted(reads - declared):
                out.append(
                    f"{gid}: reads `{name}`, which the setup does not define and no solution cell "
                    "of this or an earlier exercise declares (metadata cloudlabs.answers)"
                )
    return out


LETTER_ANSWER = re.compile(r'^\s*\w+\s*=\s*["\']([A-F])["\']', re.M)


def knowledge_check_problems(source_dir: Path, course_dir: Path) -> list[str]:
    """No letter answers more than 30 % of the lectures' checks, nor of theirs and the labs'."""
    lectures = list(quiz.letter_answers(sorted(course_dir.rglob("*.ipynb"))).values())
    labs = [
        letter
        for name in lab_index.available(source_dir)
        for cell in lab_index.find(name, source_dir=source_dir).notebook.cells
        if (nbu.grade_id(cell) or "").startswith("kc") and cell.cell_type == "code"
        and nbu.grade_id(cell).endswith("_solution")
        for letter in LETTER_ANSWER.findall(cell.source)
    ]  # fmt: skip
    return bank.share_problems(lectures, "the lectures' knowledge checks") + bank.share_problems(
        lectures + labs, "the knowledge checks of lectures and labs"
    )


def main(
    *,
    labs: list[str] | None = None,
    source_dir: Path = lab_index.SOURCE_DIR,
    course_dir: Path = ROOT / "course",
    min_exercises: int = 8,
    evidence: bool = False,
) -> dict[str, list[str]]:
    """Problems per lab (empty lists when all is well). With ``evidence``, each lab is also graded
    with one exercise blank at a time (:mod:`grader.evidence`), on the running emulator."""
    found = {
        name: problems(lab_index.find(name, source_dir=source_dir), min_exercises=min_exercises)
        for name in labs or lab_index.available(source_dir)
    }
    if labs is None and (source_dir / "bank").is_dir():  # the question bank, as a whole
        found |= bank.problems(source_dir / "bank")
    if labs is None and course_dir.is_dir():
        found["knowledge checks"] = knowledge_check_problems(source_dir, course_dir)
    if evidence:
        from grader import emulator
        from grader import evidence as proof

        with emulator.running():
            for name, out in found.items():
                out += [str(leak) for leak in proof.main(lab=name, source_dir=source_dir)]
    return found
