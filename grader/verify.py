"""Step 3 of grading: verify the submission's AWS state from outside the student's kernel.

The lab's checks (solutions/<lab>/checks.py) run in the grader's process against the submission's
own account; nothing the notebook did to boto3, botocore or its own helpers can reach them. Their
scores replace the state-check cells' scores in the gradebook, and bound what the exercise's tests
may earn (:func:`gate_tests`).
"""

from __future__ import annotations

from grader import nbgrader_glue
from grader.errors import LabError
from grader.labs import Lab
from grader.statecheck import CheckResult, load_checks, run_checks, session_for


def verify(
    *, lab: Lab, endpoint_url: str, account_id: str, prefix: str, region: str = "us-east-1"
) -> dict[str, CheckResult]:
    """Run every state check of ``lab`` against one account."""
    state_ids = {c.grade_id for c in lab.graded_cells if c.kind == "state"}
    if not state_ids:
        return {}
    if not lab.checks.exists():
        raise LabError(f"{lab.checks} is missing but the lab has state-check cells", lab=lab.name)
    checks = load_checks(lab.checks)
    aws = session_for(endpoint_url=endpoint_url, account_id=account_id, region=region)
    results = run_checks(
        {g: f for g, f in checks.items() if g in state_ids}, aws=aws, prefix=prefix
    )
    for gid in state_ids - set(results):
        results[gid] = CheckResult(gid, 0.0, "no state check is registered for this cell")
    return results


def gate_tests(
    results: dict[str, CheckResult], *, lab: Lab, student: str, db_url: str
) -> list[str]:
    """Points backed by evidence: an exercise's tests earn at most the share of its state checks
    that passed (a reported value no resource backs earns nothing; half-built resources, half
    the test points). Knowledge checks have no state and are scored on the answer alone.
    Returns notes for the report."""
    notes = []
    current = nbgrader_glue.scores(lab=lab.name, student=student, db_url=db_url)
    by_section: dict[str, list] = {}
    for cell in lab.graded_cells:
        by_section.setdefault(cell.section, []).append(cell)
    for section, cells in by_section.items():
        states = [c for c in cells if c.kind == "state"]
        if not states:
            continue
        top = sum(c.points for c in states)
        earned = sum(
            results[c.grade_id].fraction * c.points for c in states if c.grade_id in results
        )
        share = min(1.0, earned / top) if top else 1.0
        if share >= 1.0:
            continue
        scaled = False
        for cell in cells:
            got = current.get(cell.grade_id, (0.0, 0.0))[0]
            if cell.kind == "test" and got > 0:
                nbgrader_glue.set_manual_score(
                    lab=lab.name, student=student, grade_id=cell.grade_id, score=got * share,
                    db_url=db_url,
                )  # fmt: skip
                scaled = True
        if scaled:
            notes.append(
                f"{section}: its tests count for {share:.0%} of their points, the share of the "
                "resources it asks for that were found in your account"
            )
    return notes


def record(results: dict[str, CheckResult], *, lab: Lab, student: str, db_url: str) -> None:
    """Write the state checks' scores into the gradebook."""
    points = {c.grade_id: c.points for c in lab.graded_cells}
    for gid, result in results.items():
        nbgrader_glue.set_manual_score(
            lab=lab.name, student=student, grade_id=gid, score=result.fraction * points[gid],
            db_url=db_url,
        )  # fmt: skip
