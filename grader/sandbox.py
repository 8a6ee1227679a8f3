"""Where student code runs: a Jupyter kernel behind limits, and behind bubblewrap when available.

Modes (``CLOUDLABS_GRADE_SANDBOX``):

- ``bwrap``: an allow-list. The kernel sees, read-only, the system directories (``/usr`` and the
  ``/bin``, ``/sbin``, ``/lib*`` links), the few ``/etc`` files a Python process needs
  (:data:`ETC_FILES`; ``/etc/passwd`` and ``/etc/group`` are made up, naming only itself), the
  course interpreter's installation (``sys.base_prefix``) and virtualenv (``sys.prefix``: the
  checkout's ``.venv``, that directory alone). Its working directory is the one writable place
  kept across kernel restarts (its ``HOME`` and ``TMPDIR``); ``/tmp`` and ``/dev/shm`` are private
  and new at every kernel start. Nothing else exists for it: not the rest of the checkout (lab
  sources, ``.git``, results), not the grader's home, not the host's ``/tmp``, not the other
  kernels' working directories, not ``/run``, ``/var`` or ``/home``. It has its own PID, IPC and
  UTS namespaces (it cannot see or signal the grader, the emulator or other kernels), a new
  session, no capabilities, and dies with the grader. It shares the network, which it needs to
  reach the emulator on loopback. When the grader runs as root, the kernel runs as a user id of
  its own (:func:`kernel_uid`), which is what makes the process limit work.
- ``none``: the kernel runs as the grader's user and can read what the grader can. Only the limits
  below apply. Use it only for trusted notebooks (your own, or a self-check).
- ``auto`` (default): ``bwrap`` when the ``bwrap`` command exists, else ``none`` (and the report
  says so).

Both modes apply resource limits: address space (``memory_mb``), no core files, a 256 MiB cap on
any file written; ``bwrap`` run by root adds a cap of :data:`MAX_PROCESSES` processes and threads
(``RLIMIT_NPROC`` is counted per real user id and not enforced for root, hence the kernel's own
user id). Cross-account isolation does not depend on the sandbox: each submission gets an
unguessable account id and prefix, and the emulator has no endpoint that lists accounts.

The kernel's ``HOME`` survives restarts within a submission, so nothing the kernel reads at start
comes from it: AWS's config and credentials files are empty read-only files, ``~/.aws`` is an
empty read-only directory (``bwrap``; botocore would load service models from ``~/.aws/models``),
IPython's and Jupyter's directories, matplotlib's and the XDG ones are new at every start, there
is no user site-packages directory and the working directory is not on ``sys.path``
(``PYTHONSAFEPATH``). What a student's code writes in its home can break only that student's
later cells, never the kernel's start or the lab's setup cells.

This module is also the kernel's launcher: ``python -m grader.sandbox [options] -- <kernel argv>``.
It ends in ``exec``: the kernel manager's process is the kernel (``none``) or ``bwrap``. No kernel
outlives the grader: in ``none`` mode it gets SIGKILL when the grader's thread that started it
ends (``PR_SET_PDEATHSIG``) and ipykernel also watches ``JPY_PARENT_PID``; in ``bwrap`` mode
``--die-with-parent`` does the same (the kernel cannot see the grader's pid there). Ending the
kernel when a submission is done is the kernel manager's job (:func:`grader.execute.execute`).
A bwrap kernel is interrupted by a message (``interrupt_mode``): a SIGINT would reach bwrap, which
dies of it, not the kernel.

Where the grader is not root, ``bwrap`` runs unprivileged (in a user namespace): the kernel keeps
the grader's user id and there is no process limit (``RLIMIT_NPROC`` would count all the grader's
processes). A cgroup ``pids.max`` would be another way; it needs a writable cgroup tree and someone
to remove the group afterwards, which a launcher that ends in ``exec`` is not.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import json
import os
import resource
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from grader.errors import ConfigError

KERNEL_NAME = "cloudlabs-sandbox"
#: Environment variables a kernel keeps; everything else (the grader's settings, credentials) goes.
KEPT_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "PYTHONWARNINGS")
#: Processes and threads one kernel may have at once (bwrap mode, grader running as root). An
#: idle kernel has about ten threads; boto3's transfers add ten per transfer.
MAX_PROCESSES = 256
#: Where the kernels' own user ids come from (bwrap mode, grader running as root): far above any
#: real user's or container's subordinate ids.
UID_BASE, UID_COUNT = 1_900_000_000, 100_000_000
#: System directories the kernel sees read-only (the ones that are links are recreated as links).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: What of /etc it sees read-only: the dynamic loader's cache, name resolution, time zone,
#: certificates, MIME types, the alternatives links of /usr/bin.
ETC_FILES = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "hosts", "host.conf",
    "nsswitch.conf", "resolv.conf", "gai.conf", "protocols", "services", "mime.types",
    "ssl/certs", "ssl/openssl.cnf", "pki/tls/certs", "pki/tls/openssl.cnf", "pki/ca-trust",
    "alternatives", "os-release",
)  # fmt: skip
#: Inside the sandbox: the read-only files the launcher makes for each kernel start.
RUN_DIR = Path("/run/cloudlabs")
#: Size of the private /tmp and /dev/shm (they live in memory).
SCRATCH_BYTES = 256 * 2**20

# Run by the course interpreter inside the sandbox, as root without other capabilities than
# CAP_SETUID and CAP_SETGID: become the kernel's user for good, enter its working directory, start
# the kernel. (Changing user clears this process's parent-death signal; bwrap's init, the parent,
# keeps its own, and when it dies the namespace and so the kernel die with it.)
_BECOME = (
    "import os, sys\n"
    "uid = int(sys.argv[1])\n"
    "os.setgroups([])\n"
    "os.setresgid(uid, uid, uid)\n"
    "os.setresuid(uid, uid, uid)\n"
    "os.chdir(sys.argv[2])\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


def resolve_mode(mode: str) -> str:
    if mode == "auto":
        return "bwrap" if shutil.which("bwrap") else "none"
    if mode == "bwrap" and not shutil.which("bwrap"):
        raise ConfigError(
            "the bwrap sandbox was requested but bubblewrap is not installed",
            fix="install it (Debian: `apt-get install bubblewrap`; `make setup` does this as root) "
            "or set CLOUDLABS_GRADE_SANDBOX=none for trusted notebooks",
        )
    if mode not in {"bwrap", "none"}:
        raise ConfigError(f"unknown sandbox mode {mode!r}", fix="use 'auto', 'bwrap' or 'none'")
    return mode


def work_root() -> Path:
    """A new directory for one grading run's kernel working directories (a sandboxed kernel sees
    none of them but its own)."""
    parent = Path(tempfile.gettempdir()) / "cloudlabs-work"
    parent.mkdir(mode=0o700, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=parent))


def write_kernelspec(
    directory: Path, *, mode: str, memory_mb: int, hide: list[Path], workdir: Path,
    preload: Sequence[str] = (), forkserver: Path | None = None,
) -> Path:  # fmt: skip
    """A kernelspec ``cloudlabs-sandbox`` in ``directory`` whose kernel runs behind this launcher.

    ``hide``: paths the kernel must not read. The allow-list already leaves out everything but the
    system, the interpreter and the working directory; a path is still hidden when it lies in one
    of those (a checkout under /usr, say). ``preload``: modules the kernel imports while it starts
    (a lab's imports), in a namespace of their own: the notebook finds them in ``sys.modules``
    and no name of its own is set. ``forkserver``: the socket of a :mod:`grader.forkserver` to
    fork the kernel from."""
    spec_dir = directory / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "grader.sandbox", "--mode", mode, "--memory-mb", str(memory_mb)]
    argv += ["--workdir", str(workdir)]
    for path in hide:
        argv += ["--hide", str(path)]
    if forkserver is not None:
        argv += ["--forkserver", str(forkserver)]
    argv += ["--", sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    # no SQLite history in the kernel's home: nothing reads it, and it costs every cell a write
    argv.append("--HistoryManager.enabled=False")
    if preload:
        argv.append(f"--IPKernelApp.exec_lines={json.dumps([preload_line(preload)])}")
    spec = {"argv": argv, "display_name": "cloudlabs sandbox", "language": "python"}
    if mode == "bwrap":  # a signal would reach bwrap (which dies of it), not the kernel
        spec["interrupt_mode"] = "message"
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return directory


def preload_line(modules: Sequence[str]) -> str:
    """One line of Python that imports ``modules`` (those that exist) and defines nothing."""
    code = (
        "import importlib\n"
        f"for name in {tuple(modules)!r}:\n"
        "    try:\n        importlib.import_module(name)\n"
        "    except Exception:\n        pass\n"
    )
    return f"exec({code!r}, {{}})"


def _limit(memory_mb: int, processes: int | None) -> None:
    memory = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 2**20, 256 * 2**20))
    if processes is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))


def interpreter_dirs() -> list[Path]:
    """The course interpreter: its installation and its virtualenv (as named and as resolved)."""
    found: list[Path] = []
    for name in (sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix):
        for path in (Path(name).absolute(), Path(name).resolve()):
            if path not in found:
                found.append(path)
    return found


@functools.cache
def _bwrap_has_size() -> bool:
    """bwrap >= 0.7 can cap a tmpfs (``--size``)."""
    try:
        text = subprocess.run(["bwrap", "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return "--size" in text.stdout + text.stderr


class _Bwrap:
    """bwrap's arguments, creating missing parent directories world-readable (bwrap would make
    them 0700, which the kernel's own user could not cross)."""

    def __init__(self) -> None:
        self.args = ["bwrap"]
        self.made: set[Path] = {Path("/")}  #: paths that exist in the sandbox
        self.trees: list[Path] = []  #: host directories bound whole: all below them exists

    def exists(self, path: Path) -> bool:
        return path in self.made or any(path.is_relative_to(t) for t in self.trees)

    def _parents(self, dest: Path) -> None:
        for parent in reversed(dest.parents):
            if not self.exists(parent):
                self.args += ["--perms", "0755", "--dir", str(parent)]
                self.made.add(parent)

    def bind(self, src: Path, dest: Path | None = None, *, writable: bool = False) -> None:
        dest = dest or src
        self._parents(dest)
        self.args += ["--bind" if writable else "--ro-bind", str(src), str(dest)]
        self.made.add(dest)
        if src.is_dir():
            self.trees.append(dest)

    def symlink(self, target: str, dest: Path) -> None:
        self._parents(dest)
        self.args += ["--symlink", target, str(dest)]
        self.made.add(dest)

    def tmpfs(self, dest: Path, perms: str, size: int | None = None) -> None:
        self._parents(dest)
        self.args += ["--perms", perms]
        if size and _bwrap_has_size():
            self.args += ["--size", str(size)]
        self.args += ["--tmpfs", str(dest)]
        self.made.add(dest)

    def file(self, fd: int, dest: Path) -> None:
        """A read-only file with what ``fd`` holds."""
        self._parents(dest)
        self.args += ["--perms", "0444", "--file", str(fd), str(dest)]
        self.made.add(dest)


def bwrap_argv(
    kernel: list[str],
    *,
    hide: list[Path],
    workdir: Path,
    uid: int | None = None,
    files: dict[Path, int] | None = None,
    binds: Sequence[tuple[Path, Path, bool]] = (),
    scratch: Sequence[Path] = (),
    chdir: Path | None = None,
) -> list[str]:
    """bwrap's command line for ``kernel`` (see the module docstring). ``uid``: the kernel's user
    id, when the grader is root; ``files``: read-only files to make, path -> a readable fd;
    ``binds``: more host directories to show, (host path, path inside, writable); ``scratch``:
    empty folders anyone inside may write (1777, in memory), made before the binds; ``chdir``:
    run ``kernel`` there as it is, not as the kernel's user (the fork server's placeholder)."""
    box = _Bwrap()
    # The private scratch first: a checkout or a working directory under the host's /tmp is
    # bound on top of it, never hidden by it.
    box.args += ["--dev", "/dev", "--proc", "/proc"]
    box.made |= {Path("/dev"), Path("/proc")}
    box.tmpfs(Path("/dev/shm"), "1777", SCRATCH_BYTES)
    box.tmpfs(Path("/tmp"), "1777", SCRATCH_BYTES)
    for name in SYSTEM_DIRS:
        path = Path(name)
        if path.is_symlink():
            box.symlink(os.readlink(path), path)
        elif path.is_dir():
            box.bind(path)
    interpreters = interpreter_dirs()
    for path in interpreters:
        if path.is_dir() and not box.exists(path):
            box.bind(path.resolve(), path)
    for name in ETC_FILES:
        path = Path("/etc") / name
        if path.exists() and not box.exists(path):
            box.bind(path)
    # Paths to hide matter only where the kernel sees the host: inside a directory bound whole.
    for path in (p.absolute() for p in hide):
        if not any(path.is_relative_to(t) for t in box.trees):
            continue
        if any(i.is_relative_to(path) for i in [*interpreters, workdir]):
            continue  # hiding it would hide the kernel's own Python or working directory
        if path.is_dir():
            box.args += ["--perms", "0555", "--tmpfs", str(path)]
        elif path.exists():  # (not /dev/null: device files cannot be opened on bind mounts)
            box.args += ["--perms", "0444", "--ro-bind-data", str(_data_fd(b"")), str(path)]
    box.bind(workdir, writable=True)
    for dest in scratch:
        box.tmpfs(dest, "1777", SCRATCH_BYTES)
    for src, dest, writable in binds:
        box.bind(src, dest, writable=writable)
    box.tmpfs(workdir / ".aws", "0555")  # botocore reads ~/.aws/models, whatever AWS_* say
    for dest, fd in sorted((files or {}).items()):
        box.file(fd, dest)
    box.args += ["--remount-ro", "/"]  # the sandbox's root and what was made in it
    # Not --as-pid-1: a namespace's init that is the kernel does not get the parent-death signal.
    box.args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"]
    box.args += ["--new-session", "--cap-drop", "ALL"]
    if chdir is not None:
        return [*box.args, "--chdir", str(chdir), "--", *kernel]
    if uid is not None:  # root without DAC_OVERRIDE cannot enter the kernel's 0700 directory
        box.args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--"]
        become = [sys.executable, "-I", "-S", "-c", _BECOME, str(uid), str(workdir)]
        return [*box.args, *become, *kernel]
    return [*box.args, "--chdir", str(workdir), "--", *kernel]


def kernel_uid(workdir: Path) -> int:
    """The user id the kernel of ``workdir`` runs as: one of its own, chosen at random when the
    kernel first starts and kept (as the directory's owner) across restarts. Its own, because
    RLIMIT_NPROC counts every process of a user: kernels sharing one would share one limit."""
    owner = os.lstat(workdir).st_uid
    if UID_BASE <= owner < UID_BASE + UID_COUNT:
        return owner
    uid = UID_BASE + secrets.randbelow(UID_COUNT)
    os.chown(workdir, uid, uid, follow_symlinks=False)
    return uid


def _remove(path: Path) -> None:
    """Remove whatever is at ``path`` (a student's file, link or directory), never following
    links."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path)
        else:
            path.unlink()


def _own_dir(path: Path, uid: int | None) -> None:
    """``path`` is a real directory (not a link a student left there), owned by ``uid``."""
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            path.unlink()
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
        if uid is not None:
            os.chown(path, uid, uid, follow_symlinks=False)


def _fresh_dir(path: Path) -> Path:
    """An empty directory at ``path``, whatever was there."""
    _remove(path)
    path.mkdir(mode=0o700)
    return path


def _open_log(path: Path) -> int:
    """The kernel's log, opened without following a link a student may have left in its place."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags, 0o600)
        if stat.S_ISREG(os.fstat(fd).st_mode) and os.fstat(fd).st_nlink == 1:
            return fd
        os.close(fd)
    except OSError:
        pass
    _remove(path)
    return os.open(path, flags | os.O_EXCL, 0o600)


def _read_private(path: Path) -> bytes:
    """A file the grader wrote (the connection file): a regular file of the grader's, not a link
    or a file the student put in its place."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_nlink != 1:
            raise SystemExit(f"cloudlabs sandbox: {path} is not the grader's file")
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read()
    finally:
        os.close(fd)


def _data_fd(data: bytes) -> int:
    """A readable, inheritable fd holding ``data`` (bwrap copies it into the sandbox)."""
    read, write = os.pipe()
    with os.fdopen(write, "wb") as f:
        f.write(data)  # small: fits the pipe's buffer
    os.set_inheritable(read, True)
    return read


def _die_with_parent() -> None:
    """The kernel gets SIGKILL when the grader (the launcher's parent) ends (``none`` mode;
    bwrap does this with --die-with-parent)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    parent = os.environ.get("JPY_PARENT_PID", "")
    if parent.isdigit() and int(parent) != os.getppid():
        raise SystemExit("cloudlabs sandbox: the grader is gone")


def kernel_env(*, home: Path, fresh: Path, aws: Path, keep_parent: bool) -> dict[str, str]:
    """The kernel's environment. ``fresh``: a directory new at every kernel start; ``aws``: the
    directory of the empty read-only AWS config and credentials files."""
    env = {k: v for k, v in os.environ.items() if k in KEPT_ENV}
    # Not JPY_PARENT_PID in bwrap mode: in its own PID namespace the kernel cannot see the grader
    # and would think it had exited; bwrap --die-with-parent ends the kernel with the grader.
    if keep_parent and "JPY_PARENT_PID" in os.environ:
        env["JPY_PARENT_PID"] = os.environ["JPY_PARENT_PID"]
    env.setdefault("PYTHONWARNINGS", "ignore")
    env.update(
        HOME=str(home),
        PWD=str(home),
        TMPDIR=str(home / "tmp"),
        AWS_CONFIG_FILE=str(aws / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(aws / "aws-credentials"),
        IPYTHONDIR=str(fresh / "ipython"),
        JUPYTER_CONFIG_DIR=str(fresh / "jupyter-config"),
        JUPYTER_DATA_DIR=str(fresh / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(fresh / "jupyter-runtime"),
        MPLCONFIGDIR=str(fresh / "matplotlib"),
        XDG_CONFIG_HOME=str(fresh / "config"),
        XDG_CACHE_HOME=str(fresh / "cache"),
        XDG_DATA_HOME=str(fresh / "share"),
        XDG_STATE_HOME=str(fresh / "state"),
        PYTHONNOUSERSITE="1",
        PYTHONSAFEPATH="1",
    )
    return env


def _passwd(uid: int, home: Path, name: str = "student") -> tuple[bytes, bytes]:
    passwd = (
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"{name}:x:{uid}:{uid}:{name}:{home}:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
    group = f"root:x:0:\n{name}:x:{uid}:\nnogroup:x:65534:\n"
    return passwd.encode(), group.encode()


def _forked(
    args: argparse.Namespace, argv: list[str] | None, *, box: functools.partial, env: dict,
    log: int, files: dict[Path, int], uid: int, kernel: list[str],
) -> None:  # fmt: skip
    """Run the kernel forked by the fork server into a sandbox of its own, and exit with its
    status; when the server forks none, start this launcher again without it."""
    from grader import forkserver

    _die_with_parent()  # this launcher stays, as the sandbox's parent, until the kernel ends
    mask = os.umask(0o077)
    os.umask(mask)
    settings = {"uid": uid, "cwd": str(args.workdir.absolute()), "env": env, "umask": mask,
                "argv": kernel[3:], "memory_mb": args.memory_mb, "max_processes": args.max_processes}  # fmt: skip
    status = forkserver.launch(
        args.forkserver, bwrap=functools.partial(box, chdir=Path("/")), env=env, log=log,
        pass_fds=list(files.values()), settings=settings,
    )  # fmt: skip
    if status is not None:
        raise SystemExit(status)
    os.write(log, b"cloudlabs sandbox: the fork server forked no kernel; starting it here\n")
    again = sys.argv[1:] if argv is None else argv
    at = again.index("--forkserver")
    again = [*again[:at], *again[at + 2 :]]
    os.execv(sys.executable, [sys.executable, "-m", "grader.sandbox", *again])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m grader.sandbox")
    parser.add_argument("--mode", choices=["bwrap", "none"], required=True)
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--hide", type=Path, action="append", default=[])
    parser.add_argument("--max-processes", type=int, default=MAX_PROCESSES)
    parser.add_argument("--bind", action="append", default=[], metavar="SRC:DEST",
                        help="show a host directory read-only (bwrap)")  # fmt: skip
    parser.add_argument("--bind-rw", action="append", default=[], metavar="SRC:DEST",
                        help="show a host directory writable (bwrap)")  # fmt: skip
    parser.add_argument("--scratch", type=Path, action="append", default=[], metavar="DEST",
                        help="an empty writable folder for everyone, made before the binds (bwrap)")  # fmt: skip
    parser.add_argument("--user-name", default="student", metavar="NAME",
                        help="the user's name inside the sandbox (its /etc/passwd)")  # fmt: skip
    parser.add_argument("--keep-env", action="append", default=[], metavar="NAME",
                        help="keep this environment variable (a server's settings)")  # fmt: skip
    parser.add_argument("--forkserver", type=Path, metavar="SOCKET",
                        help="fork the kernel from this server (grader.forkserver; bwrap, root)")  # fmt: skip
    parser.add_argument("kernel", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    kernel = args.kernel[1:] if args.kernel[:1] == ["--"] else args.kernel
    workdir = args.workdir.absolute()
    sandboxed = args.mode == "bwrap"
    uid = kernel_uid(workdir) if sandboxed and os.geteuid() == 0 else None
    _own_dir(workdir / "tmp", uid)
    log = _open_log(workdir / "kernel.log")
    if sandboxed:
        _own_dir(workdir / ".aws", uid)  # bwrap mounts an empty ~/.aws there: not on a link
        files: dict[Path, int] = {RUN_DIR / "aws-config": _data_fd(b""),
                                  RUN_DIR / "aws-credentials": _data_fd(b"")}  # fmt: skip
        passwd, group = _passwd(os.getuid() if uid is None else uid, workdir, args.user_name)
        files[Path("/etc/passwd")], files[Path("/etc/group")] = _data_fd(passwd), _data_fd(group)
        if "-f" in kernel[:-1]:  # the connection file: copied in, read-only, out of HOME
            at = kernel.index("-f") + 1
            files[RUN_DIR / "connection.json"] = _data_fd(_read_private(Path(kernel[at])))
            kernel = [*kernel[:at], str(RUN_DIR / "connection.json"), *kernel[at + 1 :]]
        env = kernel_env(home=workdir, fresh=Path("/tmp"), aws=RUN_DIR, keep_parent=False)
        binds = [(Path(s), Path(d), False) for s, d in (b.split(":", 1) for b in args.bind)]
        binds += [(Path(s), Path(d), True) for s, d in (b.split(":", 1) for b in args.bind_rw)]
        box = functools.partial(bwrap_argv, hide=args.hide, workdir=workdir, files=files,
                                binds=binds, scratch=args.scratch)  # fmt: skip
        command = box(kernel, uid=uid)
        forked = args.forkserver and uid is not None and kernel[1:3] == ["-m", "ipykernel_launcher"]
    else:
        fresh = _fresh_dir(workdir / ".cloudlabs-kernel")
        for name in ("aws-config", "aws-credentials"):
            (fresh / name).touch(mode=0o444)
        env = kernel_env(home=workdir, fresh=fresh, aws=fresh, keep_parent=True)
        command = kernel
        forked = False
        _die_with_parent()
    env |= {name: os.environ[name] for name in args.keep_env if name in os.environ}
    # RLIMIT_NPROC only where it counts this kernel alone: its own user id.
    _limit(args.memory_mb, args.max_processes if uid is not None else None)
    os.chdir(workdir)
    # The kernel's own chatter goes to a log in its working directory, not the grader's terminal.
    os.dup2(log, 1)
    os.dup2(log, 2)
    if forked:
        _forked(args, argv, box=box, env=env, log=log, files=files, uid=uid, kernel=kernel)
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main()
