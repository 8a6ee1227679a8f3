"""``cloudlabs release``: make labs/ (the student release) from solutions/ with nbgrader, or with
``check`` report which labs are stale (CI runs the check); and course/bank, the question bank's
release, from solutions/bank."""

from __future__ import annotations

import filecmp
import shutil
import tempfile
from pathlib import Path

from grader import bank, nbgrader_glue
from grader import labs as lab_index


def _same_tree(a: Path, b: Path) -> bool:
    if not b.exists():
        return False
    comparison = filecmp.dircmp(a, b)
    if comparison.left_only or comparison.right_only or comparison.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, comparison.common_files, shallow=False)
    if mismatch or errors:
        return False
    return all(_same_tree(a / d, b / d) for d in comparison.common_dirs)


def main(
    *,
    labs: list[str] | None = None,
    check: bool = False,
    source_dir: Path = lab_index.SOURCE_DIR,
    release_dir: Path = lab_index.RELEASE_DIR,
    bank_dir: Path = bank.RELEASE_DIR,
) -> list[str]:
    """Regenerate (or with ``check`` only compare) the release of each lab, and of the question
    bank when no lab is named (``course/bank``, :mod:`grader.bank`); returns the labs (and
    ``bank``) whose committed release differed from a fresh one."""
    stale = []
    names = labs or lab_index.available(source_dir)
    with tempfile.TemporaryDirectory(prefix="cloudlabs-release-") as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'gradebook.db'}"
        for name in names:
            fresh = nbgrader_glue.generate_release(
                name, source_dir=source_dir, release_dir=Path(tmp) / "release", db_url=db_url
            )
            target = release_dir / name
            if _same_tree(fresh, target):
                continue
            stale.append(name)
            if not check:
                shutil.rmtree(target, ignore_errors=True)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copytree(fresh, target)
        if labs is None and (source_dir / "bank").is_dir():
            fresh = Path(tmp) / "bank"
            bank.release(source_dir=source_dir / "bank", out_dir=fresh)
            if not _same_tree(fresh, bank_dir):
                stale.append("bank")
                if not check:
                    shutil.rmtree(bank_dir, ignore_errors=True)
                    shutil.copytree(fresh, bank_dir)
    return stale
