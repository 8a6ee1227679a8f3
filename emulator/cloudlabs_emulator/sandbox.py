"""Bubblewrap sandboxes and resource limits for Lambda execution environments.

:class:`cloudlabs_emulator.lambda_executor.LocalRuntimeExecutor` starts each execution environment
through :meth:`Bubblewrap.command`. The sandbox sees an allow-list of the host's filesystem, all of
it read-only: the system directories (``/usr``, ``/bin``, ``/lib*``, ``/sbin``), a few files of
``/etc`` (name resolution, users, time zone, CA certificates), the emulator's interpreter
(``sys.base_prefix`` and the virtualenv ``sys.prefix``), this package (the runtime module is
imported from it), and the function's unzipped code and layers at their own paths. ``/tmp`` is a
private tmpfs of the function's ephemeral-storage size and is ``HOME``; ``/dev`` and ``/proc`` are
fresh. Nothing else exists in it: not the checkout, the emulator's state or temporary directory,
other functions' code, ``/root``, ``/home`` or the host's ``/tmp``. The environment has its own
pid, IPC and UTS namespaces and session. bwrap dies with the emulator (``--die-with-parent``) and
the kernel kills every process of the pid namespace when its first process ends, so stopping the
environment ends its whole tree.

Network. The environment has its own network namespace (``--unshare-net``): ``lo`` only (bwrap
brings it up), no route anywhere, and not the host's loopback services (other local servers, the
grader's kernels' ports) nor its abstract unix sockets. Its one way out is :data:`EMULATOR_SOCKET`,
a unix socket of the executor's (:class:`SandboxNetwork`: one per environment, in a private
directory of the emulator's state, bound here read-write) whose every connection the executor
forwards to the gateway; the runtime forwards the gateway's port on ``127.0.0.1`` in here to it
(:class:`cloudlabs_emulator.lambda_runtime.Relay`). ``/etc/hosts`` is the executor's: loopback
names and LocalStack's host name (``LOCALSTACK_HOST``) are ``127.0.0.1``. There is no DNS.

Privileges. Run as root (as the emulator is in the course's containers), bwrap keeps only
CAP_SETUID and CAP_SETGID for the runtime, which switches to an unprivileged uid and gid of its own
(one per environment, see :data:`UIDS`) before it reads anything the function controls: that
clears every capability, lets ``RLIMIT_NPROC`` count (the kernel never applies it to uid 0) and
keeps environments from signalling each other. Run by another user, bwrap puts the sandbox in a
new user namespace (``--unshare-user``), where ``RLIMIT_NPROC`` counts that namespace's processes.

Limits (:class:`Limits`, applied by the runtime to itself before the function's code loads):

- address space ``MemorySize + 256 MiB``. Measured with Python 3.13: the runtime with boto3 and a
  client call maps 72 MiB (it starts under a 96 MiB limit); each thread adds an 8 MiB stack and
  glibc would add a 64 MiB malloc arena per thread (``MALLOC_ARENA_MAX=2`` caps them at two; a
  pool of 10 threads then peaks at 220 MiB). So a 128 MB function gets 384 MiB, and its handler
  can hold about 310 MiB of data before ``MemoryError``. An address-space limit is per process and
  counts mappings, not resident memory: it is not AWS's cgroup, which would kill at 128 MB;
- CPU time ``timeout + 10 s`` per process, soft and hard (SIGKILL). Warm environments add up CPU
  time, so the executor replaces an environment whose runtime has less than its timeout left;
- files at most the ephemeral-storage size (EFBIG; the /tmp tmpfs has that size too); no core
  files;
- at most :data:`MAX_TASKS` processes and threads (``RLIMIT_NPROC``; see Privileges for why it
  holds): a fork bomb gets EAGAIN.

``CLOUDLABS_LAMBDA_SANDBOX`` chooses: ``bwrap`` (sandbox or refuse to start functions), ``none``
(plain processes with the emulator's privileges and view; the limits still apply, except the
process limit when the emulator is root), ``auto`` (the default: bwrap if it is installed and
works here, else plain processes, said once in the emulator's log).
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import logging
import math
import os
import queue
import secrets
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)

SANDBOX_ENV = "CLOUDLABS_LAMBDA_SANDBOX"
MODES = ("auto", "bwrap", "none")

#: Address space the interpreter, boto3, thread stacks and malloc arenas need beyond MemorySize.
ADDRESS_SPACE_HEADROOM_MB = 256
#: CPU seconds per process beyond the function's timeout (start-up, imports, idle threads).
CPU_ALLOWANCE_SECONDS = 10
#: Processes plus threads of one environment (AWS allows 1024; this machine is smaller).
MAX_TASKS = 64
DEFAULT_EPHEMERAL_MB = 512
#: Environment variables of the runtime process itself (before it enters the function's).
RUNTIME_ENV = {"MALLOC_ARENA_MAX": "2"}

_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC = (
    "alternatives",
    "ca-certificates",
    "ca-certificates.conf",
    "gai.conf",
    "group",
    "host.conf",
    "hosts",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "mime.types",
    "nsswitch.conf",
    "passwd",
    "pki/ca-trust/extracted",
    "pki/tls/certs",
    "protocols",
    "resolv.conf",
    "services",
    "ssl/certs",
    "ssl/openssl.cnf",
    "timezone",
)
#: Where an environment sees the executor's unix socket to the emulator's gateway.
EMULATOR_SOCKET = "/run/cloudlabs/emulator.sock"
#: The probe imports the runtime and connects over the new namespace's loopback (is lo up?).
_PROBE = (
    "import socket, cloudlabs_emulator.lambda_runtime\n"
    "with socket.create_server(('127.0.0.1', 0)) as server:\n"
    "    socket.create_connection(server.getsockname(), timeout=10).close()\n"
)


class SandboxError(RuntimeError):
    """The sandbox was asked for but cannot run here."""


@dataclass(frozen=True)
class SandboxNetwork:
    """Host paths of an environment's way out: its unix socket and its ``/etc/hosts``."""

    socket: str
    hosts: str


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def hosts_file(names: list[str]) -> str:
    """An ``/etc/hosts`` for sandboxes: ``localhost`` and ``names`` on 127.0.0.1."""
    extra = " ".join(dict.fromkeys(n for n in names if n and n != "localhost" and not _is_ip(n)))
    return (
        f"127.0.0.1\tlocalhost {extra}".rstrip() + "\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    )


@dataclass(frozen=True)
class Limits:
    """Resource limits of one execution environment, from the function's configuration."""

    memory_mb: int
    timeout: float
    ephemeral_mb: int = DEFAULT_EPHEMERAL_MB

    @property
    def address_space(self) -> int:
        return (self.memory_mb + ADDRESS_SPACE_HEADROOM_MB) * 2**20

    @property
    def cpu_seconds(self) -> int:
        return math.ceil(self.timeout) + CPU_ALLOWANCE_SECONDS

    @property
    def tmp_bytes(self) -> int:
        return self.ephemeral_mb * 2**20

    def rlimits(self) -> dict[str, int]:
        """``RLIMIT_<name>`` values, soft and hard alike, for :mod:`cloudlabs_emulator.lambda_runtime`."""
        return {
            "AS": self.address_space,
            "CPU": self.cpu_seconds,
            "FSIZE": self.tmp_bytes,
            "CORE": 0,
            "NPROC": MAX_TASKS,
        }


class _UidPool:
    """Unprivileged uids for environments: one each, so ``RLIMIT_NPROC`` counts one environment.

    Each emulator draws a block of :data:`UIDS_PER_EMULATOR` at random within
    ``[UID_BASE, UID_BASE + UID_SPAN)``, so emulators on one machine rarely share uids; the span
    is disjoint from the grader's kernel uids (``grader/sandbox.py``: from 1 900 000 000). No
    account has them, and no file outside an environment's ``/tmp`` belongs to them.
    """

    def __init__(self, base: int, size: int) -> None:
        self._base, self._size = base, size
        self._used: set[int] = set()
        self._lock = threading.Lock()

    def acquire(self) -> int:
        with self._lock:
            slot = next(i for i in range(self._size + 1) if i not in self._used)
            if slot == self._size:
                raise SandboxError("no free sandbox uid: too many execution environments")
            self._used.add(slot)
            return self._base + slot

    def release(self, uid: int) -> None:
        with self._lock:
            self._used.discard(uid - self._base)


UID_BASE, UID_SPAN, UIDS_PER_EMULATOR = 1_600_000_000, 200_000_000, 10_000
UIDS = _UidPool(
    UID_BASE + secrets.randbelow(UID_SPAN // UIDS_PER_EMULATOR) * UIDS_PER_EMULATOR,
    UIDS_PER_EMULATOR,
)


class _Spawner:
    """Starts processes from one thread that lives as long as the emulator.

    ``--die-with-parent`` is ``PR_SET_PDEATHSIG``, which fires when the *thread* that started bwrap
    ends, and LocalStack starts environments from short-lived pool threads.
    """

    def __init__(self) -> None:
        self._requests: queue.Queue[tuple[concurrent.futures.Future, dict[str, Any]]] = (
            queue.Queue()
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def popen(self, **kwargs: Any) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, daemon=True, name="lambda-sandbox-spawner"
                )
                self._thread.start()
        future: concurrent.futures.Future[subprocess.Popen[bytes]] = concurrent.futures.Future()
        self._requests.put((future, kwargs))
        return future.result()

    def _serve(self) -> None:
        while True:
            future, kwargs = self._requests.get()
            try:
                future.set_result(subprocess.Popen(**kwargs))
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)


SPAWNER = _Spawner()


def _under(path: str, roots: list[str] | tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def interpreter_paths() -> list[str]:
    """The directories the emulator's interpreter and this package are loaded from."""
    import cloudlabs_emulator

    candidates = [
        sys.base_prefix,
        sys.base_exec_prefix,
        sys.prefix,
        sys.exec_prefix,
        os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))),
        os.path.dirname(os.path.abspath(cloudlabs_emulator.__file__)),
    ]
    chosen: list[str] = list(_SYSTEM_DIRS)
    result: list[str] = []
    for path in sorted({os.path.abspath(p) for p in candidates}, key=len):
        if not _under(path, chosen):
            chosen.append(path)
            result.append(path)
    return result


