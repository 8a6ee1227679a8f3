"""Sizing: what one submission of each lab costs, and how long a class takes on N shards.

    PYTHONPATH=. .venv/bin/python -m benchmarks.sizing [--labs compute,storage] [--students 12]
        [--workers 2] [--ci-setup 180] [--write docs/scaling.md]

Every lab (``grader.labs.available()`` unless ``--labs``) gets a class made by
:func:`benchmarks.grading.build_class` (its samples in turn: solution, blank, partial), graded by
:func:`grader.grade.main` with ``--workers`` workers on one embedded emulator, started once for all
labs. The class is graded as shard 1 of 1 (the same work as a plain ``cloudlabs grade``, plus
``shard.json``) and then merged with ``cloudlabs merge``, so the merge step is measured too.

Per lab it prints submissions per minute, wall seconds per submission, CPU seconds per submission
of the grader with its kernels and trusted test processes, and of the emulator (with its Lambda
processes), peak resident memory of both process trees and the disk each submission leaves. Then
the estimated wall time of classes of 100, 1,000 and 5,000 students on 1 to 256 shards
(:func:`estimate`). ``--write FILE`` puts both tables between the ``measured`` markers of FILE
(a measurement of one machine, so the docs' drift check leaves it alone).

How CPU is counted: the grader's own ``RUSAGE_SELF`` delta (less the sampler thread's own CPU),
plus its descendants (the emulator's tree excluded) as the larger of ``RUSAGE_CHILDREN`` (exact
for children the grader waits for, but a kernel killed with its process group is never waited for
by its own parent) and the sum of every descendant's CPU sampled by psutil every 0.1 s (misses at
most the last 0.1 s of each process). The emulator's tree is read by psutil at the start and the
end of each lab (its Lambda processes are waited for by the emulator, so their CPU is in its
children's times). Both are lower bounds. Resident memory is the sum of the processes' RSS at the
samples (shared pages counted once per process: an upper bound of the real use).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import math
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from benchmarks.grading import build_class
from grader import ROOT, grade, merge
from grader import emulator as emu
from grader import notebook as nbu
from grader.config import EmulatorConfig, GradeConfig, load
from grader.labs import available, find
from grader.shard import Shard
from tests.conftest import free_port

CLASS_SIZES = (100, 1_000, 5_000)
SHARD_COUNTS = (1, 4, 16, 64, 256)
#: seconds a CI runner needs before ``cloudlabs grade`` starts: boot, two checkouts,
#: setup-python, apt-get bubblewrap, and ``make setup`` from a warm pip cache (an assumption, not
#: measured here; a prebuilt image with both virtualenvs brings it to about a minute)
CI_SETUP = 180.0
BEGIN, END = "<!-- measured: sizing -->", "<!-- end measured -->"
SAMPLE_EVERY = 0.1  #: seconds between two samples of the process trees


def estimate(
    students: int,
    shards: int,
    per_sub: float,
    setup: float,
    merge_fixed: float = 0.0,
    merge_per_sub: float = 0.0,
) -> float:
    """Wall seconds to grade ``students`` on ``shards`` identical machines that start together:
    every shard's setup, then its share of the class one ``per_sub`` after another (``per_sub``
    is measured at the shard's worker count), then, with more than one shard, one merge of the
    whole class. No queueing for runners is assumed.

    >>> estimate(100, 1, 2.0, 60.0)
    260.0
    >>> estimate(100, 4, 2.0, 60.0, merge_fixed=5.0, merge_per_sub=0.1)
    125.0
    >>> estimate(10, 256, 2.0, 60.0)  # more shards than students: one student each
    62.0
    """
    if students < 0 or shards < 1:
        raise ValueError("students >= 0 and shards >= 1")
    total = setup + math.ceil(students / shards) * per_sub
    if shards > 1:
        total += merge_fixed + merge_per_sub * students
    return total


# ---------------------------------------------------------------------------------- measuring


def _tree(root: psutil.Process, exclude: int | None = None) -> list[psutil.Process]:
    """``root``'s descendants, without ``exclude`` and its own descendants."""
    try:
        children = root.children(recursive=True)
    except psutil.Error:
        return []
    if exclude is None:
        return children
    skip = {exclude}
    with contextlib.suppress(psutil.Error):
        skip |= {p.pid for p in psutil.Process(exclude).children(recursive=True)}
    return [p for p in children if p.pid not in skip]


def _tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its live descendants, with the children they waited for."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def _rss(processes: list[psutil.Process]) -> int:
    total = 0
    for p in processes:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


