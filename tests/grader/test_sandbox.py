"""The sandbox (grader/sandbox.py): what a student's kernel sees (an allow-list), how many
processes it may have, and a kernel start that nothing the student leaves in its home can break.

Kernels run as in grading: ``grader.execute.execute`` with the kernelspec ``write_kernelspec``
makes, their working directories in a ``work_root()`` (under tmp_path: see ``process_watch``).
The bwrap tests run twice (``launch``): the kernel started by the launcher, and forked into its
sandbox by a fork server (``grader.forkserver``), as a class run starts them.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import stat
import sys
import tempfile
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from grader import ROOT, forkserver, sandbox
from grader import notebook as nbu
from grader.execute import execute
from tests.conftest import new_account_id

needs_bwrap = pytest.mark.skipif(not shutil.which("bwrap"), reason="bubblewrap is not installed")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="a kernel user of its own needs root")
pytestmark = pytest.mark.usefixtures("process_watch")  # kernels under tmp_path, none left

PARAMETERS = {"endpoint_url": "http://127.0.0.1:9", "region": "us-east-1",
              "account_id": "123456789012", "prefix": "s0"}  # fmt: skip
#: A lab's setup: a boto3 session and a client (which reads AWS's config files and models).
SETUP = (
    "import boto3\n"
    "session = boto3.Session(aws_access_key_id=account_id, aws_secret_access_key='test',\n"
    "                        region_name=region)\n"
    "s3 = session.client('s3', endpoint_url=endpoint_url)\n"
)


def notebook(*sources: str, setup: str = SETUP):
    cells = [new_code_cell("\n".join(f"{k} = None" for k in PARAMETERS),
                           metadata={"tags": ["parameters"]})]  # fmt: skip
    cells.append(new_code_cell(setup, metadata={"tags": ["setup"]}))
    nb = new_notebook(cells=[*cells, *(new_code_cell(s) for s in sources)])
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python"}
    return nb


def workdir() -> Path:
    """A kernel's working directory, as the grader makes them (one per submission)."""
    return Path(tempfile.mkdtemp(prefix="kernel-", dir=sandbox.work_root()))


@pytest.fixture(params=["exec", pytest.param("forked", marks=needs_root)])
def launch(request, process_watch):
    """None (the launcher starts the kernel), or the socket of a fork server to fork it from."""
    if request.param == "exec":
        yield None
        return
    with forkserver.ForkServer(parent=sandbox.work_root(), preload=["boto3"]) as server:
        assert server.ready
        yield server.socket


def run(nb, *, mode="bwrap", hide=(), parameters=PARAMETERS, cwd=None, extra_args=(),
        launch=None):  # fmt: skip
    cwd = cwd or workdir()
    kernels = sandbox.write_kernelspec(
        cwd / ".kernels", mode=mode, memory_mb=2048, hide=list(hide), workdir=cwd,
        forkserver=launch,
    )  # fmt: skip
    if extra_args:  # launcher options write_kernelspec does not expose
        spec = kernels / sandbox.KERNEL_NAME / "kernel.json"
        argv = json.loads(spec.read_text())
        at = argv["argv"].index("--")
        argv["argv"][at:at] = list(extra_args)
        spec.write_text(json.dumps(argv))
    return execute(
        nb, parameters=parameters, cwd=cwd, kernel=sandbox.KERNEL_NAME, kernel_dirs=[kernels],
        cell_timeout=30.0, budget=240.0,
    )  # fmt: skip


def stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def errors(cell) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for o in cell.outputs if o.output_type == "error"]


def last_json(execution) -> dict:
    cell = execution.notebook.cells[-1]
    assert not errors(cell), errors(cell)
    return json.loads(stdout(cell).strip().splitlines()[-1])


# -- the allow-list ----------------------------------------------------------------------------


def pairs(argv: list[str], option: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == option]


