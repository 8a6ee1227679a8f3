"""``cloudlabs release``: make labs/ (the student release) from solutions/ with nbgrader, or with
``check`` report which labs are stale (CI runs the check)."""

from __future__ import annotations

import filecmp
import shutil
import tempfile
from pathlib import Path

from grader import labs as lab_index
from grader import nbgrader_glue


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
) -> list[str]:
    """Regenerate (or with ``check`` only compare) the release of each lab; returns the labs
    whose committed release differed from a fresh one."""
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
    return stale