class Sampler:
    """Samples, in a thread, the grader's descendants (CPU per process, RSS of the tree) and the
    emulator's tree (RSS) until stopped."""

    def __init__(self, emulator_pid: int) -> None:
        self.emulator_pid = emulator_pid
        self.me = psutil.Process()
        self.before: dict[tuple[int, float], float] = {}  #: CPU of those alive at the start
        self.cpu: dict[tuple[int, float], float] = {}
        self.grader_peak = 0
        self.emulator_peak = 0
        self.thread_cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self, into: dict[tuple[int, float], float]) -> None:
        descendants = _tree(self.me, exclude=self.emulator_pid)
        for p in descendants:
            try:
                t = p.cpu_times()
                into[(p.pid, p.create_time())] = t.user + t.system
            except psutil.Error:
                pass
        self.grader_peak = max(self.grader_peak, _rss([self.me, *descendants]))
        try:
            emulator = psutil.Process(self.emulator_pid)
            self.emulator_peak = max(self.emulator_peak, _rss([emulator, *_tree(emulator)]))
        except psutil.Error:
            pass

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            self._sample(self.cpu)
        self._sample(self.cpu)
        self.thread_cpu = time.thread_time()

    def __enter__(self) -> Sampler:
        self._sample(self.before)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def descendants_cpu(self) -> float:
        return sum(v - self.before.get(k, 0.0) for k, v in self.cpu.items())


def _rusage() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, children.ru_utime + children.ru_stime


def _disk(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


@dataclasses.dataclass
class LabCost:
    lab: str
    students: int
    workers: int
    wall: float  #: seconds of grade.main for the class
    fixed: float  #: of which class-wide set-up (the release workspace)
    grader_cpu: float  #: grader, kernels and trusted test processes
    emulator_cpu: float
    grader_peak: int  #: bytes
    emulator_peak: int
    disk: int  #: bytes of results, feedback and gradebook
    emulator_disk: int  #: bytes the emulator's state grew by
    merge_fixed: float
    merge_per_sub: float
    scores: list[tuple[str, float | None]]

    @property
    def per_sub(self) -> float:
        """Wall seconds per submission, the class-wide set-up left out."""
        return (self.wall - self.fixed) / self.students


def measure(lab_name: str, students: int, workers: int, tmp: Path, config: EmulatorConfig,
            emulator_pid: int) -> LabCost:  # fmt: skip
    lab = find(lab_name)
    classroom = tmp / lab_name / "class"
    build_class(lab, nbu.read(lab.release), students, classroom)
    (classroom / "_samples").rename(tmp / lab_name / "samples")  # not a submission
    out = tmp / lab_name / "out"
    emulator_disk = _disk(config.home)
    self0, children0 = _rusage()
    emulator0 = _tree_cpu(emulator_pid)
    started = time.perf_counter()
    with Sampler(emulator_pid) as sampler:
        run = grade.main(lab=lab_name, submissions=classroom, out=out, emulator_config=config,
                         grade_config=load(GradeConfig, "grade", workers=workers), shard=Shard(1, 1))  # fmt: skip
    wall = time.perf_counter() - started
    self1, children1 = _rusage()
    emulator_cpu = _tree_cpu(emulator_pid) - emulator0
    grader_cpu = (self1 - self0 - sampler.thread_cpu) + max(
        children1 - children0, sampler.descendants_cpu
    )
    started = time.perf_counter()
    merged = merge.main(lab=lab_name, shards=[out], out=tmp / lab_name / "merged")
    merge_wall = time.perf_counter() - started
    merge_fixed = merged.timings.get("release", 0.0)
    return LabCost(
        lab=lab_name, students=students, workers=workers, wall=wall,
        fixed=run.timings.get("release", 0.0), grader_cpu=grader_cpu, emulator_cpu=emulator_cpu,
        grader_peak=sampler.grader_peak, emulator_peak=sampler.emulator_peak, disk=_disk(out),
        emulator_disk=_disk(config.home) - emulator_disk, merge_fixed=merge_fixed,
        merge_per_sub=max(0.0, merge_wall - merge_fixed) / students,
        scores=sorted({(r.status, r.score) for r in run.results}, key=str),
    )  # fmt: skip


def grader_start() -> float:
    """Seconds for a new Python to import the grader and print the CLI's help (median of 3)."""
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import grader.cli, grader.grade"], check=True,
                       capture_output=True, cwd=ROOT)  # fmt: skip
        runs.append(time.perf_counter() - started)
    return sorted(runs)[1]


# ---------------------------------------------------------------------------------- reporting


