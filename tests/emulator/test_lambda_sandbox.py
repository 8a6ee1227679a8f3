"""Lambda functions run sandboxed: a hostile function reaches nothing of the machine's but its own
code, its own /tmp and the emulator's API (see emulator/cloudlabs_emulator/sandbox.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import uuid
from pathlib import Path

import psutil
import pytest

from grader import ROOT
from grader import emulator as emu
from grader.emulator import embedded
from tests.conftest import emulator_config
from tests.emulator.test_lambda import wait_for, zipped

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

EMULATOR_PYTHON = ROOT / ".venv-emulator" / "bin" / "python"
AS_ROOT = os.geteuid() == 0  # as the emulator: it runs as this test's user

PROBE = r"""
import errno, json, os, resource, signal, socket, subprocess, sys, time
import boto3


def attempt(call):
    try:
        result = call()
    except Exception as exc:
        return type(exc).__name__
    return "ok:" + str(result)[:100]


def handler(event, context):
    action = event["action"]
    paths = event.get("paths", [])
    if action == "where":
        return {"task_root": os.environ["LAMBDA_TASK_ROOT"], "uid": os.getuid(),
                "home": os.environ.get("HOME"), "tmpdir": os.environ.get("TMPDIR")}
    if action == "read":
        return {p: attempt(lambda p=p: open(p, "rb").read(16)) for p in paths}
    if action == "list":
        listed = {}
        for p in paths:
            try:
                listed[p] = sorted(os.listdir(p))
            except Exception as exc:
                listed[p] = type(exc).__name__
        return listed
    if action == "write":
        return {p: attempt(lambda p=p: open(p, "w").write("pwned")) for p in paths}
    if action == "mkdir":
        return {p: attempt(lambda p=p: os.mkdir(p)) for p in paths}
    if action == "put-tmp":
        with open(event["path"], "w") as f:
            f.write(event["text"])
        return "written"
    if action == "processes":
        pid = event["pid"]
        visible = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    visible[entry] = open(f"/proc/{entry}/cmdline", "rb").read().decode(errors="replace")
                except OSError:
                    visible[entry] = "?"
        # signal 0 asks whether a signal could be sent, without sending one
        return {"visible": visible,
                "signal": attempt(lambda: os.kill(pid, 0)),
                "group": attempt(lambda: os.killpg(pid, 0)),
                "parent": attempt(lambda: os.kill(os.getppid(), 0))}
    if action == "limits":
        names = ("AS", "CPU", "FSIZE", "CORE", "NPROC")
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
        tmp = os.statvfs("/tmp")
        big = attempt(lambda: open("/tmp/big", "wb").truncate(event["past_fsize"]))
        return {"rlimits": {n: resource.getrlimit(getattr(resource, "RLIMIT_" + n)) for n in names},
                "ids": [os.getresuid(), os.getresgid(), os.getgroups()],
                "caps": {k: status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapAmb")},
                "no_new_privs": status["NoNewPrivs"].strip(),
                "tmp_bytes": tmp.f_blocks * tmp.f_frsize, "past_fsize": big}
    if action == "fork-bomb":
        print("uid", os.getuid())
        for count in range(event["at_most"]):
            if os.fork() == 0:  # a child sleeps: the tree only grows, deterministically
                time.sleep(600)
                os._exit(0)
        return f"forked {event['at_most']} processes"
    if action == "hog":
        chunks = [b"\x01" * 2**20 for _ in range(event["mb"])]  # written, so resident
        return f"held {len(chunks)} MiB"
    if action == "spawn":
        marker = event["marker"]
        sleeper = [sys.executable, "-c", "import time; time.sleep(600)", marker]
        subprocess.Popen(sleeper)
        subprocess.Popen(sleeper, start_new_session=True)
        if os.fork() == 0:  # a daemon: double fork in a new session, parent gone
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, sleeper)
            os._exit(0)
        while True:  # until the daemon runs too (the test's deadline bounds this)
            mine = [e for e in os.listdir("/proc") if e.isdigit()
                    and marker.encode() in open(f"/proc/{e}/cmdline", "rb").read()]
            if len(mine) >= 3 * event.get("round", 1):
                break
            time.sleep(0.05)
        time.sleep(event.get("then_sleep", 0))
        return "spawned"
    if action == "queues":
        return boto3.client("sqs").list_queues().get("QueueUrls", [])
    if action == "network":
        def connect(kind, address):  # once, with a short timeout: refused, unreachable or reached
            family = {"tcp": socket.AF_INET, "unix": socket.AF_UNIX}[kind]
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                try:
                    sock.connect(tuple(address) if kind == "tcp" else address)
                except OSError as exc:
                    return errno.errorcode.get(exc.errno, type(exc).__name__)
                return "connected"
        return {"queues": boto3.client("sqs").list_queues().get("QueueUrls", []),
                "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
                "runtime": os.environ.get("LOCALSTACK_RUNTIME_ID"),
                "names": {n: attempt(lambda n=n: socket.gethostbyname(n))
                          for n in ("localhost", "localhost.localstack.cloud")},
                "targets": [connect(kind, address) for kind, address in event["targets"]]}
    raise ValueError(action)
