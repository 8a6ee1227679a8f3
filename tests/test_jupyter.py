"""`cloudlabs lab`: a real Jupyter server on the course, in student or instructor mode, whose
kernels reach the emulator it runs."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil
import pytest

from grader import jupyter
from tests.conftest import free_port


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""
    except OSError:  # not listening yet
        return 0, ""


@pytest.fixture
def lab_server(emulator, tmp_path):
    """Start `cloudlabs lab` (student mode unless the test asks) on the session's emulator."""
    started = []

    def start(*extra: str) -> str:
        port, token = free_port(), secrets.token_hex(8)
        env = {
            **os.environ,
            "JUPYTER_TOKEN": token,
            "CLOUDLABS_EMULATOR_PORT": str(emulator.config.port),
            "CLOUDLABS_EMULATOR_HOME": str(emulator.config.home),
            "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        }
        argv = [sys.executable, "-m", "grader", "lab", "--lab-port", str(port), "--no-browser"]
        process = subprocess.Popen([*argv, *extra], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        started.append(process)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while _get(f"{base}/api/status?token={token}")[0] != 200:
            assert process.poll() is None, "cloudlabs lab exited"
            assert time.monotonic() < deadline, "JupyterLab did not answer in 120 s"
            time.sleep(0.2)
        return f"{base}/%s?token={token}"

    yield start
    for process in started:
        tree = [*psutil.Process(process.pid).children(recursive=True), psutil.Process(process.pid)]
        for p in tree:
            p.terminate()
        _, alive = psutil.wait_procs(tree, timeout=10)
        for p in alive:
            p.kill()


def test_student_mode_shows_the_course_without_instructor_tools(lab_server):
    url = lab_server()
    status, body = _get(url % "api/contents")
    names = {item["name"] for item in json.loads(body)["content"]}
    assert {"course", "labs", "README.md"} <= names
    assert not names & {"solutions", "samples", "grader", "tests"}
    status, body = _get(url % "api/contents/course/00-start-here.ipynb")
    assert status == 200
    assert _get(url % "formgrader")[0] == 404  # nbgrader's server extension is off
    status, page = _get(url % "lab")
    assert status == 200 and jupyter.NBGRADER_LAB_EXTENSION in page  # listed as disabled
    assert '"disabledExtensions": ["@jupyter/nbgrader"]' in page.replace("'", '"')


def test_instructor_mode_keeps_formgrader(lab_server):
    url = lab_server("--instructor")
    assert _get(url % "formgrader")[0] == 200
    _, body = _get(url % "api/contents")
    assert "solutions" in {item["name"] for item in json.loads(body)["content"]}


def test_kernels_get_the_emulator_that_cloudlabs_runs(emulator):
    config = emulator.config
    argv, env = jupyter.argv_and_env(endpoint_url=emulator.endpoint_url, config=config,
                                     lab_port=9999, open_browser=False)  # fmt: skip
    assert env["AWS_ENDPOINT_URL"] == emulator.endpoint_url
    assert env["CLOUDLABS_EMULATOR_PORT"] == str(config.port)
    assert "--ServerApp.port=9999" in argv and "--no-browser" in argv and jupyter.START in argv
    # Every notebook's parameters cell reads it: run the storage lab's with that environment.
    from grader import labs

    lab = labs.find("storage")
    cell = next(c for c in lab.notebook.cells if "parameters" in c.metadata.get("tags", []))
    out = subprocess.run([sys.executable, "-c", cell.source + "\nprint(endpoint_url)"], env=env,
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert out.stdout.strip() == emulator.endpoint_url


def test_setup_says_in_one_line_where_no_emulator_answers(emulator):
    from grader.reach import NoEmulator, require_emulator

    require_emulator(emulator.endpoint_url)  # answers: nothing happens
    nowhere = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(NoEmulator) as info:
        require_emulator(nowhere)
    lines = info.value._render_traceback_()
    assert len(lines) == 1 and nowhere in lines[0] and "cloudlabs up" in lines[0]
