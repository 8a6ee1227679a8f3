"""``make demo``: start the embedded emulator, grade the sample submissions of every lab, print
the class tables and where the feedback and plots are."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from grader import grade, samples
from grader import labs as lab_index
from grader import notebook as nbu
from grader.config import LateConfig
from grader.export import class_table
from grader.labs import find
from grader.results import GRADED


def main(
    *,
    out: Path = Path(".cloudlabs/demo"),
    labs: list[str] | None = None,
    workers: int | None = None,
    echo: Callable[[str], None] = print,
) -> bool:
    """Grade the samples of ``labs`` (default: all); True when every score is the expected one."""
    out = out.resolve()
    all_match = True
    for name in labs or lab_index.available():
        lab = find(name)
        release = nbu.read(lab.release) if lab.release.exists() else None
        if release is None:
            echo(f"{name}: no student release in labs/ — run `make release`")
            all_match = False
            continue
        submissions = out / "submissions" / name
        expected = samples.write_class(lab, release, submissions)
        echo(f"\n== {name}: grading {len(expected)} sample submissions ==")
        run = grade.main(
            lab=name,
            submissions=submissions,
            out=out / "grades" / name,
            workers=workers,
            force=True,
            late_config=LateConfig(),  # samples have no due date, whatever CLOUDLABS_LATE_* say
        )
        echo(class_table(run.lab, run.results))
        for result in run.results:
            want = expected.get(result.student)
            ok = want is not None and abs(result.score - want) < 1e-6 and result.status == GRADED
            all_match &= ok
            echo(
                f"  {result.student:10} {result.score:g}/{result.max_score:g} expected {want:g} {'ok' if ok else 'MISMATCH'}"
            )
        root = run.workspace.root
        echo(f"  feedback: {root / 'feedback'}/<student>/{name}/{name}.html")
        echo(f"  summary:  {root / 'summary.html'} (plot {root / 'summary.png'})")
    return all_match
