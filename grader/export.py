"""Class-level outputs, all derived from the same in-memory results: a CSV in nbgrader's export
format, JSON results, JUnit XML for CI, and a summary page with a per-exercise score distribution
plot. Every text from a submission is cleaned (:func:`grader.text.clean`) first: capped, with no
character XML 1.0 or HTML cannot carry."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from grader import html as pages
from grader import late
from grader import notebook as nbu
from grader.labs import Lab
from grader.results import (
    GRADED,
    MESSAGE_LIMIT,
    REASON_LIMIT,
    SubmissionResult,
    write_atomically,
)
from grader.text import clean
from grader.workspace import Workspace


def write_all(
    lab: Lab, results: list[SubmissionResult], workspace: Workspace, *, due: str = ""
) -> dict[str, Path]:
    """Every class export into ``workspace``; ``due``: the lab's due time (ISO 8601), if any."""
    root = workspace.root
    paths = {
        "csv": root / "grades.csv",
        "json": root / "summary.json",
        "junit": root / "junit.xml",
        "plot": root / "summary.png",
        "html": root / "summary.html",
    }
    write_csv(lab, results, paths["csv"], due=due)
    write_atomically(paths["json"], json.dumps([r.to_json() for r in results], indent=2))
    write_junit(results, paths["junit"])
    write_plot(lab, results, paths["plot"])
    write_summary_html(lab, results, paths["html"], paths["plot"].name)
    return paths


#: nbgrader's CSV export columns (so gradebook tools read it as before), then why a submission
#: has no score. A rejected or failed submission has empty score cells, never a 0.
CSV_COLUMNS = (
    "assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
    "raw_score", "late_submission_penalty", "score", "max_score", "status", "reason",
)  # fmt: skip


def write_csv(lab: Lab, results: list[SubmissionResult], path: Path, *, due: str = "") -> None:
    """One row per student, from the results (the same numbers as the JSON and JUnit): as in
    nbgrader's export, ``score`` is ``raw_score`` less ``late_submission_penalty``."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in results:
        graded = r.status == GRADED
        writer.writerow({
            "assignment": lab.name, "duedate": due, "timestamp": r.submitted_at if graded else "",
            "student_id": clean(r.student, 100), "last_name": "", "first_name": "", "email": "",
            "raw_score": f"{r.score:g}" if graded else "",
            "late_submission_penalty": f"{r.late_penalty:g}" if graded else "",
            "score": f"{r.final_score:g}" if graded else "", "max_score": f"{r.max_score:g}",
            "status": r.status,
            "reason": "" if graded else " ".join(clean(r.reason, REASON_LIMIT).split()),
        })  # fmt: skip
    write_atomically(path, out.getvalue())


def write_junit(results: list[SubmissionResult], path: Path) -> None:
    c = clean
    suites = ET.Element("testsuites")
    for result in results:
        student = c(result.student, 100)
        suite = ET.SubElement(suites, "testsuite", name=f"{c(result.lab, 100)}.{student}")
        failures = 0
        if result.status != GRADED:
            case = ET.SubElement(suite, "testcase", classname=student, name="submission")
            ET.SubElement(case, "error", message=c(result.reason or result.status, REASON_LIMIT))
            failures = 1
        for cell in result.cells:
            case = ET.SubElement(
                suite, "testcase", classname=f"{student}.{c(cell.section, 100)}",
                name=c(cell.grade_id, 200),
            )  # fmt: skip
            if not cell.passed:
                failures += 1
                failure = ET.SubElement(
                    case, "failure",
                    message=f"{cell.points:g}/{cell.max_points:g}: {c(cell.message, MESSAGE_LIMIT)}",
                )  # fmt: skip
                failure.text = f"Hint: {c(cell.hint, MESSAGE_LIMIT)}" if cell.hint else ""
        lateness = late.summary(result)
        if lateness:
            case = ET.SubElement(suite, "testcase", classname=student, name="on time")
            ET.SubElement(case, "failure", message=lateness)
            failures += 1
        suite.set("tests", str(max(1, len(suite))))
        suite.set("failures", str(failures))
    ET.indent(suites)
    write_atomically(path, ET.tostring(suites, encoding="unicode", xml_declaration=True))


def exercise_fractions(results: list[SubmissionResult]) -> dict[str, list[float]]:
    """Per exercise, each graded student's share of its points."""
    fractions: dict[str, list[float]] = {}
    for result in results:
        if result.status != GRADED:
            continue
        for section, (got, top) in result.exercises.items():
            fractions.setdefault(section, []).append(got / top if top else 0.0)
    return fractions


def write_plot(lab: Lab, results: list[SubmissionResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fractions = exercise_fractions(results)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    if fractions:
        names = list(fractions)
        left.boxplot([fractions[n] for n in names], tick_labels=names)
        means = [sum(v) / len(v) for v in fractions.values()]
        left.plot(range(1, len(names) + 1), means, "o", color="tab:red", label="mean")
        left.legend()
    left.set_ylim(-0.05, 1.05)
    left.set_ylabel("share of the exercise's points")
    left.set_title(f"{lab.name}: score per exercise")
    totals = [r.final_score for r in results if r.status == GRADED]
    right.hist(
        totals, bins=min(20, max(5, len(totals))), range=(0, lab.max_score or 1), color="tab:blue"
    )
    right.set_xlabel(f"total score (max {lab.max_score:g})")
    right.set_ylabel("students")
    right.set_title("total scores")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_summary_html(lab: Lab, results: list[SubmissionResult], path: Path, plot: str) -> None:
    sections = list(exercise_fractions(results)) or sorted({c.section for c in lab.graded_cells})
    rows = []
    for r in results:
        ex = r.exercises
        rows.append({
            "student": r.student, "total": f"{r.final_score:g}/{r.max_score:g}",
            "late": late.summary(r),
            "cells": [f"{ex[s][0]:g}/{ex[s][1]:g}" if s in ex else "–" for s in sections],
            "problem": "" if r.status == GRADED else f"{r.status}: {r.reason}",
        })  # fmt: skip
    titles = [(s, nbu.exercise_title(lab.notebook, s)) for s in sections]
    write_atomically(
        path,
        pages.render("class_summary.html.j2", lab=lab.name, plot=plot, sections=titles,
                     rows=rows, reason_limit=REASON_LIMIT),
    )  # fmt: skip


def class_table(lab: Lab, results: list[SubmissionResult]) -> str:
    """A plain-text table for the terminal."""
    sections = sorted({c.section for c in lab.graded_cells}, key=_section_order)
    header = f"{'student':24} {'total':>9}  " + " ".join(f"{s:>6}" for s in sections)
    lines = [header, "-" * len(header)]
    for r in results:
        student = clean(r.student, 64)
        if r.status != GRADED:  # one line: no escape sequence or newline reaches the terminal
            why = " ".join(clean(f"{r.status}: {r.reason}", 300).split())
            lines.append(f"{student:24} {'—':>9}  {why}")
            continue
        ex = r.exercises
        cols = " ".join(f"{ex[s][0]:>6g}" if s in ex else f"{'–':>6}" for s in sections)
        penalty = f"  late: -{r.late_penalty:g}" if r.late_penalty else ""
        lines.append(f"{student:24} {r.final_score:>4g}/{r.max_score:<4g}  {cols}{penalty}")
    return "\n".join(lines)


def _section_order(section: str) -> tuple[int, int]:
    kind, number = section[:2], section[2:]
    return (0 if kind == "ex" else 1, int(number) if number.isdigit() else 0)
