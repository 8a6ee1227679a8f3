"""The browser tests' machinery: ``cloudlabs lab`` started as a student starts it (on the session's
emulator), headless Chromium driven by Playwright, and screenshots of the step that failed.

Chromium is Debian's (``apt-get install chromium``, done by ``make setup`` as root); Playwright
launches it by path and never downloads a browser. Without either the tests are skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from grader import ROOT
from tests.conftest import free_port

CLOUDLABS = Path(sys.executable).with_name("cloudlabs")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]  # fmt: skip
ARTIFACTS = Path(os.environ.get("CLOUDLABS_TEST_ARTIFACTS") or ROOT / "tests-artifacts") / "browser"
SERVER_TIMEOUT = 120.0  # seconds for `cloudlabs lab` to answer (JupyterLab on 2 slow cores)


def chromium() -> str:
    """Debian's chromium, or skip the test saying how to install it (and Playwright)."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        pytest.skip(
            "chromium is not installed: `apt-get install chromium` (or `make setup` as root)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed: run `make setup` (the dev extra pins it)")
    return path


# -- `cloudlabs lab` ---------------------------------------------------------------------------


@dataclass
class Lab:
    """A running ``cloudlabs lab``: its port, token and log."""

    port: int
    token: str
    log: Path

    def url(self, path: str = "lab") -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"


@contextlib.contextmanager
def student_lab(emulator, tmp_path: Path) -> Iterator[Lab]:
    """``cloudlabs lab --lab-port PORT --no-browser`` on the session's emulator (so it starts
    none); its whole process tree, kernels included, is ended afterwards."""
    lab = Lab(port=free_port(), token=secrets.token_hex(16), log=tmp_path / "cloudlabs-lab.log")
    env = {
        **os.environ,
        "JUPYTER_TOKEN": lab.token,
        "CLOUDLABS_EMULATOR_PORT": str(emulator.config.port),
        "CLOUDLABS_EMULATOR_HOME": str(emulator.config.home),
        # Fresh JupyterLab state: connection files and the saved layout live under tmp_path.
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
    }
    command = [str(CLOUDLABS), "lab", "--lab-port", str(lab.port), "--no-browser"]
    with lab.log.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for_server(lab, process)
        yield lab
    finally:
        end_tree(process)


def wait_for_server(lab: Lab, process: subprocess.Popen, timeout: float = SERVER_TIMEOUT) -> None:
    """Poll JupyterLab's /api/status until it answers; fail early when the command ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`cloudlabs lab` exited ({process.returncode}):\n{lab.log_tail()}")
        try:
            with urllib.request.urlopen(lab.url("api/status"), timeout=5) as response:
                json.load(response)
                return
        except (OSError, ValueError):
            time.sleep(0.5)  # the next poll; nothing else to wait on before the port opens
    pytest.fail(f"`cloudlabs lab` did not answer within {timeout:.0f} s:\n{lab.log_tail()}")


def end_tree(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """End ``process`` and every descendant: children first, SIGTERM, then SIGKILL for what is
    still there after ``timeout`` s."""
    try:
        parent = psutil.Process(process.pid)
        tree = [*reversed(parent.children(recursive=True)), parent]
    except psutil.Error:
        tree = []
    for member in tree:
        with contextlib.suppress(psutil.Error):
            member.terminate()
    _, alive = psutil.wait_procs(tree, timeout=timeout)
    for member in alive:
        with contextlib.suppress(psutil.Error):
            member.kill()
    psutil.wait_procs(alive, timeout=10)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


@contextlib.contextmanager
def unchanged(*paths: Path, typed: str = "") -> Iterator[None]:
    """Put back the checkout's notebooks in ``paths`` as they were, and the checkpoints JupyterLab
    makes beside them: a student's session saves into labs/ and course/ (Ctrl+S, autosave). A
    version whose cells someone else changed meanwhile (not to ``typed``) is left alone."""
    before = {path: path.read_bytes() for path in paths}
    checkpoints = {path.parent / ".ipynb_checkpoints" for path in paths}
    fresh = {directory for directory in checkpoints if not directory.exists()}
    try:
        yield
    finally:
        for path, content in before.items():
            with contextlib.suppress(OSError):
                now = path.read_bytes()
                if now != content and _only_session_changes(content, now, typed):
                    path.write_bytes(content)
        for directory in fresh:
            shutil.rmtree(directory, ignore_errors=True)


def _only_session_changes(before: bytes, now: bytes, typed: str) -> bool:
    """Whether ``now`` has ``before``'s cells, but for outputs, metadata and cells holding
    ``typed``."""

    def sources(content: bytes) -> list[str]:
        return ["".join(cell["source"]) for cell in json.loads(content)["cells"]]

    try:
        old, new = sources(before), sources(now)
    except (ValueError, KeyError, TypeError):
        return False
    return len(old) == len(new) and all(
        a == b or (typed and typed in b) for a, b in zip(old, new, strict=True)
    )


# -- Chromium ----------------------------------------------------------------------------------


@contextlib.contextmanager
def chromium_page(executable: str, profile: Path) -> Iterator:
    """A page of headless Chromium with a fresh profile; the browser and Playwright's driver end
    afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )  # fmt: skip
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(60_000)
            yield page
        finally:
            context.close()


class Steps:
    """``with steps("name"):`` runs one step; when it fails, a screenshot of the page goes to
    ``ARTIFACTS/<name>.png`` and the failure says where (with the end of the lab's log)."""

    def __init__(self, page, lab: Lab, directory: Path = ARTIFACTS) -> None:
        self.page, self.lab, self.directory = page, lab, directory

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            self.directory.mkdir(parents=True, exist_ok=True)
            shot = self.directory / f"{name}.png"
            try:
                self.page.screenshot(path=str(shot), full_page=True)
            except Exception as shot_error:
                shot = f"none ({shot_error})"
            raise AssertionError(
                f"browser step {name!r} failed: {exc}\nscreenshot: {shot}\n"
                f"`cloudlabs lab` log ({self.lab.log}), last lines:\n{self.lab.log_tail(15)}"
            ) from exc


@pytest.fixture
def artifacts() -> Path:
    """The screenshots directory, emptied of a previous run's screenshots."""
    for stale in ARTIFACTS.glob("*.png"):
        stale.unlink()
    return ARTIFACTS
