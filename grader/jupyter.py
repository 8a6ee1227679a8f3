"""``cloudlabs lab``: the emulator, then JupyterLab on the course, opened on the start-here notebook.

Students get a student mode: nbgrader's instructor tools (formgrader, create assignment, its
menus and its server extensions) are switched off through a Jupyter configuration directory that
this command writes and puts first on ``JUPYTER_CONFIG_PATH``, and the folders students do not
need are left out of the file browser. ``instructor=True`` leaves nbgrader as installed.

The Jupyter server, and so every kernel it starts, gets the running emulator's endpoint in
``AWS_ENDPOINT_URL``: the parameters cell of every notebook reads it, so notebooks reach the
emulator this command runs, on whatever port, without the student editing anything."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from grader import ROOT
from grader.config import EmulatorConfig, load
from grader.emulator import commands as emulator_commands

START = "course/00-start-here.ipynb"
#: nbgrader's server extensions: off in student mode.
NBGRADER_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.validate_assignment",
    "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.course_list",
)
#: nbgrader's JupyterLab extension (menu, formgrader, create-assignment...): off in student mode.
NBGRADER_LAB_EXTENSION = "@jupyter/nbgrader"
#: Names the student's file browser does not list (the course's own machinery).
HIDDEN = ("solutions", "samples", "tests", "grader", "emulator", "benchmarks", "scripts",
          "requirements", "cloudlabs-grades", "tests-artifacts", "__pycache__", "*.pyc", "*~",
          "*.egg-info", "Makefile", "pyproject.toml", "nbgrader_config.py")  # fmt: skip


#: On the class hub students keep nbgrader's assignment list (fetch and submit through the
#: exchange) and lose its instructor parts.
EXCHANGE_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.course_list",
)
INSTRUCTOR_PLUGINS = ("formgrader", "create-assignment", "course-list", "menu")
#: nbgrader's exchange inside a student's server on a class hub (its Exchange.root)
EXCHANGE_ROOT = "/srv/nbgrader/exchange"


def student_config(
    directory: Path, *, exchange_course: str | None = None, exchange_root: str = EXCHANGE_ROOT
) -> Path:
    """Write the student mode's Jupyter configuration into ``directory``; returns it. With
    ``exchange_course`` (a class hub), nbgrader's assignment list stays, on the exchange at
    ``exchange_root``: students fetch and submit."""
    (directory / "labconfig").mkdir(parents=True, exist_ok=True)
    extensions = dict.fromkeys(NBGRADER_SERVER_EXTENSIONS, False)
    if exchange_course:
        extensions |= dict.fromkeys(EXCHANGE_SERVER_EXTENSIONS, True)
        (directory / "nbgrader_config.py").write_text(
            "c = get_config()  # noqa: F821\n"
            f"c.Exchange.root = {exchange_root!r}\n"
            f"c.CourseDirectory.course_id = {exchange_course!r}\n"
        )
    server = {
        "ServerApp": {"jpserver_extensions": extensions},
        "ContentsManager": {"hide_globs": list(HIDDEN)},
    }
    (directory / "jupyter_server_config.json").write_text(json.dumps(server, indent=2))
    disabled = (
        {f"{NBGRADER_LAB_EXTENSION}:{p}": True for p in INSTRUCTOR_PLUGINS}
        if exchange_course
        else {NBGRADER_LAB_EXTENSION: True}
    )
    page = {"disabledExtensions": disabled}
    (directory / "labconfig" / "page_config.json").write_text(json.dumps(page, indent=2))
    return directory


def argv_and_env(
    *,
    endpoint_url: str,
    lab_port: int | None = None,
    open_browser: bool = True,
    instructor: bool = False,
    config: EmulatorConfig,
) -> tuple[list[str], dict[str, str]]:
    """JupyterLab's command line and environment (separate from :func:`main` to be tested)."""
    argv = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        f"--ServerApp.root_dir={ROOT}",
        START,
        f"--LabApp.default_url=/lab/tree/{START}",
    ]  # also the URL it prints
    if lab_port:
        argv.append(f"--ServerApp.port={lab_port}")
    if not open_browser:
        argv.append("--no-browser")
    if os.geteuid() == 0:  # containers and JupyterHub pods often run as root
        argv.append("--allow-root")
    env = dict(os.environ)
    env["AWS_ENDPOINT_URL"] = endpoint_url
    env["CLOUDLABS_EMULATOR_PORT"] = str(config.port)  # `cloudlabs check` in a kernel finds it
    env["CLOUDLABS_EMULATOR_HOME"] = str(config.home)
    if not instructor:
        mode = student_config(config.home / "jupyter" / "student")
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
            p for p in (str(mode), os.environ.get("JUPYTER_CONFIG_PATH", "")) if p
        )
    return argv, env


def main(
    *,
    lab_port: int | None = None,
    emulator_port: int | None = None,
    open_browser: bool = True,
    instructor: bool = False,
) -> None:
    """Start the emulator (if needed), then replace this process with JupyterLab."""
    status = emulator_commands.up(port=emulator_port)
    config = load(EmulatorConfig, "emulator", port=emulator_port)
    print(f"emulator running at {status.endpoint_url}; stop it with `cloudlabs down`", flush=True)
    argv, env = argv_and_env(
        endpoint_url=status.endpoint_url, lab_port=lab_port, open_browser=open_browser,
        instructor=instructor, config=config,
    )  # fmt: skip
    os.chdir(ROOT)  # nbgrader_config.py here makes formgrader use solutions/ and labs/
    os.execve(sys.executable, argv, env)
