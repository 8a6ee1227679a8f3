"""Step 3 of grading: verify the submission's AWS state from outside the student's kernel.

The lab's checks (solutions/<lab>/checks.py) run in the grader's process against the submission's
own account; nothing the notebook did to boto3, botocore or its own helpers can reach them. Their
scores are the state-check cells' scores, and bound what the exercise's tests may earn
(:func:`bound_tests`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from grader.errors import LabError
from grader.labs import Lab
from grader.statecheck import CheckFunction, CheckResult, load_checks, run_checks


@functools.lru_cache(maxsize=32)
def _checks(path: Path, digest: str) -> dict[str, CheckFunction]:
    """A lab's checks, loaded once per version of the lab (``digest``) and grading process."""
    return load_checks(path)


def verify(*, lab: Lab, aws: Any, prefix: str) -> dict[str, CheckResult]:
    """Run every state check of ``lab`` with ``aws``, a session for one submission's account
    (:func:`grader.statecheck.session_for`)."""
    state_ids = {c.grade_id for c in lab.graded_cells if c.kind == "state"}
    if not state_ids:
        return {}
    if not lab.checks.exists():
        raise LabError(f"{lab.checks} is missing but the lab has state-check cells", lab=lab.name)
    checks = _checks(lab.checks, lab.digest)
    results = run_checks(
        {g: f for g, f in checks.items() if g in state_ids}, aws=aws, prefix=prefix
    )
    for gid in state_ids - set(results):
        results[gid] = CheckResult(gid, 0.0, "no state check is registered for this cell")
    return results


def bound_tests(
    points: dict[str, float], results: dict[str, CheckResult], *, lab: Lab
) -> tuple[dict[str, float], set[str], list[str]]:
    """Points backed by evidence: an exercise's tests earn at most the share of its state checks
    that passed (a reported value no resource backs earns nothing; half-built resources, half
    the test points). Knowledge checks have no state and are scored on the answer alone.

    ``points`` holds the tests' points (grader.score.test_points). Returns every graded cell's
    points (tests bounded, state checks from ``results``), the test ids that were scaled down,
    and notes for the report."""
    out = dict(points)
    for cell in lab.graded_cells:
        if cell.kind == "state":
            check = results.get(cell.grade_id)
            out[cell.grade_id] = check.fraction * cell.points if check else 0.0
    by_section: dict[str, list] = {}
    for cell in lab.graded_cells:
        by_section.setdefault(cell.section, []).append(cell)
    gated: set[str] = set()
    notes = []
    for section, cells in by_section.items():
        states = [c for c in cells if c.kind == "state"]
        top = sum(c.points for c in states)
        if not states or not top:
            continue
        share = min(1.0, sum(out[c.grade_id] for c in states) / top)
        if share >= 1.0:
            continue
        scaled = {c.grade_id for c in cells if c.kind == "test" and out.get(c.grade_id, 0.0) > 0}
        for gid in scaled:
            out[gid] *= share
        gated |= scaled
        if scaled:
            notes.append(
                f"{section}: its tests count for {share:.0%} of their points, the share of the "
                "resources it asks for that were found in your account"
            )
    return out, gated, notes