class Bubblewrap:
    """Builds bwrap command lines (see the module docstring for what they allow)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.privileged = os.geteuid() == 0
        try:
            help_text = subprocess.run(
                [path, "--help"], capture_output=True, text=True, timeout=10
            ).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise SandboxError(f"cannot run {path}: {exc}") from exc
        self.sizes_tmpfs = "--size" in help_text
        self.disables_userns = "--disable-userns" in help_text

    def binds(self, code_dirs: list[str], network: SandboxNetwork | None = None) -> list[str]:
        """The filesystem options of the allow-list (after the tmpfs on /tmp)."""
        args: list[str] = []
        made = {"/", "/tmp"}

        def bind(path: str, source: str | None = None, option: str = "--ro-bind") -> None:
            """A bind (read-only unless said), its missing parents made traversable (bwrap
            makes them 0700)."""
            parents = [str(parent) for parent in reversed(Path(path).parents)]
            for parent in parents:
                if parent not in made and not _under(parent, _SYSTEM_DIRS):
                    args.extend(["--perms", "0755", "--dir", parent])
                    made.add(parent)
            args.extend([option, source or path, path])
            made.add(path)

        for directory in _SYSTEM_DIRS:
            if os.path.islink(directory):
                args += ["--symlink", os.readlink(directory), directory]
            elif os.path.isdir(directory):
                args += ["--ro-bind", directory, directory]
        for name in _ETC:
            if network is not None and name == "hosts":
                bind("/etc/hosts", network.hosts)
            elif os.path.exists(f"/etc/{name}"):
                bind(f"/etc/{name}")
        for path in interpreter_paths():
            bind(path)
        certs = os.environ.get("SSL_CERT_FILE")
        if certs and os.path.isfile(certs) and not _under(certs, ["/usr", "/etc"]):
            bind(os.path.abspath(certs))
        for path in code_dirs:
            bind(path)
        if network is not None:
            bind(EMULATOR_SOCKET, network.socket, "--bind")
        return args

    def command(
        self,
        argv: list[str],
        *,
        code_dirs: list[str],
        tmp_bytes: int,
        chdir: str,
        network: SandboxNetwork | None = None,
    ) -> list[str]:
        """bwrap running ``argv``; without ``network``, the environment has no way out at all."""
        tmpfs = ["--perms", "1777"]
        if self.sizes_tmpfs:
            tmpfs += ["--size", str(tmp_bytes)]
        tmpfs += ["--tmpfs", "/tmp"]  # first, so that code under a host /tmp is bound over it
        if self.privileged:  # the runtime needs these two to switch to its own uid, then has none
            privileges = ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            privileges = ["--unshare-user", "--cap-drop", "ALL"]
            if self.disables_userns:
                privileges.append("--disable-userns")
        return [
            self.path,
            *tmpfs,
            *self.binds(code_dirs, network),
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--remount-ro",
            "/",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-net",
            "--die-with-parent",
            "--new-session",
            *privileges,
            "--chdir",
            chdir,
            "--",
            *argv,
        ]

    def probe(self) -> str | None:
        """None if a sandboxed interpreter starts here, else bwrap's complaint."""
        argv = [sys.executable, "-I", "-c", _PROBE]
        command = self.command(argv, code_dirs=[], tmp_bytes=2**20, chdir="/tmp")
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=60, env=RUNTIME_ENV, cwd="/"
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return str(exc)
        if done.returncode != 0:
            return (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
        return None


_resolved: dict[str, Bubblewrap | SandboxError | None] = {}
_resolve_lock = threading.Lock()


def find_bwrap() -> str | None:
    return shutil.which("bwrap") or (
        "/usr/bin/bwrap" if os.access("/usr/bin/bwrap", os.X_OK) else None
    )


def resolve() -> Bubblewrap | None:
    """The sandbox to use (None: plain processes), decided once per emulator and logged once."""
    mode = os.environ.get(SANDBOX_ENV, "").strip().lower() or "auto"
    if mode not in MODES:
        raise SandboxError(f"{SANDBOX_ENV}={mode!r}: choose one of {', '.join(MODES)}")
    with _resolve_lock:
        if mode not in _resolved:
            try:
                _resolved[mode] = _decide(mode)
            except SandboxError as exc:
                _resolved[mode] = exc
        sandbox = _resolved[mode]
    if isinstance(sandbox, SandboxError):
        raise SandboxError(str(sandbox))
    return sandbox


def _decide(mode: str) -> Bubblewrap | None:
    unsandboxed = (
        "Lambda functions run UNSANDBOXED, with the emulator's privileges and view of the "
        "filesystem"
    )
    if mode == "none":
        LOG.warning("%s (%s=none)", unsandboxed, SANDBOX_ENV)
        return None
    path = find_bwrap()
    problem = None if path else "bubblewrap (bwrap) is not installed"
    sandbox = None
    if path:
        try:
            sandbox = Bubblewrap(path)
            problem = sandbox.probe()
        except SandboxError as exc:
            problem = str(exc)
    if problem is None:
        assert sandbox is not None
        LOG.info(
            "Lambda functions run in bubblewrap sandboxes (%s, %s)",
            sandbox.path,
            "own uid per environment" if sandbox.privileged else "user namespace",
        )
        return sandbox
    if mode == "bwrap":
        LOG.error("%s=bwrap but the sandbox cannot run: %s", SANDBOX_ENV, problem)
        raise SandboxError(f"{SANDBOX_ENV}=bwrap but the sandbox cannot run: {problem}")
    LOG.warning("%s: %s (install bubblewrap to isolate them)", unsandboxed, problem)
    return None
