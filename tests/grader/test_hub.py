"""The class hub on loopback: real JupyterHub, configurable-http-proxy and bubblewrap. Two students
get servers in their own sandboxes and accounts; neither can read the other's files, the hub's
secrets or the other's AWS resources, and everything the hub started ends with it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import psutil
import pytest

from grader import ROOT
from grader.hub import Identity, class_secret, identity
from tests.conftest import free_port

PROXY = ROOT / "deploy" / "jupyterhub" / "node_modules" / ".bin" / "configurable-http-proxy"
JUPYTERHUB = Path(sys.executable).parent / "jupyterhub"


def test_identities_are_stable_distinct_and_never_the_default(tmp_path):
    secret = class_secret(tmp_path)
    assert class_secret(tmp_path) == secret  # made once, then read
    assert oct((tmp_path / "class-secret").stat().st_mode & 0o777) == "0o600"
    alice, bob = identity(secret, "alice"), identity(secret, "bob")
    assert identity(secret, "alice") == alice and alice != bob
    assert identity(b"another class", "alice") != alice
    ids = {identity(secret, f"student-{n}").account_id for n in range(2000)}
    assert len(ids) == 2000 and "000000000000" not in ids
    assert all(len(i) == 12 and i.isdigit() and i[0] != "0" for i in ids)
    assert alice.prefix.startswith("u") and len(alice.prefix) == 11


@dataclasses.dataclass
class Hub:
    url: str
    token: str
    data: Path
    process: subprocess.Popen

    def api(self, method: str, path: str, body: dict | None = None) -> dict | list | None:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, data=json.dumps(body).encode() if body else None,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None


def _wait(what: str, ready, process: subprocess.Popen, log: Path, seconds: float = 180) -> None:
    """Until ``ready()`` (readiness polling, bounded: the hub and servers start at their pace)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the hub exited ({process.returncode}) before {what}:\n{log.read_text()}")
        with_value = ready()
        if with_value:
            return
        time.sleep(0.5)
    pytest.fail(f"{what} did not happen in {seconds} s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    if not PROXY.exists() or not JUPYTERHUB.exists() or shutil.which("bwrap") is None:
        pytest.skip("the class hub is not installed (`make classroom` installs it)")
    root = tmp_path_factory.mktemp("hub")
    token = secrets.token_hex(16)
    config = root / "jupyterhub_config.py"
    config.write_text(
        "from grader.hub import configure\n"
        "c = get_config()  # noqa: F821\n"
        "configure(c)\n"
        f"c.JupyterHub.services.append({{'name': 'tester', 'api_token': {token!r}}})\n"
        "c.JupyterHub.load_roles = [{'name': 'tester', 'services': ['tester'], 'scopes': "
        "['admin:users', 'admin:servers', 'access:servers', 'read:users']}]\n"
    )
    port = free_port()
    env = {**os.environ, "CLOUDLABS_HUB_DATA": str(root / "data"), "CLOUDLABS_HUB_PORT": str(port),
           "CLOUDLABS_HUB_EMULATOR_PORT": str(free_port()), "CLOUDLABS_HUB_AUTHENTICATOR": "dummy",
           "CLOUDLABS_HUB_HUB_API_PORT": str(free_port()),
           "CLOUDLABS_HUB_PROXY_API_PORT": str(free_port()),
           "CLOUDLABS_HUB_PASSWORD": secrets.token_hex(8)}  # fmt: skip
    log = root / "hub.log"
    with log.open("w") as out:
        process = subprocess.Popen([str(JUPYTERHUB), "-f", str(config)], cwd=root, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    running = Hub(f"http://127.0.0.1:{port}", token, root / "data", process)

    def answers() -> bool:
        try:
            return running.api("GET", "/hub/api/") is not None
        except (OSError, urllib.error.URLError):
            return False

    try:
        _wait("the hub answered", answers, process, log)
        for name in ("alice", "bob"):
            running.api("POST", f"/hub/api/users/{name}")
            running.api("POST", f"/hub/api/users/{name}/server")
        for name in ("alice", "bob"):
            _wait(f"{name}'s server started",
                  lambda n=name: running.api("GET", f"/hub/api/users/{n}")["servers"]
                  .get("", {}).get("ready"), process, log)  # fmt: skip
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    left = [p for p in psutil.process_iter(["cmdline", "cwd"])
            if str(root) in " ".join(p.info["cmdline"] or []) or str(root) in (p.info["cwd"] or "")]  # fmt: skip
    assert not left, f"still running after the hub: {[p.info['cmdline'] for p in left]}"


def run_code(hub: Hub, user: str, code: str) -> str:
    """Run ``code`` in a new kernel of ``user``'s server, through the proxy; its output."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    kernel = hub.api("POST", f"/user/{user}/api/kernels", {"name": "python3"})["id"]

    async def execute() -> str:
        url = hub.url.replace("http", "ws", 1) + f"/user/{user}/api/kernels/{kernel}/channels"
        socket = await websocket_connect(
            HTTPRequest(url, headers={"Authorization": f"token {hub.token}"})
        )
        msg_id = uuid.uuid4().hex
        socket.write_message(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": uuid.uuid4().hex,
                       "username": "", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))  # fmt: skip
        out = []
        while True:
            message = json.loads(await asyncio.wait_for(socket.read_message(), 120))
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                out.append(f"{content['ename']}: {content['evalue']}")
            elif kind == "status" and content["execution_state"] == "idle":
                socket.close()
                return "".join(out)

    try:
        return asyncio.run(execute())
    finally:
        hub.api("DELETE", f"/user/{user}/api/kernels/{kernel}")


def test_each_student_works_in_their_own_account(hub):
    secret = class_secret(hub.data)
    for user in ("alice", "bob"):
        out = run_code(hub, user, "import os; print(os.environ['CLOUDLABS_ACCOUNT_ID'], "
                                  "os.environ['CLOUDLABS_PREFIX'], os.getcwd())")  # fmt: skip
        account, prefix, cwd = out.split()
        assert Identity(account, prefix) == identity(secret, user)
        assert cwd == str(hub.data / "homes" / user)


def test_no_student_reads_another_s_files_or_the_hub_s_secrets(hub):
    (hub.data / "homes" / "bob" / "answers.txt").write_text("bob's work")
    targets = [hub.data / "homes" / "bob" / "answers.txt", hub.data / "class-secret",
               hub.data / "jupyterhub.sqlite", hub.data / "jupyterhub_cookie_secret",
               ROOT / "solutions"]  # fmt: skip
    code = (
        "import os\n"
        f"for path in {[str(t) for t in targets]!r}:\n"
        "    try:\n"
        "        with open(path, 'rb') as f: print('READ', path)\n"
        "    except IsADirectoryError:\n"
        "        print('LISTED' if os.listdir(path) else 'EMPTY', path)\n"
        "    except OSError as exc:\n"
        "        print('DENIED', path, type(exc).__name__)\n"
    )
    out = run_code(hub, "alice", code)
    assert "READ" not in out and "LISTED" not in out, out
    assert out.count("DENIED") + out.count("EMPTY") == len(targets), out
    assert run_code(hub, "alice", "open('mine.txt', 'w').write('x'); print('ok')") == "ok\n"
    assert (hub.data / "homes" / "alice" / "mine.txt").read_text() == "x"


def test_no_student_sees_another_s_aws_resources(hub):
    make = "import boto3; boto3.client('s3').create_bucket(Bucket=os.environ['CLOUDLABS_PREFIX'] + '-private')\n"
    listing = "import boto3; print(sorted(b['Name'] for b in boto3.client('s3').list_buckets()['Buckets']))"
    run_code(hub, "alice", "import os\n" + make)
    alice = identity(class_secret(hub.data), "alice")
    assert run_code(hub, "alice", listing).strip() == repr([f"{alice.prefix}-private"])
    assert run_code(hub, "bob", listing).strip() == "[]"


def test_a_student_s_own_hub_token_opens_no_other_server(hub):
    code = (
        "import os, urllib.request, urllib.error\n"
        f"for user in ('alice', 'bob'):\n"
        f"    request = urllib.request.Request({hub.url!r} + f'/user/{{user}}/api/contents',\n"
        "        headers={'Authorization': 'token ' + os.environ['JUPYTERHUB_API_TOKEN']})\n"
        "    try:\n"
        "        urllib.request.urlopen(request, timeout=20).close(); print(user, 200)\n"
        "    except urllib.error.HTTPError as err:\n"
        "        print(user, err.code)\n"
    )
    out = dict(line.split() for line in run_code(hub, "bob", code).splitlines())
    assert out == {"alice": "403", "bob": "200"}, out