def test_bwrap_binds_only_the_system_the_interpreter_and_the_working_directory(tmp_path):
    home = tmp_path / "work"
    argv = sandbox.bwrap_argv(["kernel"], hide=[], workdir=home)
    read_only = [Path(src) for src, _ in pairs(argv, "--ro-bind")]
    assert ("/", "/") not in pairs(argv, "--ro-bind")
    assert pairs(argv, "--bind") == [(str(home), str(home))]
    assert Path("/usr") in read_only
    assert Path(sys.prefix).resolve() in read_only and Path(sys.base_prefix).resolve() in read_only
    allowed = [Path(p) for p in sandbox.SYSTEM_DIRS] + [Path("/etc")]
    for path in read_only:
        if any(path.is_relative_to(a) for a in allowed):
            continue
        assert path in [p.resolve() for p in sandbox.interpreter_dirs()], path
    # of the checkout, the virtualenv alone
    assert [p for p in read_only if p.is_relative_to(ROOT)] in ([], [Path(sys.prefix).resolve()])
    assert tuple(argv[argv.index("/tmp") - 1 : argv.index("/tmp") + 1]) == ("--tmpfs", "/tmp")
    for flag in ("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
                 "--new-session"):  # fmt: skip
        assert flag in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert "--unshare-net" not in argv and "--unshare-all" not in argv  # the emulator is on lo


PROBE = r"""
import json, os, socket, sys
def readable(path):
    try:
        os.listdir(path) if os.path.isdir(path) else open(path, "rb").read(1)
        return True
    except OSError:
        return False
def writable(directory):
    try:
        with open(os.path.join(directory, ".probe"), "w"):
            pass
        os.remove(os.path.join(directory, ".probe"))
        return True
    except OSError:
        return False
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines()
              if ":\t" in line)
def reaches(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        return True
    except OSError:
        return False
print(json.dumps({
    "uid": os.getuid(),
    "caps": [status[k].strip() for k in ("CapPrm", "CapEff", "CapAmb")],
    "no_new_privs": status["NoNewPrivs"].strip(),
    "nproc": __import__("resource").getrlimit(__import__("resource").RLIMIT_NPROC),
    "root": sorted(os.listdir("/")),
    "run": sorted(os.listdir("/run")),
    "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "secrets": {p: readable(p) for p in SECRETS},
    "writable": {p: writable(p) for p in [os.environ["HOME"], os.environ["TMPDIR"], "/tmp",
                                          sys.prefix, "/usr", "/etc", "/", "/run/cloudlabs"]},
    "env": sorted(os.environ),
    "network": reaches(PORT),
    "sys_path": sys.path,
    "parent": os.getppid(),
    "grader": [m for m in sys.modules if m.split(".")[0] == "grader"],
    "bounding": status["CapBnd"].strip(),
}))
"""


