"""Grading throughput: the same class graded by plain sequential `nbgrader autograde` and by
`cloudlabs grade`, side by side in one run, plus the time of a self-check.

    .venv/bin/python -m benchmarks.grading [--lab storage] [--students 30] [--baseline REV]

With ``--baseline REV`` the same class is also graded, in the same run and on the same emulator,
by ``cloudlabs grade`` of git revision REV (checked out in a temporary worktree), so a change's
cost per submission is measured side by side.

The class cycles through the lab's samples (solution, blank, partial). For nbgrader each
notebook gets its own account and prefix in an extra cell after the parameters (nbgrader would
restore a locked parameters cell), so both graders do the same AWS work.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

from grader import check, grade, samples
from grader import emulator as emu
from grader import notebook as nbu
from grader.config import EmulatorConfig, GradeConfig, load
from grader.labs import find
from grader.pipeline import new_identity
from tests.conftest import free_port


def build_class(lab, release, count: int, target: Path) -> list[Path]:
    kinds = samples.write_class(lab, release, target / "_samples")
    notebooks = [nbu.read(target / "_samples" / f"{kind}.ipynb") for kind in kinds]
    paths = []
    for i in range(count):
        path = target / f"s{i:02d}.ipynb"
        nbformat.write(notebooks[i % len(notebooks)], str(path))
        paths.append(path)
    return paths


def nbgrader_baseline(lab, paths: list[Path], endpoint_url: str, work: Path) -> float:
    """Sequential `nbgrader autograde` of the class in a fresh nbgrader course directory."""
    source = work / "source" / lab.name
    shutil.copytree(lab.source.parent, source, ignore=shutil.ignore_patterns("checks.py"))
    for path in paths:
        nb = nbu.read(path)
        account, prefix = new_identity()
        index = next(i for i, c in enumerate(nb.cells) if "parameters" in nbu.tags(c))
        nb.cells.insert(index + 1, new_code_cell(
            f'endpoint_url = "{endpoint_url}"\naccount_id = "{account}"\nprefix = "{prefix}"'
        ))  # fmt: skip
        target = work / "submitted" / path.stem / lab.name / f"{lab.name}.ipynb"
        target.parent.mkdir(parents=True)
        nbformat.write(nb, str(target))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    common = [f"--CourseDirectory.root={work}", f"--CourseDirectory.db_url=sqlite:///{work}/gb.db",
              "--CourseDirectory.ignore=['checks.py','.ipynb_checkpoints']"]  # fmt: skip
    nbgrader = [sys.executable, "-m", "nbgrader"]

    def run(*args: str) -> None:  # in the course directory: the repo's nbgrader_config.py stays out
        done = subprocess.run(
            [*nbgrader, *args, *common], cwd=work, capture_output=True, text=True, env=env
        )
        if done.returncode:
            raise SystemExit(f"nbgrader {args[0]} failed:\n{done.stderr[-3000:]}")

    run("generate_assignment", lab.name, "--force")
    started = time.perf_counter()
    run("autograde", lab.name, "--force", "--ExecutePreprocessor.timeout=300")
    return time.perf_counter() - started


def baseline_grade(rev: str, lab: str, submissions: Path, out: Path, workers: int,
                   config: EmulatorConfig) -> float:  # fmt: skip
    """Seconds ``cloudlabs grade`` of revision ``rev`` takes for the class (same emulator)."""
    root = Path(__file__).resolve().parent.parent
    tree = out.parent / f"tree-{rev}"
    subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(tree), rev],
                   check=True, capture_output=True)  # fmt: skip
    try:
        (tree / ".venv-emulator").symlink_to(root / ".venv-emulator")
        env = {**os.environ, "CLOUDLABS_EMULATOR_HOME": str(config.home),
               "CLOUDLABS_EMULATOR_PORT": str(config.port)}  # fmt: skip
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "grader", "grade", lab, str(submissions), "--out", str(out),
             "--workers", str(workers)],
            cwd=tree, env=env, check=False, capture_output=True,
        )  # fmt: skip
        return time.perf_counter() - started
    finally:
        subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)],
                       check=False, capture_output=True)  # fmt: skip


#: (label, key in SubmissionResult.timings) in the order a submission goes through them
STAGES = (("kernel start", "kernel start"), ("trusted tests", "tests"),
          ("state checks", "state checks"), ("scoring", "score"), ("gradebook", "record"))  # fmt: skip


def stage_table(run) -> list[tuple[str, float]]:
    """Mean seconds per submission of each grading stage of a class run."""
    graded = [r for r in run.results if r.timings] or run.results
    n = max(1, len(graded))

    def mean(key: str) -> float:
        return sum(r.timings.get(key, 0.0) for r in graded) / n

    notebook = mean("execute") - mean("kernel start") - mean("tests")
    table = [("prepare", mean("prepare")), ("kernel start", mean("kernel start")),
             ("notebook", notebook)]  # fmt: skip
    table += [(label, mean(key)) for label, key in STAGES[1:]]
    table += [(name, seconds / max(1, len(run.results))) for name, seconds in run.timings.items()]
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="storage")
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--baseline", help="also grade with this git revision, side by side")
    args = parser.parse_args()
    lab = find(args.lab)
    release = nbu.read(lab.release)
    with tempfile.TemporaryDirectory(prefix="cloudlabs-bench-") as tmp:
        tmp_path = Path(tmp)
        config = load(EmulatorConfig, "emulator", home=tmp_path / "emu", port=free_port())
        emulator = emu.create(config)
        emulator.start()
        try:
            paths = build_class(lab, release, args.students, tmp_path / "class")
            (tmp_path / "class" / "_samples").rename(tmp_path / "samples")
            baseline = nbgrader_baseline(lab, paths, emulator.endpoint_url, tmp_path / "nbgrader")
            timings: dict[int, float] = {}
            stages: dict[int, list[tuple[str, float]]] = {}
            for workers in (os.cpu_count() or 2, 2 * (os.cpu_count() or 2)):
                started = time.perf_counter()
                run = grade.main(lab=lab.name, submissions=tmp_path / "class", out=tmp_path / f"out{workers}",
                                 emulator_config=config, grade_config=load(GradeConfig, "grade", workers=workers))  # fmt: skip
                timings[workers] = time.perf_counter() - started
                stages[workers] = stage_table(run)
                statuses = {(r.status, r.score) for r in run.results}
                print(f"  ({workers} workers: {sorted(statuses)})", file=sys.stderr)
            before = None
            if args.baseline:
                workers = os.cpu_count() or 2
                before = (workers, baseline_grade(args.baseline, lab.name, tmp_path / "class",
                                                  tmp_path / "out-baseline", workers, config))  # fmt: skip
            checks = {}
            for kind in ("blank", "solution"):
                notebook = tmp_path / "samples" / f"{kind}.ipynb"
                check.main(target=str(notebook), emulator_config=config)  # warm the per-lab cache
                runs = []
                for _ in range(3):
                    started = time.perf_counter()
                    result = check.main(target=str(notebook), emulator_config=config)
                    runs.append((time.perf_counter() - started, result.timings.get("execute", 0.0)))
                checks[kind] = runs
        finally:
            emulator.stop()
    n = args.students
    print(f"{n} submissions of the {lab.name} lab on {os.cpu_count()} cores")
    print(
        f"  nbgrader autograde, sequential   {baseline:7.1f} s  {n / baseline * 60:6.1f}/min  1.00x"
    )
    default = GradeConfig().workers
    for workers, seconds in timings.items():
        mark = " (the default)" if workers == default else ""
        print(f"  cloudlabs grade, {workers} workers       {seconds:7.1f} s  {n / seconds * 60:6.1f}/min  "
              f"{baseline / seconds:.2f}x{mark}")  # fmt: skip
    if before:
        workers, seconds = before
        now = timings[workers]
        print(
            f"  cloudlabs grade {args.baseline}, {workers} workers {seconds:7.1f} s  "
            f"{n / seconds * 60:6.1f}/min  {baseline / seconds:.2f}x"
        )
        print(f"  this tree vs {args.baseline}: {(now - seconds) / n * workers:+.2f} s of worker "
              f"time per submission ({now / seconds:.2f}x the wall time)")  # fmt: skip
    for workers, table in stages.items():
        print(f"  where the time goes with {workers} workers (mean seconds per submission, "
              "each in its worker; class-wide steps divided by the class size):")  # fmt: skip
        print("    " + "  ".join(f"{name} {seconds:.2f}" for name, seconds in table))
    for kind, runs in checks.items():
        total = statistics.median(t for t, _ in runs)
        notebook = statistics.median(e for _, e in runs)
        print(
            f"cloudlabs check, {kind:8}: median {total:5.2f} s, of which the notebook's own run "
            f"{notebook:5.2f} s and grading overhead {total - notebook:4.2f} s (target: <= 3 s)"
        )


if __name__ == "__main__":
    main()