"""

DENIED = {"FileNotFoundError", "PermissionError", "NotADirectoryError", "OSError"}


@pytest.fixture(scope="module")
def home(emulator) -> Path:
    if emulator.config.backend != "embedded":
        pytest.skip("needs the embedded emulator (its files and process are on this machine)")
    return emulator.config.home


@pytest.fixture
def probe(lam, account_id):
    def create(name="probe", **extra):
        extra.setdefault("Timeout", 10)
        lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=f"arn:aws:iam::{account_id}:role/r",
            Handler="app.handler",
            Code={"ZipFile": zipped({"app.py": PROBE})},
            **extra,
        )
        lam.get_waiter("function_active_v2").wait(FunctionName=name)
        return name

    return create


@pytest.fixture
def lam(aws):
    return aws.client("lambda")


def call(lam, name, event):
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    body = json.loads(response["Payload"].read())
    if response.get("FunctionError"):
        return {"function_error": body}
    return body


def assert_denied(results: dict[str, str]) -> None:
    allowed = {path: outcome for path, outcome in results.items() if outcome not in DENIED}
    assert not allowed, f"the function reached: {allowed}"


def sandboxed_processes(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if marker in (process.info["cmdline"] or []):
            found.append(process)
    return found


def test_function_sees_none_of_the_machines_files(lam, probe, home, tmp_path):
    other = probe("other")
    other_root = Path(call(lam, other, {"action": "where"})["task_root"])
    name = probe()
    where = call(lam, name, {"action": "where"})
    assert where["home"] == "/tmp" and where["tmpdir"] == "/tmp"
    host_home_files = [p for p in Path.home().iterdir() if p.is_file()][:5]
    with tempfile.NamedTemporaryFile(dir="/tmp", prefix="host-secret-") as host_tmp:
        files = [
            ROOT / "solutions" / "storage" / "checks.py",
            ROOT / ".git" / "HEAD",
            ROOT / "grader" / "__init__.py",
            ROOT / "pyproject.toml",
            home / "emulator.log",
            home / "admin-token",
            Path(host_tmp.name),
            other_root / "app.py",
            *host_home_files,
        ]
        hidden = [
            ROOT / "solutions",
            ROOT / ".git",
            ROOT / "tests",
            home / "state",
            other_root,
            tmp_path,
            *[p for p in map(Path, ("/home", "/var", "/opt", "/mnt", "/srv")) if p.exists()],
        ]
        for path in files + hidden:
            assert path.exists(), path  # so that "not found" below means hidden
        assert_denied(call(lam, name, {"action": "read", "paths": [str(p) for p in files]}))
        assert_denied(call(lam, name, {"action": "list", "paths": [str(p) for p in hidden]}))
    # Directories on the way to what is bound exist, holding only that way on
    ways = {
        ROOT: {"solutions", ".git", "grader", "tests", "labs", "course", "pyproject.toml"},
        home: {"state", "emulator.log", "admin-token", "emulator.json"},
        Path(where["task_root"]).parent.parent: {other_root.parent.name},  # every function's code
        Path.home(): {p.name for p in host_home_files},
        Path("/run"): set(os.listdir("/run")) - {"cloudlabs"} if Path("/run").is_dir() else set(),
    }
    listed = call(lam, name, {"action": "list", "paths": [str(p) for p in ways]})
    for path, secrets in ways.items():
        entries = listed[str(path)]
        assert isinstance(entries, str) or not secrets & set(entries), (path, entries)
    # /run holds the way to the emulator's socket only (see test_network_reaches_the_emulator_only)
    run = call(lam, name, {"action": "list", "paths": ["/run", "/run/cloudlabs"]})
    assert run == {"/run": ["cloudlabs"], "/run/cloudlabs": ["emulator.sock"]}
    # what it does see: its own code, read-only
    seen = call(lam, name, {"action": "read", "paths": [f"{where['task_root']}/app.py"]})
    assert all(value.startswith("ok:") for value in seen.values())


def test_function_cannot_write_outside_its_tmp(lam, probe, home):
    name = probe()
    task_root = call(lam, name, {"action": "where"})["task_root"]
    token = uuid.uuid4().hex
    targets = [
        ROOT / "solutions" / f"{token}.txt",
        ROOT / f"{token}.txt",
        Path(task_root) / f"{token}.py",
        Path(sys.prefix) / f"{token}.txt",
        EMULATOR_PYTHON.parent / token,
        home / "state" / token,
        home / token,
        Path("/") / token,
        Path("/etc") / token,
        Path("/usr") / token,
        Path("/root") / token,
        Path("/dev") / token,
        Path("/dev/shm") / token,
        Path("/proc") / token,
    ]
    assert_denied(call(lam, name, {"action": "write", "paths": [str(p) for p in targets]}))
    assert_denied(call(lam, name, {"action": "mkdir", "paths": [str(p) for p in targets]}))
    assert not [p for p in targets if p.exists()]


def test_each_function_has_a_private_tmp(lam, probe):
    writer, reader = probe("writer"), probe("reader")
    path = f"/tmp/private-{uuid.uuid4().hex}"
    assert call(lam, writer, {"action": "put-tmp", "path": path, "text": "mine"}) == "written"
    assert call(lam, writer, {"action": "read", "paths": [path]})[path] == "ok:b'mine'"  # warm
    assert call(lam, reader, {"action": "read", "paths": [path]})[path] == "FileNotFoundError"
    assert not Path(path).exists()  # not the host's /tmp either


def test_function_cannot_see_or_signal_the_emulator(lam, probe, emulator, home):
    pid = emulator.status().pid
    name = probe()
    result = call(lam, name, {"action": "processes", "pid": pid})
    visible = result["visible"]
    assert not [c for c in visible.values() if "localstack.runtime.main" in c], visible
    assert len(visible) == 2, visible  # bwrap's init and the runtime
    assert result["signal"] in {"ProcessLookupError", "PermissionError"}
    assert result["group"] in {"ProcessLookupError", "PermissionError"}
    if AS_ROOT:  # its parent is bwrap's init, root's; the function is not root
        assert result["parent"] == "PermissionError"
    assert emulator.status().running and emulator.status().pid == pid


def test_limits_follow_the_function_configuration(lam, probe):
    name = probe(MemorySize=256, Timeout=7, EphemeralStorage={"Size": 1024})
    result = call(lam, name, {"action": "limits", "past_fsize": 1024 * 2**20 + 1})
    mib = 2**20
    assert result["rlimits"] == {
        "AS": [(256 + 256) * mib] * 2,
        "CPU": [7 + 10] * 2,
        "FSIZE": [1024 * mib] * 2,
        "CORE": [0, 0],
        "NPROC": [64, 64],
    }
    assert result["tmp_bytes"] == 1024 * mib
    assert result["past_fsize"] == "OSError"  # EFBIG: files are capped at the storage size
    assert set(result["caps"].values()) == {"0000000000000000"}, result["caps"]
    assert result["no_new_privs"] == "1"
    if AS_ROOT:
        (uid, *_), (gid, *_), groups = result["ids"]
        assert uid != 0 and gid == uid and groups == []
        from grader import sandbox as kernels  # the grader's kernels have uids of their own

        assert not kernels.UID_BASE <= uid < kernels.UID_BASE + kernels.UID_COUNT
        assert len(set(result["ids"][0])) == 1 and len(set(result["ids"][1])) == 1


def test_fork_bomb_ends_in_a_function_error_and_the_emulator_stays_healthy(
    aws, lam, probe, emulator
):
    name = probe()
    result = call(lam, name, {"action": "fork-bomb", "at_most": 500})
    assert result["function_error"]["errorType"] == "BlockingIOError", result
    assert emulator.status().running
    assert aws.client("sqs").list_queues().get("QueueUrls", []) == []
    assert call(lam, probe("after-bomb"), {"action": "where"})["task_root"]
    assert call(lam, name, {"action": "where"})["task_root"]  # the environment still answers


def test_memory_hog_ends_in_a_function_error(lam, probe, emulator):
    name = probe(MemorySize=128)
    assert call(lam, name, {"action": "hog", "mb": 120}) == "held 120 MiB"  # about its size
    result = call(lam, name, {"action": "hog", "mb": 4096})
    assert result["function_error"]["errorType"] == "MemoryError", result
    assert emulator.status().running
    assert call(lam, name, {"action": "hog", "mb": 64}) == "held 64 MiB"  # and it recovers


EARLY = """
import os
with open("/tmp/early-" + __name__, "w") as f:
    f.write(str(os.getuid()))
