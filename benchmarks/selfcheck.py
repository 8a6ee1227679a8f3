"""The self-check a student runs, stage by stage, against its 3-second target.

    .venv/bin/python -m benchmarks.selfcheck [--lab storage] [--runs 3]

For the lab's blank release, partial sample and solution, side by side in one run on one emulator
(a fresh one on a free port): the median wall time of `cloudlabs check <notebook>` as a command
(a new Python each time, as in a terminal), of the check cell in a notebook (:func:`grader.check.
main` in a process that already imported the grader, as a kernel does after its first check), and
where the time goes (imports; the pipeline's own stages from ``result.timings``; the rest).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 3.0  #: seconds, for the solution with the emulator up (2 cores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="storage")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    started = time.perf_counter()
    from grader import check, samples
    from grader import emulator as emu
    from grader import notebook as nbu
    from grader.config import EmulatorConfig, load
    from grader.labs import find
    from tests.conftest import free_port

    imports = time.perf_counter() - started
    lab = find(args.lab)
    release = nbu.read(lab.release)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        samples.write_class(lab, release, root)
        config = load(EmulatorConfig, "emulator", home=root / "emulator", port=free_port())
        env = {**os.environ, "CLOUDLABS_EMULATOR_PORT": str(config.port),
               "CLOUDLABS_EMULATOR_HOME": str(config.home)}  # fmt: skip
        rows = []
        with emu.running(config):
            for kind in ("blank", "partial", "solution"):
                notebook = root / f"{kind}.ipynb"
                if not notebook.exists():
                    continue
                check.main(target=str(notebook), emulator_config=config)  # the per-lab cache
                command, cell, stages = [], [], []
                for _ in range(args.runs):
                    t0 = time.perf_counter()
                    subprocess.run([sys.executable, "-m", "grader", "check", str(notebook)],
                                   env=env, check=True, capture_output=True)  # fmt: skip
                    command.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    result = check.main(target=str(notebook), emulator_config=config)
                    cell.append(time.perf_counter() - t0)
                    stages.append(dict(result.timings))
                rows.append((kind, result.score, command, cell, stages))
    print(f"self-check of the {lab.name} lab, {os.cpu_count()} cores, median of {args.runs} runs")
    print(
        f"  importing the grader (paid once per kernel, every time by the command): {imports:.2f} s"
    )
    for kind, score, command, cell, stages in rows:
        med = {k: statistics.median(s.get(k, 0.0) for s in stages) for k in stages[0]}
        in_cell = statistics.median(cell)
        # "kernel start" and "tests" are parts of "execute"
        rest = in_cell - sum(v for k, v in med.items() if k not in {"kernel start", "tests"})
        parts = ", ".join(f"{k} {v:.2f}" for k, v in med.items())
        print(
            f"  {kind:8} ({score:g} points): command {statistics.median(command):5.2f} s "
            f"({statistics.median(command) / TARGET:.2f}x target), check cell {in_cell:5.2f} s "
            f"({in_cell / TARGET:.2f}x target) = {parts}, other {rest:.2f}"
        )


if __name__ == "__main__":
    main()