def _minutes(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{int(seconds // 3600)} h {round(seconds % 3600 / 60):02d} min"


def _mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB"


def cost_table(costs: list[LabCost]) -> list[str]:
    lines = [
        "| Lab | Subs/min | Wall s/sub | CPU s/sub grader+kernels | CPU s/sub emulator "
        "| Peak RSS grader tree | Peak RSS emulator | Disk/sub (results, emulator) "
        "| Merge (fixed + per sub) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in costs:
        merge = f"{c.merge_fixed:.1f} s + {c.merge_per_sub:.3f} s"
        lines.append(
            f"| {c.lab} | {60 / c.per_sub:.1f} | {c.per_sub:.2f} | {c.grader_cpu / c.students:.2f} "
            f"| {c.emulator_cpu / c.students:.2f} | {_mib(c.grader_peak)} "
            f"| {_mib(c.emulator_peak)} | {c.disk / c.students / 1024:.0f} KiB, "
            f"{c.emulator_disk / c.students / 1024:.0f} KiB "
            f"| {merge} |"
        )
    return lines


def sizing_table(costs: list[LabCost], setup: float) -> list[str]:
    lines = [
        "| Students | Shards | " + " | ".join(c.lab for c in costs) + " |",
        "|---:|---:|" + "---:|" * len(costs),
    ]
    for students in CLASS_SIZES:
        for shards in SHARD_COUNTS:
            cells = [
                _minutes(estimate(students, shards, c.per_sub, setup + c.fixed, c.merge_fixed, c.merge_per_sub))
                for c in costs
            ]  # fmt: skip
            lines.append(f"| {students:,} | {shards} | " + " | ".join(cells) + " |")
    return lines


def _revision() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return done.stdout.strip()

    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    return rev + (" with uncommitted changes" if git("status", "--porcelain") else "")


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return match[1].strip() if match else "unknown CPU"


def report(costs: list[LabCost], *, setup: dict[str, float], workers: int) -> list[str]:
    total = sum(setup.values())
    memory = psutil.virtual_memory().total / 2**30
    lines = [
        f"Measured {datetime.date.today().isoformat()} at revision {_revision()} on "
        f"{os.cpu_count()} cores ({_cpu_model()}, {memory:.0f} GiB); "
        f"{costs[0].students if costs else 0} students per lab, {workers} workers, one emulator "
        f"for all labs, `python -m benchmarks.sizing --students "
        f"{costs[0].students if costs else 0} --workers {workers}`.",
        "",
        "Cost per submission (wall time with the class-wide set-up left out):",
        "",
        *cost_table(costs),
        "",
        f"Estimated wall time of a class: setup {total:.0f} s per shard ("
        + ", ".join(f"{k} {v:.1f} s" for k, v in setup.items())
        + ") plus the lab's release workspace, then ceil(students / shards) submissions one after "
        "another at the wall time above, then (with more than one shard) the merge:",
        "",
        *sizing_table(costs, total),
    ]
    return lines


def write(path: Path, lines: list[str]) -> None:
    text = path.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{path} has no {BEGIN} ... {END} block")
    block = BEGIN + "\n" + "\n".join(lines) + "\n"
    path.write_text(text[:start] + block + text[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labs", help="comma-separated (default: every lab)")
    parser.add_argument("--students", type=int, default=12, help="per lab (default 12)")
    parser.add_argument("--workers", type=int, default=2, help="per shard (default 2)")
    parser.add_argument("--ci-setup", type=float, default=CI_SETUP,
                        help=f"assumed seconds of runner setup (default {CI_SETUP:.0f})")  # fmt: skip
    parser.add_argument("--write", type=Path, help="fill the measured block of this file")
    args = parser.parse_args()
    labs = args.labs.split(",") if args.labs else available()
    for name in labs:
        find(name)  # an unknown lab fails before anything starts
    costs: list[LabCost] = []
    with tempfile.TemporaryDirectory(prefix="cloudlabs-sizing-") as tmp:
        tmp_path = Path(tmp)
        config = load(EmulatorConfig, "emulator", home=tmp_path / "emu", port=free_port())
        emulator = emu.create(config)
        started = time.perf_counter()
        try:
            emulator.start()
            emulator_start = time.perf_counter() - started
            status = emulator.status()
            if status.pid is None:
                raise SystemExit("sizing needs the embedded emulator (its pid)")
            for name in labs:
                print(f"grading {args.students} submissions of {name} ...", file=sys.stderr)
                cost = measure(name, args.students, args.workers, tmp_path, config, status.pid)
                print(f"  {cost.wall:.1f} s, {cost.scores}", file=sys.stderr)
                costs.append(cost)
        finally:
            emulator.stop()
    setup = {"CI runner and make setup (assumed)": args.ci_setup,
             "emulator start": emulator_start, "grader start": grader_start()}  # fmt: skip
    lines = report(costs, setup=setup, workers=args.workers)
    print("\n".join(lines))
    if args.write:
        write(args.write, lines)
        print(f"wrote {args.write}", file=sys.stderr)


if __name__ == "__main__":
    main()