"""


def test_nothing_of_the_function_runs_before_the_runtime_drops_privileges(lam, account_id):
    """Python's start-up hooks and variables are the function's: the runtime ignores them."""
    lam.create_function(
        FunctionName="early",
        Runtime="python3.12",
        Role=f"arn:aws:iam::{account_id}:role/r",
        Handler="app.handler",
        Code={
            "ZipFile": zipped(
                {
                    "app.py": "import os\ndef handler(e, c):\n    return sorted(os.listdir('/tmp'))\n",
                    "sitecustomize.py": EARLY,
                    "usercustomize.py": EARLY,
                    "startup.py": EARLY,
                }
            )
        },
        Environment={
            "Variables": {
                "PYTHONSTARTUP": "startup.py",
                "PYTHONINSPECT": "1",
                "PYTHONHOME": "/nonexistent",
                "PYTHONWARNINGS": "error",
            }
        },
    )
    lam.get_waiter("function_active_v2").wait(FunctionName="early")
    assert not [name for name in call(lam, "early", {}) if name.startswith("early-")]


def test_function_still_reaches_the_emulator_in_its_own_account(aws, lam, probe):
    url = aws.client("sqs").create_queue(QueueName="sandboxed")["QueueUrl"]
    assert call(lam, probe(), {"action": "queues"}) == [url]


def host_addresses() -> list[str]:
    """The machine's IPv4 addresses other than loopback."""
    import socket

    return [
        address.address
        for addresses in psutil.net_if_addrs().values()
        for address in addresses
        if address.family == socket.AF_INET and not address.address.startswith("127.")
    ]


