"""``cloudlabs merge <lab> <shard>... --out DIR``: shard workspaces made into one class run.

The merged workspace is what one ``cloudlabs grade`` of the whole class would have written: the
results as each shard saved them, one gradebook, the autograded notebooks, every feedback page and
the class exports, all made again from the results (the one source of truth), never copied from a
shard's exports. Nothing is merged unless every shard of the same lab version is there, each
complete, and no student is in two of them."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import nbformat

from grader import export, feedback, late, nbgrader_glue
from grader import workspace as workspaces
from grader.errors import ConfigError
from grader.grade import ClassRun
from grader.labs import RELEASE_DIR, SOURCE_DIR, Lab, find
from grader.results import GRADED, SubmissionResult
from grader.shard import MANIFEST, Manifest


def main(
    *,
    lab: str,
    shards: list[Path],
    out: Path,
    source_dir: Path = SOURCE_DIR,
    release_dir: Path = RELEASE_DIR,
) -> ClassRun:
    """Merge the shard workspaces ``shards`` of ``lab`` into ``out``."""
    the_lab = find(lab, source_dir=source_dir, release_dir=release_dir)
    out = out.resolve()
    roots = [s.resolve() for s in shards]
    if out in roots or (out / MANIFEST).exists():
        raise ConfigError(f"{out} is a shard workspace", fix="merge into a new folder: --out DIR")
    manifests = _check(the_lab, roots)
    results = _results(the_lab, manifests)

    started = time.monotonic()
    workspace, release = workspaces.prepare(the_lab, out)
    timings = {"release": time.monotonic() - started}
    started = time.monotonic()
    nbgrader_glue.add_students([r.student for _, r in results], db_url=workspace.db_url)
    graded = []
    for root, result in results:
        result.save(workspace.result_path(result.student))
        notebook = workspaces.Workspace(root).autograded_path(result.student, lab)
        if notebook.exists():
            target = workspace.autograded_path(result.student, lab)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(notebook, target)
            if result.status == GRADED:
                points = {c.grade_id: c.points for c in result.cells}
                graded.append((result.student, nbformat.read(target, as_version=4), points))
    nbgrader_glue.set_due(lab, late.parse_time(manifests[0][1].due), db_url=workspace.db_url)
    lateness = {r.student: (late.parse_time(r.submitted_at), r.late_penalty) for _, r in results}
    nbgrader_glue.record_all(graded, lab=lab, db_url=workspace.db_url, lateness=lateness)
    timings["gradebook"] = time.monotonic() - started
    started = time.monotonic()
    for _, result in results:
        feedback.write(result, the_lab, workspace, release)
    timings["feedback"] = time.monotonic() - started
    ordered = sorted((r for _, r in results), key=lambda r: r.student)
    started = time.monotonic()
    export.write_all(the_lab, ordered, workspace, due=manifests[0][1].due)
    timings["exports"] = time.monotonic() - started
    return ClassRun(the_lab, workspace, ordered, 0, timings)


def _check(lab: Lab, roots: list[Path]) -> list[tuple[Path, Manifest]]:
    """Every shard of one lab version, each once, no student in two: or why not."""
    if not roots:
        raise ConfigError("no shard workspaces given", fix="give every shard's --out folder")
    manifests = [(root, Manifest.read(root)) for root in roots]
    fix = "grade every shard with the same cloudlabs revision, then merge again"
    for root, m in manifests:
        if m.lab != lab.name:
            raise ConfigError(f"{root} holds the {m.lab} lab, not {lab.name}", lab=lab.name,
                              fix="merge the shards of one lab at a time")  # fmt: skip
        if m.lab_digest != lab.digest:
            raise ConfigError(
                f"{root} was graded with another version of the lab (version {m.lab_digest}; "
                f"the course here has {lab.digest})", lab=lab.name, fix=fix,
            )  # fmt: skip
    counts = {m.shards for _, m in manifests}
    if len(counts) > 1:
        raise ConfigError(
            f"the shards split the class in different ways ({', '.join(map(str, sorted(counts)))}"
            " shards)", lab=lab.name, fix="grade every shard with the same N in --shard K/N",
        )  # fmt: skip
    count = counts.pop()
    policies = {m.late for _, m in manifests}
    if len(policies) > 1:
        raise ConfigError(
            f"the shards were graded with different late policies ({'; '.join(sorted(policies))})",
            lab=lab.name, fix="grade every shard with the same CLOUDLABS_LATE_* settings",
        )  # fmt: skip
    seen: dict[int, Path] = {}
    for root, m in manifests:
        if m.shard in seen:
            raise ConfigError(f"shard {m.shard}/{count} is given twice: {seen[m.shard]} and "
                              f"{root}", lab=lab.name, fix="give each shard once")  # fmt: skip
        seen[m.shard] = root
    missing = sorted(set(range(1, count + 1)) - set(seen))
    if missing:
        names = ", ".join(f"{k}/{count}" for k in missing)
        raise ConfigError(
            f"shard{'s' if len(missing) > 1 else ''} {names} missing", lab=lab.name,
            fix=f"grade {'them' if len(missing) > 1 else 'it'} with `cloudlabs grade {lab.name} "
            "SUBMISSIONS --shard K/N --out DIR` and give its folder too",
        )  # fmt: skip
    owner: dict[str, Path] = {}
    for root, m in manifests:
        for student in m.students:
            if student in owner:
                raise ConfigError(
                    f"{student} is in two shards: {owner[student]} and {root}", lab=lab.name,
                    fix="grade every shard from the same submissions, then merge again",
                )  # fmt: skip
            owner[student] = root
    return manifests


def _results(
    lab: Lab, manifests: list[tuple[Path, Manifest]]
) -> list[tuple[Path, SubmissionResult]]:
    """Every student's result, from the shard that owns the student."""
    results = []
    for root, m in manifests:
        incomplete = []
        for student in m.students:
            path = workspaces.Workspace(root).result_path(student)
            try:
                result = SubmissionResult.load(path)
            except (OSError, ValueError, TypeError, KeyError):
                incomplete.append(student)
                continue
            if result.student != student or result.lab_digest != lab.digest:
                incomplete.append(student)
                continue
            results.append((root, result))
        if incomplete:
            raise ConfigError(
                f"shard {m.shard}/{m.shards} ({root}) has no result for "
                f"{', '.join(incomplete[:5])}{' and more' if len(incomplete) > 5 else ''}",
                lab=lab.name,
                fix=f"run that shard's `cloudlabs grade ... --shard {m.shard}/{m.shards}` again "
                "(it grades only what is missing), then merge again",
            )  # fmt: skip
    return results
