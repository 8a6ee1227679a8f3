"""Kernels forked from a process whose imports are done, each into a sandbox of its own.

A kernel's process spends most of its start importing: ipykernel, IPython, jupyter_client, zmq,
then the lab's boto3. On two cores that is a third of what grading a submission costs. A class
run therefore starts one fork server (``python -m grader.forkserver``), which imports all of it
once and then forks a kernel for each request.

The sandbox is still bwrap's, one per kernel (:mod:`grader.sandbox`): for each kernel the
launcher starts bwrap with a placeholder command, which proves the sandbox is made, then sends
the fork server the sandbox's namespaces (mount, PID, IPC, UTS: open files of ``/proc/PID/ns``),
the kernel's output files and its settings. A child of the server joins those namespaces, forks
the kernel (the first process that is inside the sandbox's PID namespace), and reports its exit.
The kernel then does what the sandbox's own start does: a new session, the parent-death signal,
the resource limits, no capabilities even in its bounding set, its own user id for good, no new
privileges, the working directory and environment of the kernel, and nothing open but its three
standard files. It cannot see the server, the launcher or other kernels (its PID namespace), and
it dies with its sandbox (when the launcher or the grader ends, bwrap's init ends, and the kernel
gets SIGKILL).

What a kernel inherits from the server is only the server's memory at the fork: imported modules
and nothing else. The server never reads a request (its child does, after the fork), so no
kernel's settings reach a later kernel, and the server runs with the kernels' own environment.
The grader's modules are dropped from the kernel's ``sys.modules`` before it starts.

Used when the sandbox is bwrap and the grader is root (joining namespaces needs it); anywhere
else, and whenever the server does not answer, the launcher starts the kernel the usual way.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from grader import sandbox

#: What every kernel imports while it starts (ipykernel's own start), besides a lab's imports.
KERNEL_MODULES = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell",
                  "ipykernel.debugger", "IPython.core.interactiveshell", "jupyter_client.session")  # fmt: skip
#: How long the server may take to import everything (past it, the run starts kernels itself).
READY_SECONDS = 60.0
#: The namespaces a kernel joins, in order (the mount namespace last: it changes the root).
NAMESPACES = ("ipc", "uts", "pid", "mnt")
_PR_SET_PDEATHSIG, _PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS = 1, 24, 38
_LIBC = ctypes.CDLL(None, use_errno=True)


def usable(mode: str) -> bool:
    """Whether kernels can be forked for this sandbox mode here."""
    return mode == "bwrap" and os.geteuid() == 0 and sys.platform == "linux"


class ForkServer:
    """The fork server of one grading run (its socket lives in ``parent``, which only the grader
    can enter); :meth:`close` ends it. Kernels forked from it live on until their own end."""

    def __init__(
        self, *, parent: Path, preload: Sequence[str] = (), services: Sequence[str] = ()
    ) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="forkserver-", dir=parent))
        self.socket = self.directory / "socket"
        env = {k: v for k, v in os.environ.items() if k in sandbox.KEPT_ENV}  # a kernel's own
        env |= {"HOME": str(self.directory), "PYTHONWARNINGS": "ignore", "PYTHONSAFEPATH": "1",
                "PYTHONNOUSERSITE": "1"}  # fmt: skip
        argv = [sys.executable, "-m", "grader.forkserver", "--socket", str(self.socket)]
        self._process = subprocess.Popen(
            [*argv, *(f"--preload={m}" for m in preload), *(f"--service={s}" for s in services)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd=self.directory, env=env, start_new_session=True,
            preexec_fn=_die_with_parent,
        )  # fmt: skip
        assert self._process.stdout is not None
        # one line once the imports are done and the socket listens (none if it failed)
        answered, _, _ = select.select([self._process.stdout], [], [], READY_SECONDS)
        self.ready = bool(answered) and self._process.stdout.readline().strip() == b"ready"

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._process.kill()
        self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        with contextlib.suppress(OSError):
            self.socket.unlink()
        with contextlib.suppress(OSError):
            self.directory.rmdir()

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start(
    *, mode: str, parent: Path | None, preload: Sequence[str], services: Sequence[str] = ()
) -> ForkServer | None:
    """A fork server for kernels of this sandbox mode, or None where there can be none."""
    if parent is None or not usable(mode):
        return None
    server = ForkServer(parent=parent, preload=preload, services=services)
    if not server.ready:
        server.close()
        return None
    return server


# -- the launcher's side (grader.sandbox, outside the sandbox) ------------------------------------
#: The sandbox's placeholder: it says the sandbox is made, then waits to be killed with it.
HOLDER = ("/bin/sh", "-c", "echo ready && exec sleep infinity")


def launch(
    path: Path, *, bwrap: Callable[[list[str]], list[str]], env: dict[str, str], log: int,
    pass_fds: Sequence[int], settings: dict,
) -> int | None:  # fmt: skip
    """Make a sandbox with ``bwrap`` (its command line for a given command), have the server at
    ``path`` fork the kernel into it, and wait for the kernel's end: its exit status, or None when
    no kernel was forked (the caller starts one itself). The sandbox ends on return."""
    info_r, info_w = os.pipe()
    ready_r, ready_w = os.pipe()
    argv = bwrap(list(HOLDER))
    process = subprocess.Popen(
        [argv[0], "--info-fd", str(info_w), *argv[1:]], env=env, stdin=subprocess.DEVNULL,
        stdout=ready_w, stderr=log, pass_fds=[info_w, *pass_fds], preexec_fn=_die_with_parent,
    )  # fmt: skip
    os.close(info_w)
    os.close(ready_w)
    init = None  # the sandbox's init (a pidfd: its pid could be reused once it ended)
    try:
        info = _json(_read_all(info_r))  # bwrap writes it, then closes it, before the command runs
        if os.read(ready_r, 6) != b"ready\n" or not isinstance(info.get("child-pid"), int):
            return None
        init = os.pidfd_open(info["child-pid"])
        with open(os.devnull, "rb") as stdin:
            fds = [stdin.fileno(), log, log]
            return run(path, sandbox_pid=info["child-pid"], fds=fds, settings=settings)
    except OSError:
        return None
    finally:
        if init is not None:  # its end ends everything in the sandbox, the kernel too
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(init, signal.SIGKILL)
            os.close(init)
        process.kill()
        process.wait()
        os.close(info_r)
        os.close(ready_r)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _json(data: bytes) -> dict:
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def run(path: Path, *, sandbox_pid: int, fds: Sequence[int], settings: dict) -> int | None:
    """Have the server at ``path`` fork a kernel into the sandbox whose init is ``sandbox_pid``,
    with ``fds`` as its standard files, and wait for its end: its exit status, or None when the
    server did not fork one (the caller starts the kernel itself)."""
    namespaces = [os.open(f"/proc/{sandbox_pid}/ns/{name}", os.O_RDONLY) for name in NAMESPACES]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as conn:  # whole messages
            try:
                # through the directory's fd: a socket's path may be at most 107 bytes long
                where = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
                try:
                    conn.connect(f"/proc/self/fd/{where}/{path.name}")
                finally:
                    os.close(where)
                socket.send_fds(conn, [json.dumps(settings).encode()], [*fds, *namespaces])
            except OSError:
                return None
            if conn.recv(64) != b"forked":
                return None
            status = conn.recv(64)  # empty if the server's child died before the kernel ended
            return int(status) if status.lstrip(b"-").isdigit() else 1
    finally:
        for fd in namespaces:
            os.close(fd)


# -- the server -----------------------------------------------------------------------------------
def _die_with_parent() -> None:
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _serve(path: Path) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    os.chdir(path.parent)  # a socket's path may be at most 107 bytes long: bound by its name
    listener.bind(path.name)
    os.chmod(path.name, 0o600)
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the request handlers are not waited for
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        conn, _ = listener.accept()
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code = 1
            try:
                code = _handle(conn)
            finally:
                os._exit(code)
        conn.close()


def _handle(conn: socket.socket) -> int:
    """One request, in a child of the server: join the sandbox, fork the kernel, report its end."""
    message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3 + len(NAMESPACES))
    settings = json.loads(message)
    stdio, namespaces = fds[:3], fds[3:]
    if len(stdio) != 3 or len(namespaces) != len(NAMESPACES):
        return 1
    for fd in namespaces:
        _check(_LIBC.setns(fd, 0), "setns")
        os.close(fd)
    os.chdir("/")
    kernel = os.fork()
    if kernel == 0:
        code = 1
        try:
            conn.close()
            code = _kernel(settings, stdio)
        except BaseException:
            traceback.print_exc()  # into the kernel's log, once its standard files are set
        finally:
            os._exit(code)
    for fd in stdio:
        os.close(fd)
    conn.sendall(b"forked")
    _, status = os.waitpid(kernel, 0)
    with contextlib.suppress(OSError):
        conn.sendall(b"%d" % os.waitstatus_to_exitcode(status))
    return 0


def _kernel(settings: dict, stdio: list[int]) -> int:
    """Become the sandboxed kernel (as bwrap and the sandbox's start would make it) and run it."""
    os.setsid()
    _die_with_parent()
    for target, fd in enumerate(stdio):
        os.dup2(fd, target)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    sandbox._limit(settings["memory_mb"], settings["max_processes"])
    for cap in range(64):  # the bounding set too, as bwrap --cap-drop ALL does
        if _LIBC.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break
    uid = int(settings["uid"])
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    _check(_LIBC.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    os.chdir(settings["cwd"])
    os.umask(settings["umask"])
    os.environ.clear()
    os.environ.update(settings["env"])
    tempfile.tempdir = None  # read TMPDIR again
    for name in [n for n in sys.modules if n == "grader" or n.startswith("grader.")]:
        del sys.modules[name]
    sys.argv = ["ipykernel_launcher", *settings["argv"]]
    from ipykernel import kernelapp

    try:
        kernelapp.launch_new_instance()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m grader.forkserver")
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--preload", action="append", default=[], help="a module to import")
    parser.add_argument("--service", action="append", default=[], help="an AWS service to load")
    args = parser.parse_args(argv)
    _die_with_parent()
    for name in (*KERNEL_MODULES, *args.preload):
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    if args.service:
        from grader import botocache

        botocache.warm(args.service)
    _serve(args.socket)


if __name__ == "__main__":
    main()