def test_network_reaches_the_emulator_only(aws, lam, probe, emulator):
    """The function's network: the emulator, through its endpoint, and nothing else. The test's
    servers only listen; the function tries each once and says why it could not connect."""
    import socket

    url = aws.client("sqs").create_queue(QueueName="reachable")["QueueUrl"]
    servers = [socket.create_server(("127.0.0.1", 0))]  # a local service on the host's loopback
    servers += [socket.create_server((address, 0)) for address in host_addresses()[:1]]
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # the host's abstract sockets
    abstract.bind(f"\0cloudlabs-test-{uuid.uuid4().hex}")
    abstract.listen()
    servers.append(abstract)
    try:
        targets = [["tcp", list(server.getsockname())] for server in servers[:-1]]
        targets.append(["unix", abstract.getsockname().decode()])
        result = call(lam, probe(), {"action": "network", "targets": targets})
        assert result["queues"] == [url]  # boto3 reaches the emulator at the endpoint it was told
        port = urllib.parse.urlsplit(emulator.endpoint_url).port
        assert result["endpoint"] == f"http://127.0.0.1:{port}"
        assert result["names"] == {n: "ok:127.0.0.1" for n in result["names"]}
        outcomes = result["targets"]
        assert outcomes[0] == "ECONNREFUSED", result  # nothing listens on the sandbox's loopback
        assert outcomes[1:-1] == ["ENETUNREACH"] * len(outcomes[1:-1]), result  # no route out
        assert outcomes[-1] == "ECONNREFUSED", result  # another network namespace's
        for server in servers:  # and nothing arrived
            server.setblocking(False)
            with pytest.raises(BlockingIOError):
                server.accept()
    finally:
        for server in servers:
            server.close()


def emulator_unix_sockets(pid: int, name: str) -> list[str]:
    return [
        c.laddr
        for c in psutil.Process(pid).net_connections(kind="unix")
        if isinstance(c.laddr, str) and c.laddr.endswith(f"/{name}")
    ]


def test_network_ends_with_the_environment(lam, probe, emulator, home):
    """The environment's socket to the emulator exists while the environment does."""
    name = probe("net-lifetime")
    runtime = call(lam, name, {"action": "network", "targets": []})["runtime"]
    socket_name = f"{runtime}.sock"
    pid = emulator.status().pid
    (path,) = [p for p in (home / "state").rglob(socket_name) if p.is_socket()]
    assert path.parent.name.startswith("cloudlabs-lambda-net-")
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert path.stat().st_mode & 0o777 == 0o600
    assert emulator_unix_sockets(pid, socket_name)
    lam.delete_function(FunctionName=name)
    wait_for(lambda: not path.exists() and not emulator_unix_sockets(pid, socket_name))


