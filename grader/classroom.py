"""`make classroom-demo`: a class on the hub, end to end on loopback, with real parts only.

A local LTI 1.3 platform (:mod:`grader.lti_platform`) plays the LMS. The class hub
(:mod:`grader.hub`) runs with its proxy, its shared emulator and bubblewrap. Then:

1. the instructor and each student launch the hub from the LMS (LTI 1.3: OIDC login, signed
   id_token), and each gets a server in a sandbox and an account of their own;
2. the instructor releases the lab to nbgrader's exchange (:mod:`grader.exchange`);
3. each student, in a kernel of their own server, runs ``nbgrader fetch_assignment``, solves
   (one from the lab's solution, one from the partial sample), and ``nbgrader submit``;
4. the instructor collects, grades with ``cloudlabs grade``'s API on the class's emulator, and
   pushes the grades to the LMS over LTI Advantage (AGS);
5. the gradebook is printed as the platform received it, with the memory each part took, and
   everything started is stopped.

:func:`running_hub` and :meth:`Hub.run_code` are what tests/grader/test_hub.py uses too."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import psutil

from grader import ROOT, samples
from grader import labs as lab_index
from grader import notebook as nbu
from grader.config import EmulatorConfig, GradeConfig, LtiConfig
from grader.errors import CloudlabsError, HubError, SetupError

PROXY = ROOT / "deploy" / "jupyterhub" / "node_modules" / ".bin" / "configurable-http-proxy"
JUPYTERHUB = Path(sys.executable).parent / "jupyterhub"
MiB = 2**20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def missing_parts() -> str:
    """Why the class hub cannot run here ("" when it can)."""
    if not PROXY.exists() or not JUPYTERHUB.exists():
        return "the class hub is not installed"
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed"
    return ""


@dataclasses.dataclass
class Hub:
    """A running class hub, driven through its API with a service token."""

    url: str
    token: str
    data: Path
    process: subprocess.Popen
    log: Path
    emulator_port: int

    def api(self, method: str, path: str, body: dict | None = None) -> dict | list | None:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, data=json.dumps(body).encode() if body else None,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None

    def wait(self, what: str, ready: Callable[[], object], seconds: float = 180) -> None:
        """Until ``ready()`` (readiness polling, bounded: the hub and servers start at their pace)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HubError(f"the hub exited ({self.process.returncode}) before "
                                          f"{what}:\n{self.log.read_text()[-4000:]}")  # fmt: skip
            if ready():
                return
            time.sleep(0.5)
        raise HubError(f"{what} did not happen in {seconds} s:\n"
                                  f"{self.log.read_text()[-4000:]}")  # fmt: skip

    def start_server(self, user: str) -> None:
        self.api("POST", f"/hub/api/users/{user}/server")
        self.wait(f"{user}'s server started",
                  lambda: self.api("GET", f"/hub/api/users/{user}")["servers"].get("", {})
                  .get("ready"))  # fmt: skip

    def run_code(self, user: str, code: str, *, then: Callable[[], object] | None = None) -> str:
        """Run ``code`` in a new kernel of ``user``'s server, through the proxy; its output.
        ``then`` is called after the code ran, while the kernel is still up."""
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        kernel = self.api("POST", f"/user/{user}/api/kernels", {"name": "python3"})["id"]

        async def execute() -> str:
            url = self.url.replace("http", "ws", 1) + f"/user/{user}/api/kernels/{kernel}/channels"
            socket_ = await websocket_connect(
                HTTPRequest(url, headers={"Authorization": f"token {self.token}"})
            )
            msg_id = uuid.uuid4().hex
            socket_.write_message(json.dumps({
                "header": {"msg_id": msg_id, "msg_type": "execute_request",
                           "session": uuid.uuid4().hex, "username": "", "version": "5.3"},
                "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                "content": {"code": code, "silent": False, "store_history": False,
                            "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
            }))  # fmt: skip
            out = []
            while True:
                message = json.loads(await asyncio.wait_for(socket_.read_message(), 300))
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = message["msg_type"], message["content"]
                if kind == "stream":
                    out.append(content["text"])
                elif kind == "error":
                    out.append(f"{content['ename']}: {content['evalue']}")
                elif kind == "status" and content["execution_state"] == "idle":
                    socket_.close()
                    return "".join(out)

        try:
            out = asyncio.run(execute())
            if then is not None:
                then()
            return out
        finally:
            self.api("DELETE", f"/user/{user}/api/kernels/{kernel}")

    def server_processes(self, user: str) -> list[psutil.Process]:
        """``user``'s server: the sandbox the hub started for their home, and all inside it."""
        home = str(self.data / "homes" / user)
        for proc in psutil.Process(self.process.pid).children():
            cmdline = proc.cmdline()
            if home in cmdline:  # grader.sandbox execs bwrap, which binds the home
                return [proc, *proc.children(recursive=True)]
        return []

    def emulator_processes(self) -> list[psutil.Process]:
        hub = psutil.Process(self.process.pid)
        for proc in hub.children(recursive=True):
            if (proc.cmdline() or [])[-2:] == ["grader.hub", "emulator"]:
                return [proc, *proc.children(recursive=True)]
        return []