@needs_bwrap
def test_kernel_sees_nothing_of_the_checkout_the_home_or_other_kernels(
    tmp_path, monkeypatch, launch
):
    monkeypatch.setenv("CLOUDLABS_GRADE_SECRET", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    (tmp_path / "secret.txt").write_text("host /tmp")
    out = tmp_path / "out"  # a --out folder nobody listed to hide
    out.mkdir()
    (out / "gradebook.db").write_text("grades")
    neighbour = workdir()  # another kernel's working directory, same run
    (neighbour / ".kernel-connection.json").write_text("{}")
    mine = Path(tempfile.mkdtemp(prefix="kernel-", dir=neighbour.parent))
    home = Path.home()
    interpreters = sandbox.interpreter_dirs()
    secrets_ = [ROOT / ".git", ROOT / "solutions", ROOT / "grader", ROOT / "pyproject.toml",
                tmp_path / "secret.txt", out / "gradebook.db", neighbour, "/etc/shadow",
                "/etc/gitconfig", "/var", "/home", "/opt", "/srv"]  # fmt: skip
    secrets_ += [p for p in home.iterdir() if not any(i.is_relative_to(p) for i in interpreters)]
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        source = PROBE.replace("SECRETS", repr([str(p) for p in secrets_]))
        source = source.replace("PORT", str(server.getsockname()[1]))
        report = last_json(run(notebook(source), cwd=mine, launch=launch))
        log = (mine / "kernel.log").read_text()
    assert not [p for p, seen in report["secrets"].items() if seen]
    assert report["uid"] != 0 and report["caps"] == ["0000000000000000"] * 3
    assert report["no_new_privs"] == "1"
    assert set(report["root"]) <= {
        "bin",
        "dev",
        "etc",
        "lib",
        "lib32",
        "lib64",
        "libx32",
        "proc",
        "run",
        "sbin",
        "tmp",
        "usr",
        *(p.parts[1] for p in interpreters),
    }
    assert report["run"] == ["cloudlabs"]
    assert max(report["pids"]) < 10  # its own PID namespace: the grader and others are not there
    writable = report["writable"]
    assert [p for p, ok in writable.items() if ok] == [str(mine), str(mine / "tmp"), "/tmp"]
    assert not [k for k in report["env"] if k.startswith(("CLOUDLABS_", "AWS_SECRET"))]
    assert report["network"]  # the emulator is reached on loopback
    assert not [p for p in report["sys_path"] if p in ("", ".", str(mine))]
    if os.geteuid() == 0:
        assert report["nproc"] == [sandbox.MAX_PROCESSES] * 2
    assert report["grader"] == []
    if launch is not None:  # forked: its parent is outside its PID namespace, no capability left
        assert report["parent"] == 0 and "forked no kernel" not in log
        assert report["bounding"] == "0000000000000000"
    else:
        assert report["parent"] == 1  # bwrap's init


@needs_bwrap
def test_hidden_paths_inside_what_the_kernel_sees_stay_hidden(launch):
    venv = Path(sys.prefix)
    hide = [venv / "bin" / "activate", venv / "include", Path("/usr/share/zoneinfo")]
    hide += [ROOT, Path.home()]  # they hold the interpreter: not hidden, and the kernel starts
    assert all(p.exists() for p in hide)
    source = (
        "import json, os\n"
        f"print(json.dumps([open({str(venv / 'bin' / 'activate')!r}).read(),"
        f" os.listdir({str(venv / 'include')!r}), os.listdir('/usr/share/zoneinfo')]))\n"
    )
    assert last_json(run(notebook(source), hide=hide, launch=launch)) == ["", [], []]


@needs_bwrap
def test_a_labs_setup_and_first_exercise_run_in_the_sandbox(emulator, launch):
    lab = nbu.read(ROOT / "solutions" / "storage" / "storage.ipynb")
    headings = [i for i, c in enumerate(lab.cells) if c.source.startswith("## Exercise")]
    lab.cells = lab.cells[: headings[1]]  # the parameters, the setup, exercise 1 and its tests
    assert {"parameters", "setup"} <= {t for c in lab.cells for t in nbu.tags(c)}
    assert any(nbu.is_solution(c) for c in lab.cells) and any(nbu.is_test(c) for c in lab.cells)
    parameters = {"endpoint_url": emulator.endpoint_url, "region": "us-east-1",
                  "account_id": new_account_id(), "prefix": "s" + secrets.token_hex(5)}  # fmt: skip
    execution = run(lab, parameters=parameters, launch=launch)
    assert not execution.events
    code = [c for c in execution.notebook.cells if c.cell_type == "code"]
    assert not [e for c in code for e in errors(c)]
    assert all(c.execution_count for c in code)


# -- the process limit -------------------------------------------------------------------------

FORK_BOMB = """
import errno, os, signal, time
children, stopped = [], None
try:
    for _ in range(1000):
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        children.append(pid)
except OSError as exc:
    stopped = errno.errorcode[exc.errno]
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
print(len(children), stopped)
"""


@needs_bwrap
@needs_root
def test_a_fork_bomb_stops_at_the_kernels_process_limit(launch):
    nb = notebook(FORK_BOMB, "print('still here')", setup="")
    execution = run(nb, extra_args=["--max-processes", "40"], launch=launch)
    forked, stopped = stdout(execution.notebook.cells[-2]).split()
    assert stopped == "EAGAIN" and 10 < int(forked) < 40  # the kernel's threads count too
    assert stdout(execution.notebook.cells[-1]) == "still here\n"


@needs_root
def test_each_working_directory_has_a_kernel_user_of_its_own(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    uid = sandbox.kernel_uid(first)
    assert uid == sandbox.kernel_uid(first) == first.stat().st_uid  # kept across restarts
    assert sandbox.kernel_uid(second) != uid
    assert sandbox.UID_BASE <= uid < sandbox.UID_BASE + sandbox.UID_COUNT


# -- nothing in the student's home breaks the kernel's start -----------------------------------

PLANT = """
import os, shutil
def plant(path, text):
    path = os.path.expanduser(os.path.expandvars(path))
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    except OSError as exc:
        print("refused:", exc)  # the sandbox did not even let it be written
"""
EXIT = "import os\nos._exit(3)\n"
RAISE = "raise RuntimeError('a student file ran')\n"
USER_SITE = f"~/.local/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
#: name -> (file, content): each one broke the kernel's start or the setup after a restart.
FILES = {
    "aws-config": ("~/.aws/config", "[default\nnot an ini file"),
    "aws-credentials": ("~/.aws/credentials", "[default\nnot an ini file"),
    "aws-models": ("~/.aws/models/s3/2006-03-01/service-2.json", "{not json"),
    "ipython-startup": ("~/.ipython/profile_default/startup/00-x.py", EXIT),
    "ipython-config": ("~/.ipython/profile_default/ipython_kernel_config.py", EXIT),
    "ipythondir-startup": ("$IPYTHONDIR/profile_default/startup/00-x.py", EXIT),
    "ipythondir-config": ("$IPYTHONDIR/profile_default/ipython_kernel_config.py", EXIT),
    "xdg-ipython": ("~/.config/ipython/profile_default/startup/00-x.py", EXIT),
    "user-site-pth": (f"{USER_SITE}/x.pth", "import os; os._exit(3)\n"),
    "user-site-usercustomize": (f"{USER_SITE}/usercustomize.py", EXIT),
    "sitecustomize": ("~/sitecustomize.py", EXIT),
    "usercustomize": ("~/usercustomize.py", EXIT),
    "shadowed-boto3": ("~/boto3.py", RAISE),
    "shadowed-ipykernel": ("~/ipykernel_launcher.py", EXIT),
}
IN_NONE_MODE = {"aws-config", "aws-credentials", "ipythondir-startup", "ipythondir-config",
                "ipython-startup", "user-site-pth", "sitecustomize", "shadowed-boto3"}  # fmt: skip


def survives(sabotage: str, *, mode: str, check: str = "print('alive')", cwd=None, launch=None):
    """Run the sabotage then kill the kernel: the grader restarts it and re-runs the setup."""
    source = PLANT + sabotage + "\nos._exit(1)\n"
    execution = run(notebook(source, check), mode=mode, cwd=cwd, launch=launch)
    kinds = [e.kind for e in execution.events]
    assert kinds == ["kernel-died"], execution.events  # not "setup-broken"
    last = execution.notebook.cells[-1]
    assert not errors(last), errors(last)
    return stdout(last)


@needs_bwrap
@pytest.mark.parametrize("name", sorted(FILES))
def test_student_files_in_the_home_do_not_break_the_kernel_bwrap(name, launch):
    path, text = FILES[name]
    assert survives(f"plant({path!r}, {text!r})", mode="bwrap", launch=launch) == "alive\n"


@pytest.mark.parametrize("name", sorted(IN_NONE_MODE))
def test_student_files_in_the_home_do_not_break_the_kernel_none(name):
    path, text = FILES[name]
    assert survives(f"plant({path!r}, {text!r})", mode="none") == "alive\n"


@pytest.mark.parametrize("mode", [pytest.param("bwrap", marks=needs_bwrap), "none"])
def test_a_temporary_directory_replaced_by_a_file_is_made_again(mode):
    sabotage = "shutil.rmtree(os.environ['TMPDIR'])\nplant('$TMPDIR', 'x')\n"
    check = "import os\nprint(os.path.isdir(os.environ['TMPDIR']))"
    assert survives(sabotage, mode=mode, check=check) == "True\n"


@pytest.mark.parametrize("mode", [pytest.param("bwrap", marks=needs_bwrap), "none"])
def test_the_launcher_never_writes_through_a_students_link(tmp_path, mode):
    """The launcher (the grader's user, root in CI) opens the kernel's log in the working
    directory: a link planted there must not make it write elsewhere."""
    target = tmp_path / "target"
    sabotage = (
        "try:\n"
        "    os.remove('kernel.log')\n"
        f"    os.symlink({str(target)!r}, 'kernel.log')\n"
        "except OSError as exc:\n"
        "    print('refused:', exc)\n"
    )
    cwd = workdir()
    survives(sabotage, mode=mode, cwd=cwd)
    assert not target.exists()
    assert stat.S_ISREG(os.lstat(cwd / "kernel.log").st_mode)


@needs_bwrap
def test_aws_files_and_ipython_dir_are_the_sandboxs(launch):
    source = (
        "import json, os\n"
        "keys = ['AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE', 'IPYTHONDIR', 'HOME']\n"
        "env = {k: os.environ[k] for k in keys}\n"
        "env['config'] = open(env['AWS_CONFIG_FILE']).read()\n"
        "env['flags'] = [__import__('sys').flags.safe_path, __import__('sys').flags.no_user_site]\n"
        "print(json.dumps(env))\n"
    )
    report = last_json(run(notebook(source), launch=launch))
    home = Path(report["HOME"])
    for key in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "IPYTHONDIR"):
        assert not Path(report[key]).is_relative_to(home)
    assert report["config"] == "" and report["flags"] == [True, 1]


@needs_bwrap
def test_an_interrupt_stops_the_cell_not_the_kernel_bwrap(launch):
    """The grader interrupts a hung evaluation before it restarts the kernel: in bwrap mode a
    SIGINT would reach bwrap and kill the kernel, so the kernelspec asks for a message."""
    interrupt(mode="bwrap", launch=launch)


def test_an_interrupt_stops_the_cell_not_the_kernel_none(process_watch):
    interrupt(mode="none", launch=None)


def interrupt(*, mode: str, launch) -> None:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    cwd = workdir()
    specs = KernelSpecManager()
    specs.kernel_dirs = [str(sandbox.write_kernelspec(
        cwd / ".kernels", mode=mode, memory_mb=2048, hide=[], workdir=cwd, forkserver=launch,
    ))]  # fmt: skip
    km = KernelManager(kernel_name=sandbox.KERNEL_NAME, kernel_spec_manager=specs)
    km.connection_file = str(cwd / ".kernel-connection.json")
    km.start_kernel()
    client = km.client()
    try:
        client.start_channels()
        client.wait_for_ready(timeout=60)
        msg_id = client.execute("import time\nprint('sleeping', flush=True)\ntime.sleep(60)")
        while client.get_iopub_msg(timeout=30)["content"].get("text") != "sleeping\n":
            pass
        km.interrupt_kernel()
        reply = client.get_shell_msg(timeout=30)  # (a late kernel_info reply may come first)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = client.get_shell_msg(timeout=30)
        reply = reply["content"]
        assert (reply["status"], reply["ename"]) == ("error", "KeyboardInterrupt")
        assert km.is_alive()
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