def test_timeout_ends_the_whole_process_tree(lam, probe):
    marker = f"cloudlabs-tree-{uuid.uuid4().hex}"
    name = probe(Timeout=2)
    assert call(lam, name, {"action": "spawn", "marker": marker}) == "spawned"
    assert len(sandboxed_processes(marker)) == 3  # a child, a new session, a daemon
    result = call(lam, name, {"action": "spawn", "marker": marker, "round": 2, "then_sleep": 30})
    assert result["function_error"]["errorType"] == "Sandbox.Timedout"
    _, alive = psutil.wait_procs(sandboxed_processes(marker), timeout=5)
    assert not alive, alive
    assert call(lam, name, {"action": "where"})["task_root"]  # a fresh environment


def test_stopping_the_emulator_ends_every_environment(tmp_path):
    marker = f"cloudlabs-tree-{uuid.uuid4().hex}"
    from grader.statecheck import session_for

    with emu.running(emulator_config(tmp_path / "home")) as own:
        lam = session_for(endpoint_url=own.endpoint_url, account_id="123456789012").client("lambda")
        lam.create_function(
            FunctionName="spawner",
            Runtime="python3.12",
            Role="arn:aws:iam::123456789012:role/r",
            Handler="app.handler",
            Code={"ZipFile": zipped({"app.py": PROBE})},
            Timeout=10,
        )
        lam.get_waiter("function_active_v2").wait(FunctionName="spawner")
        assert call(lam, "spawner", {"action": "spawn", "marker": marker}) == "spawned"
        assert len(sandboxed_processes(marker)) == 3
    _, alive = psutil.wait_procs(sandboxed_processes(marker), timeout=10)
    assert not alive, alive


def test_without_the_sandbox_functions_still_run_and_the_log_says_so(tmp_path, monkeypatch):
    environment = embedded.environment
    monkeypatch.setattr(
        embedded,
        "environment",
        lambda *args, **kwargs: {
            **environment(*args, **kwargs),
            "CLOUDLABS_LAMBDA_SANDBOX": "none",
        },
    )
    from grader.statecheck import session_for

    with emu.running(emulator_config(tmp_path / "home")) as own:
        lam = session_for(endpoint_url=own.endpoint_url, account_id="123456789012").client("lambda")
        for name in ("plain", "plain-too"):
            lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role="arn:aws:iam::123456789012:role/r",
                Handler="app.handler",
                Code={"ZipFile": zipped({"app.py": PROBE})},
            )
            lam.get_waiter("function_active_v2").wait(FunctionName=name)
            assert call(lam, name, {"action": "where"})["uid"] == os.geteuid()
        log = own.logs(1000)
    assert log.count("Lambda functions run UNSANDBOXED") == 1, log


RESOLVE = """
import logging, os, sys
from cloudlabs_emulator import sandbox
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
if sys.argv[1] == "missing":
    sandbox.find_bwrap = lambda: None
for _ in range(2):
    try:
        print("result", type(sandbox.resolve()).__name__)
    except sandbox.SandboxError as exc:
        print("error", exc)
"""


@pytest.mark.parametrize(
    ("mode", "bwrap", "expected", "logged"),
    [
        ("auto", "missing", ["result NoneType"] * 2, "UNSANDBOXED"),
        ("", "missing", ["result NoneType"] * 2, "bubblewrap (bwrap) is not installed"),
        ("none", "present", ["result NoneType"] * 2, "UNSANDBOXED"),
        ("auto", "present", ["result Bubblewrap"] * 2, "bubblewrap sandboxes"),
        ("bwrap", "present", ["result Bubblewrap"] * 2, "bubblewrap sandboxes"),
        ("bwrap", "missing", ["error"] * 2, "cannot run"),
        ("docker", "present", ["error"] * 2, None),
    ],
)
def test_sandbox_setting(mode, bwrap, expected, logged):
    env = {**os.environ, "CLOUDLABS_LAMBDA_SANDBOX": mode}
    done = subprocess.run(
        [str(EMULATOR_PYTHON), "-c", RESOLVE, bwrap],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
        timeout=120,
    )
    lines = done.stdout.splitlines()
    assert [line if line.startswith("result") else line.split()[0] for line in lines] == expected
    if logged:  # said once, however many environments start
        assert done.stderr.count(logged) == 1, done.stderr