@contextlib.contextmanager
def running_hub(root: Path, *, env: dict[str, str] | None = None) -> Iterator[Hub]:
    """The class hub with its data in ``root``, on free loopback ports, until the block ends;
    then nothing it started is left running (else :class:`HubError`)."""
    why = missing_parts()
    if why:
        raise SetupError(why, fix="run `make classroom`")
    token = secrets.token_hex(16)
    config = root / "jupyterhub_config.py"
    config.write_text(
        "from grader.hub import configure\n"
        "c = get_config()  # noqa: F821\n"
        "configure(c)\n"
        f"c.JupyterHub.services.append({{'name': 'driver', 'api_token': {token!r}}})\n"
        "c.JupyterHub.load_roles = [{'name': 'driver', 'services': ['driver'], 'scopes': "
        "['admin:users', 'admin:servers', 'access:servers', 'read:users']}]\n"
    )
    port, emulator_port = free_port(), free_port()
    env = {**os.environ, "CLOUDLABS_HUB_DATA": str(root / "data"), "CLOUDLABS_HUB_PORT": str(port),
           "CLOUDLABS_HUB_EMULATOR_PORT": str(emulator_port),
           "CLOUDLABS_HUB_HUB_API_PORT": str(free_port()),
           "CLOUDLABS_HUB_CHECK_PORT": str(free_port()),
           "CLOUDLABS_HUB_PROXY_API_PORT": str(free_port()), **(env or {})}  # fmt: skip
    log = root / "hub.log"
    with log.open("w") as out:
        process = subprocess.Popen([str(JUPYTERHUB), "-f", str(config)], cwd=root, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    port, emulator_port = int(env["CLOUDLABS_HUB_PORT"]), int(env["CLOUDLABS_HUB_EMULATOR_PORT"])
    hub = Hub(f"http://127.0.0.1:{port}", token, root / "data", process, log, emulator_port)

    def answers() -> bool:
        try:
            return hub.api("GET", "/hub/api/") is not None
        except (OSError, urllib.error.URLError):
            return False

    try:
        hub.wait("the hub answered", answers)
        yield hub
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    left = [p for p in psutil.process_iter(["cmdline", "cwd"])
            if str(root) in " ".join(p.info["cmdline"] or []) or str(root) in (p.info["cwd"] or "")]  # fmt: skip
    if left:
        raise HubError(f"still running after the hub: {[p.info['cmdline'] for p in left]}")


class _Form(HTMLParser):
    """The platform's auto-submitting launch form: its action and hidden fields."""

    def __init__(self) -> None:
        super().__init__()
        self.action, self.fields = "", {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.action = values.get("action") or ""
        elif tag == "input" and values.get("name"):
            self.fields[values["name"]] = values.get("value") or ""


def launch(platform_url: str, user_id: str,
           tamper: Callable[[dict[str, str]], dict[str, str]] | None = None) -> tuple[int, str]:  # fmt: skip
    """What a browser does when ``user_id`` clicks the tool's link in the LMS: the platform's
    login initiation, the hub's redirect to the platform's authorization endpoint, and the
    auto-submitted id_token posted back to the hub. The hub's answer: status and Location."""
    import requests

    with requests.Session() as browser:
        page = browser.get(f"{platform_url}/launch", params={"user": user_id}, timeout=30)
        page.raise_for_status()
        form = _Form()
        form.feed(page.text)
        if not form.action or "id_token" not in form.fields:
            raise HubError(f"the platform sent no launch form: {page.text[:300]}")
        fields = tamper(dict(form.fields)) if tamper else form.fields  # (tests forge launches)
        answer = browser.post(form.action, data=fields, allow_redirects=False, timeout=30)
        return answer.status_code, answer.headers.get("Location", "")


@dataclasses.dataclass(frozen=True)
class Memory:
    """Resident memory of a set of processes, in MiB: RSS (shared pages counted in each) and
    USS (pages no other process shares: what one more of them costs)."""

    rss: float
    uss: float
    processes: int

    @classmethod
    def of(cls, procs: list[psutil.Process]) -> Memory:
        rss = uss = 0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                info = proc.memory_full_info()
                rss, uss = rss + info.rss, uss + info.uss
        return cls(round(rss / MiB, 1), round(uss / MiB, 1), len(procs))


@dataclasses.dataclass
class Report:
    lab: str
    expected: dict[str, float]  #: user id → the score their sample should earn
    gradebook: dict[str, dict]  #: user id → the score the LMS received
    memory: dict[str, Memory]
    seconds: float

    @property
    def ok(self) -> bool:
        got = {user: score.get("scoreGiven") for user, score in self.gradebook.items()}
        return got == self.expected


def _solve_code(notebook: nbformat.NotebookNode, lab: str) -> str:
    payload = base64.b64encode(nbformat.writes(notebook).encode()).decode()
    return (f"import base64, pathlib\npathlib.Path({lab!r}, {lab + '.ipynb'!r}).write_bytes("
            f"base64.b64decode({payload!r}))\nprint('solved')")  # fmt: skip


def _nbgrader(command: str, lab: str) -> str:
    return ("import subprocess, sys\n"
            f"done = subprocess.run([sys.executable, '-m', 'nbgrader', {command!r}, {lab!r}], "
            "capture_output=True, text=True)\n"
            "print(done.returncode, done.stdout[-2000:], done.stderr[-2000:])")  # fmt: skip


def main(*, lab: str = "storage", echo: Callable[[str], None] = print, root: Path | None = None,
         checks: Callable[[Hub, str], None] | None = None) -> Report:  # fmt: skip
    """Run the class end to end (module docstring); the gradebook as the LMS received it.
    ``checks(hub, platform_url)`` runs once the students' servers are up (the suite's probes)."""
    from grader import exchange, grade, lti
    from grader.hub import HubConfig
    from grader.lti_platform import (
        CLIENT_ID,
        DEPLOYMENT_ID,
        INSTRUCTOR,
        ISSUER,
        TOOL_KID,
        Platform,
        member,
        new_key,
        pem,
    )

    started = time.monotonic()
    the_lab = lab_index.find(lab)
    release = nbu.read(the_lab.release)
    partial = nbu.read(samples.SAMPLES_DIR / lab / "partial.ipynb")
    work = {"alice": samples.solution_submission(the_lab, release), "bob": partial}
    expected = {"lms-alice": the_lab.max_score,
                "lms-bob": float(samples.expected(the_lab)["partial"])}  # fmt: skip
    tool_key = new_key()
    members = [member("teacher", INSTRUCTOR), member("alice"), member("bob")]
    with contextlib.ExitStack() as stack:
        root = root or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="classroom-")))
        key_file = root / "tool.pem"
        key_file.write_bytes(pem(tool_key))
        hub_port = free_port()
        hub_url = f"http://127.0.0.1:{hub_port}"
        platform = stack.enter_context(Platform.create(
            tool_key=tool_key, members=members, tool_login_url=f"{hub_url}/hub/lti13/oauth_login",
            tool_launch_url=f"{hub_url}/hub",
        ))  # fmt: skip
        lti_env = {"CLOUDLABS_LTI_ISSUER": ISSUER, "CLOUDLABS_LTI_CLIENT_ID": CLIENT_ID,
                   "CLOUDLABS_LTI_AUTHORIZE_URL": f"{platform.url}/authorize",
                   "CLOUDLABS_LTI_JWKS_URL": f"{platform.url}/jwks"}  # fmt: skip
        hub = stack.enter_context(running_hub(root, env={
            **lti_env, "CLOUDLABS_HUB_PORT": str(hub_port), "CLOUDLABS_HUB_AUTHENTICATOR": "lti13",
            "CLOUDLABS_HUB_ADMIN_USERS": "lms-teacher", "CLOUDLABS_HUB_COURSE_ID": "cl101",
        }))  # fmt: skip
        echo(f"hub at {hub.url}; LMS (lti1p3platform) at {platform.url}")

        for user in ("lms-teacher", "lms-alice", "lms-bob"):
            status, location = launch(platform.url, user)
            if status != 302:
                raise HubError(f"the hub refused {user}'s launch ({status})")
            echo(f"{user} launched from the LMS -> {location}")
        for user in ("lms-alice", "lms-bob"):
            hub.start_server(user)
        if checks is not None:
            checks(hub, platform.url)

        config = HubConfig(data=hub.data, course_id="cl101")
        exchange.release(labs=[lab], config=config)
        echo(f"teacher released {lab}")
        for user, notebook in zip(("lms-alice", "lms-bob"), work.values(), strict=True):
            for step, code in (("fetched", _nbgrader("fetch_assignment", lab)),
                               ("solved", _solve_code(notebook, lab)),
                               ("submitted", _nbgrader("submit", lab))):  # fmt: skip
                out = hub.run_code(user, code)
                if step != "solved" and not out.startswith("0 "):
                    raise HubError(f"{user}: nbgrader {step} failed: {out}")
            echo(f"{user} fetched, solved and submitted {lab}")
        memory = {}
        for user in ("lms-alice", "lms-bob"):  # a server with one kernel that has used boto3
            hub.run_code(user, "import boto3; boto3.client('s3').list_buckets()",
                         then=lambda u=user: memory.update({u: Memory.of(hub.server_processes(u))}))  # fmt: skip
        memory["emulator"] = Memory.of(hub.emulator_processes())
        memory["hub and proxy"] = Memory.of(
            [psutil.Process(hub.process.pid), *[
                p for p in psutil.Process(hub.process.pid).children()
                if "configurable-http-proxy" in " ".join(p.cmdline())]]
        )  # fmt: skip

        collection = exchange.collect(lab=lab, out=root / "submitted", config=config)
        echo(f"teacher collected {len(collection.collected)} submissions "
             f"({len(collection.refused)} refused)")  # fmt: skip
        run = grade.main(
            lab=lab, submissions=root / "submitted", out=root / "grades",
            emulator_config=EmulatorConfig(backend="external",
                                           endpoint_url=f"http://127.0.0.1:{hub.emulator_port}"),
            grade_config=GradeConfig(workers=2),
        )  # fmt: skip
        memory["emulator, graded"] = Memory.of(hub.emulator_processes())
        for result in run.results:
            echo(f"graded {result.student}: {result.score}/{result.max_score} ({result.status})")
        report = lti.push(lab=lab, results=run.results, max_score=the_lab.max_score,
                          config=LtiConfig(issuer=ISSUER, client_id=CLIENT_ID,
                                           deployment_id=DEPLOYMENT_ID,
                                           token_url=f"{platform.url}/token",
                                           private_key=str(key_file), key_id=TOOL_KID,
                                           lineitems_url=f"{platform.url}/lineitems",
                                           memberships_url=f"{platform.url}/memberships"))  # fmt: skip
        echo(f"pushed to the LMS: line item {report.lineitem} ({len(report.posted)} scores)")
        gradebook = platform.store.gradebook().get(lab, {})
    result = Report(lab, expected, gradebook, memory, round(time.monotonic() - started, 1))
    echo(render(result))
    return result


def render(report: Report) -> str:
    lines = [f"\nThe LMS gradebook, {report.lab}, as the platform received it:",
             f"  {'user':<12} {'score':>7} {'max':>6}  comment"]  # fmt: skip
    for user, score in sorted(report.gradebook.items()):
        lines.append(f"  {user:<12} {score['scoreGiven']:>7} {score['scoreMaximum']:>6}  "
                     f"{score.get('comment', '')}")  # fmt: skip
    lines.append("\nMemory (MiB; RSS counts shared pages in every process, USS only its own):")
    for part, mem in report.memory.items():
        lines.append(
            f"  {part:<14} RSS {mem.rss:>7}  USS {mem.uss:>7}  ({mem.processes} processes)"
        )
    lines.append(f"\n{'OK' if report.ok else 'MISMATCH'}: expected {report.expected}; "
                 f"{report.seconds} s; everything started has stopped.")  # fmt: skip
    return "\n".join(lines)


def cli_main() -> None:
    try:
        report = main()
    except CloudlabsError as exc:
        sys.exit(f"cloudlabs classroom-demo: {exc}")
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    cli_main()


__all__ = ["Hub", "Memory", "Report", "launch", "main", "running_hub"]
