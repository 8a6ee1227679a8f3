"""``cloudlabs check [<lab> | <notebook>]``: a student grades their own saved copy.

The notebook runs in a fresh account of the running emulator with the tests students can see (the
hidden ones stay hidden), then the state checks run. The result is a table per exercise with
hints for what failed. Nothing is recorded anywhere but a temporary workspace.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from functools import partial
from pathlib import Path

import nbformat

from grader import emulator as emu
from grader import html as pages
from grader import labs as lab_index
from grader import notebook as nbu
from grader import summary
from grader.collect import Submission
from grader.config import EmulatorConfig, GradeConfig, load
from grader.errors import CloudlabsError, EmulatorError
from grader.kernels import KernelPool
from grader.labs import Lab, find
from grader.pipeline import Context, grade, new_kernel
from grader.results import SubmissionResult
from grader.trusted import TestPool
from grader.workspace import Workspace, prepare


def resolve(
    target: str | None,
    *,
    source_dir: Path = lab_index.SOURCE_DIR,
    release_dir: Path = lab_index.RELEASE_DIR,
) -> tuple[Lab, Path]:
    """The lab and notebook meant by ``target``: a lab name, a notebook path, or (None) the only
    lab notebook in the current directory."""
    if target is None:
        here = [p for p in Path.cwd().glob("*.ipynb") if p.stem in lab_index.available(source_dir)]
        if len(here) != 1:
            raise CloudlabsError(
                "which lab?", fix="run `cloudlabs check <lab>` or `cloudlabs check <notebook>`"
            )
        target = str(here[0])
    path = Path(target)
    if path.suffix == ".ipynb":
        if not path.exists():
            raise CloudlabsError(f"no notebook at {path}")
        names = lab_index.available(source_dir)
        if path.stem in names:
            return lab_index.find(path.stem, source_dir=source_dir, release_dir=release_dir), path
        # Labs share grade ids, so recognise the lab by the text of its cells.
        mine = {nbu.normalized_source(c.source) for c in nbu.read(path).cells if c.source.strip()}
        best, overlap = None, 0
        for name in names:
            lab = lab_index.find(name, source_dir=source_dir, release_dir=release_dir)
            common = len(mine & {nbu.normalized_source(c.source) for c in lab.notebook.cells})
            if common > overlap:
                best, overlap = lab, common
        if best is None:
            raise CloudlabsError(f"{path} is not one of the labs ({', '.join(names)})")
        return best, path
    lab = lab_index.find(target, source_dir=source_dir, release_dir=release_dir)
    return lab, lab.release


def main(
    *,
    target: str | None = None,
    source_dir: Path = lab_index.SOURCE_DIR,
    release_dir: Path = lab_index.RELEASE_DIR,
    emulator_config: EmulatorConfig | None = None,
    grade_config: GradeConfig | None = None,
) -> SubmissionResult:
    lab, notebook = resolve(target, source_dir=source_dir, release_dir=release_dir)
    emulator = emu.create(emulator_config)
    if not emulator.status().running:
        raise EmulatorError("the emulator is not running", fix="start it with `cloudlabs up`")
    config = grade_config or load(GradeConfig, "grade", sandbox="none")
    workspace, release = _cached_workspace(lab, emulator.config.home / "check")
    base = Context(
        lab=lab,
        release=release,
        workspace=workspace,
        endpoint_url=emulator.endpoint_url,
        config=config,
        visible_tests_only=True,
        region=emulator.config.region,
        emulator=emulator,
        record=False,
    )
    # The trusted test process and the kernel boot (their own processes) while this one reads
    # the notebook and imports nbgrader.
    with TestPool() as tests, KernelPool(partial(new_kernel, base), ahead=1, total=1) as kernels:
        tests.warm(1)
        kernels.fill()
        result = grade(
            Submission("me", notebook), dataclasses.replace(base, tests=tests, kernels=kernels)
        )
    # Test cells whose every assert is hidden pass trivially here: leave them to the instructor.
    hidden = {
        nbu.grade_id(c) for c in release.cells if nbu.is_test(c) and not nbu.has_code(c.source)
    }
    result.cells = [c for c in result.cells if c.grade_id not in hidden]
    result.add_up()
    result.max_score = sum(c.max_points for c in result.cells)
    if hidden:
        result.notes.append(
            f"{len(hidden)} test cells have only hidden tests; your instructor grades them"
        )
    return result


def _cached_workspace(lab: Lab, cache: Path):
    """The lab's release and gradebook, made once per version of the lab (nbgrader's
    generate_assignment takes seconds; a self-check should not)."""
    root = cache / f"{lab.name}-{lab.digest}"
    release_path = root / "release.ipynb"
    if release_path.exists():
        return Workspace(root), nbu.read(release_path)
    shutil.rmtree(root, ignore_errors=True)
    workspace, release = prepare(lab, root)
    nbformat.write(release, str(release_path))
    return workspace, release


def report(result: SubmissionResult, lab: Lab) -> str:
    """The table a student reads in a terminal."""
    return summary.text(
        result, lab, heading=f"{lab.name}: your self-check (visible tests and state checks)"
    )


@dataclasses.dataclass
class Shown:
    """A self-check as a notebook shows it: an HTML table (the same text in a terminal)."""

    result: SubmissionResult
    lab: Lab

    def _repr_html_(self) -> str:
        notes = pages.render("notes.html.j2", notes=summary.notes(self.result))
        return summary.html_table(self.result, self.lab) + notes

    def __repr__(self) -> str:
        return report(self.result, self.lab)


@dataclasses.dataclass
class Answered:
    """A self-check graded by the class hub's service (:mod:`grader.hub_check`)."""

    text: str
    html: str

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


def show(lab: str) -> Shown | Answered:
    """The check cell at the end of a lab: grade the saved notebook this kernel belongs to (or,
    when the kernel does not know its notebook, the lab's own copy in labs/). On the class hub
    (``CLOUDLABS_CHECK_URL``) the hub's self-check service grades it."""
    session = os.environ.get("JPY_SESSION_NAME", "")
    path = Path(session) if session.endswith(".ipynb") else None
    service = os.environ.get("CLOUDLABS_CHECK_URL")
    if service:
        return _ask_the_hub(service, lab, path if path and path.is_file() else Path(f"{lab}.ipynb"))
    target = str(path) if path and path.is_file() else lab
    result = main(target=target)
    return Shown(result, find(result.lab))


def _ask_the_hub(service: str, lab: str, path: Path) -> Answered:
    import requests

    if not path.is_file():
        raise CloudlabsError(f"no saved notebook {path} to check",
                             fix="save the lab (Ctrl+S) and run this cell in it")  # fmt: skip
    token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    try:
        answer = requests.post(f"{service}/{lab}", data=path.read_bytes(), timeout=900,
                               headers={"Authorization": f"token {token}"})  # fmt: skip
        body = answer.json()
    except (requests.RequestException, ValueError) as error:
        raise CloudlabsError(f"the hub's self-check did not answer: {error}",
                             fix="try again in a minute; tell your instructor if it persists") from error  # fmt: skip
    if answer.status_code != 200:
        raise CloudlabsError(
            f"the hub's self-check refused: {body.get('error', answer.status_code)}"
        )
    return Answered(body["text"], body["html"])
