"""A Docker-free Lambda runtime executor for LocalStack.

Each execution environment is a local Python process (:mod:`cloudlabs_emulator.lambda_runtime`)
that imports the function's handler from its unzipped code and layers, inside a bubblewrap
sandbox with resource limits from the function's configuration (:mod:`cloudlabs_emulator.sandbox`;
``CLOUDLABS_LAMBDA_SANDBOX=none`` or a machine without bwrap runs it as a plain child process).
This executor writes each invocation to the process, collects its output for CloudWatch Logs,
enforces the function's timeout by ending the environment's whole process tree (the next
invocation starts a fresh one, as AWS resets a timed-out environment), and reports errors in
AWS's shapes.

A sandboxed environment has a network namespace of its own; its one way out is a unix socket
(:class:`_Network`, one per environment, in a private directory under LocalStack's temporary
directory, itself in the emulator's state) whose every connection this process forwards to the
gateway (``GATEWAY_LISTEN``), and the runtime forwards the gateway's port on the sandbox's
``127.0.0.1`` to it: the endpoint LocalStack tells the function (``AWS_ENDPOINT_URL``) is the only
thing it reaches. Unsandboxed environments share the emulator's network.

Selected with ``LAMBDA_RUNTIME_EXECUTOR=cloudlabs``. Python runtimes only: every Python runtime
runs on the emulator's own interpreter, which ships boto3 as AWS's runtimes do.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import json
import logging
import math
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from localstack import config
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)
from plux import Plugin

from cloudlabs_emulator import lambda_runtime, sandbox

LOG = logging.getLogger(__name__)

#: Environment variables of the emulator process passed on to functions (everything else a
#: function sees comes from LocalStack: its configuration, credentials and endpoints).
_INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "SSL_CERT_FILE")
_STARTUP_GRACE_SECONDS = 30.0
#: Bounds on what one environment can make the emulator hold in memory.
_MAX_LINE_BYTES = 16 * 2**20  # one protocol message (AWS caps payloads at 6 MB)
_MAX_BUFFERED_BYTES = 64 * 2**20  # messages not yet consumed
_MAX_LOG_BYTES = 4 * 2**20  # log output of one invocation
#: Connections one environment may have open to the gateway at a time (more wait their turn).
_MAX_CONNECTIONS = 64


class LocalRuntimeExecutorPlugin(Plugin):
    namespace = "localstack.lambda.runtime_executor"
    name = "cloudlabs"

    def load(self, *args: Any, **kwargs: Any) -> type[RuntimeExecutor]:
        return LocalRuntimeExecutor


def _code_dirs(function_version: FunctionVersion) -> tuple[Path, list[Path]]:
    code = function_version.config.code
    if code is None:
        raise LambdaRuntimeException("Container-image functions need Docker; use a zip package.")
    task_root = Path(code.get_unzipped_code_location())
    layer_roots = [
        Path(layer.code.get_unzipped_code_location())
        for layer in function_version.config.layers
        if layer.code is not None
    ]
    return task_root, layer_roots


class _Inbox:
    """Messages from one runtime process; past a byte budget, further ones are dropped."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[dict[str, Any] | None, int]] = queue.Queue()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, message: dict[str, Any] | None, size: int = 0) -> None:
        with self._lock:
            if message is not None and self._bytes + size > _MAX_BUFFERED_BYTES:
                return
            self._bytes += size
        self._queue.put((message, size))

    def get(self, timeout: float) -> dict[str, Any] | None:
        message, size = self._queue.get(timeout=timeout)
        with self._lock:
            self._bytes -= size
        return message


def _gateway() -> tuple[int, Any]:
    """The family and address to reach the gateway at, as the guard binds it (guard.py)."""
    listen = config.GATEWAY_LISTEN[0]
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(listen.host, listen.host)
    if config.is_ipv6_address(host):
        return socket.AF_INET6, (host, listen.port)
    return socket.AF_INET, (socket.gethostbyname(host), listen.port)


_private: dict[str, str] = {}
_private_lock = threading.Lock()


def _private_dir() -> str:
    """This emulator's directory of environments' sockets and the sandboxes' hosts file (0700,
    removed at exit)."""
    with _private_lock:
        if "dir" not in _private:
            os.makedirs(config.dirs.tmp, exist_ok=True)
            directory = tempfile.mkdtemp(prefix="cloudlabs-lambda-net-", dir=config.dirs.tmp)
            hosts = os.path.join(directory, "hosts")
            names = [
                "localhost.localstack.cloud",
                config.LOCALSTACK_HOST.host,
                socket.gethostname(),
            ]
            with open(hosts, "x") as file:
                file.write(sandbox.hosts_file(names))
            os.chmod(hosts, 0o644)
            atexit.register(shutil.rmtree, directory, ignore_errors=True)
            _private.update(dir=directory, hosts=hosts)
        return _private["dir"]


class _Network:
    """An environment's way out: a unix socket, seen in the sandbox at
    :data:`sandbox.EMULATOR_SOCKET`, whose connections a :class:`lambda_runtime.Relay` (one
    thread) forwards to the gateway. Mode 0600, owned by the sandbox's uid (the emulator's
    user when the sandbox is a user namespace, which maps its uid to that user)."""

    def __init__(self, name: str, uid: int | None) -> None:
        directory = _private_dir()
        self.path = os.path.join(directory, f"{name}.sock")
        self.sandbox = sandbox.SandboxNetwork(socket=self.path, hosts=_private["hosts"])
        self.port = int(config.GATEWAY_LISTEN[0].port)
        family, address = _gateway()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            fd = os.open(directory, os.O_PATH | os.O_DIRECTORY)
            try:  # by the directory's descriptor: the path may be too long for a socket address
                base = os.path.basename(self.path)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(base, dir_fd=fd)
                listener.bind(f"/proc/self/fd/{fd}/{base}")
            finally:
                os.close(fd)
            os.chmod(self.path, 0o600)
            if uid is not None:
                os.chown(self.path, uid, uid)
            listener.listen(128)
            self._relay = lambda_runtime.Relay(
                [listener],
                lambda: lambda_runtime.start_connection(family, address),
                max_connections=_MAX_CONNECTIONS,
                name=f"lambda-net-{name}",
            ).start()
        except BaseException:
            listener.close()
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            raise

    def close(self) -> None:
        self._relay.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def _lines(stream: Any):
    """The lines of a binary stream, each at most ``_MAX_LINE_BYTES`` (the rest is skipped)."""
    while line := stream.readline(_MAX_LINE_BYTES):
        if len(line) == _MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := stream.readline(_MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            yield b"[cloudlabs: an output line longer than 16 MiB was dropped]\n"
            continue
        yield line


def _message(line: bytes) -> dict[str, Any]:
    """A protocol message, or the line as log output if it is not one."""
    try:
        message = json.loads(line)
    except ValueError:
        message = None
    if isinstance(message, dict) and (
        isinstance(message.get("log"), str)
        or isinstance(message.get("result"), str)
        or isinstance(message.get("error"), dict)
        or message.get("ready") is True
    ):
        return message
    return {"log": line.decode("utf-8", "replace")}


def _parent(process: psutil.Process) -> int | None:
    try:
        return process.ppid()
    except psutil.Error:
        return None


def _wait_ended(processes: list[psutil.Process], timeout: float) -> None:
    """Waits until each process is gone or a zombie (dead, left for its parent to reap)."""
    deadline = time.monotonic() + timeout
    while processes and time.monotonic() < deadline:
        running = []
        for process in processes:
            with contextlib.suppress(psutil.Error):
                if process.status() != psutil.STATUS_ZOMBIE:
                    running.append(process)
        processes = running
        if processes:
            time.sleep(0.01)


class LocalRuntimeExecutor(RuntimeExecutor):
    """An execution environment backed by a local process (see the module docstring)."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self._env: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._inbox = _Inbox()
        self._lock = threading.Lock()
        self._sandbox: sandbox.Bubblewrap | None = None
        self._uid: int | None = None
        self._limits = sandbox.Limits(memory_mb=128, timeout=3)
        self._code: list[str] = []
        self._cpu_used = 0.0
        self._network: _Network | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, env_vars: dict[str, str]) -> None:
        function = self.function_version.config
        runtime = str(function.runtime or "")
        if not runtime.startswith("python"):
            raise LambdaRuntimeException(
                f"Runtime {runtime or 'image'} is not supported by the cloudlabs emulator; "
                "use a python3.x runtime."
            )
        task_root, layer_roots = _code_dirs(self.function_version)
        try:
            self._sandbox = sandbox.resolve()
            if self._sandbox is not None and self._sandbox.privileged:
                self._uid = sandbox.UIDS.acquire()
            if self._sandbox is not None:
                self._network = _Network(self.id, self._uid)
        except (sandbox.SandboxError, OSError) as exc:
            self.stop()
            raise LambdaRuntimeException(str(exc)) from exc
        storage = getattr(function, "ephemeral_storage", None)
        self._limits = sandbox.Limits(
            memory_mb=int(function.memory_size),
            timeout=float(function.timeout),
            ephemeral_mb=int(getattr(storage, "size", 0) or sandbox.DEFAULT_EPHEMERAL_MB),
        )
        self._code = [str(task_root), *map(str, layer_roots)]
        python_paths = [str(task_root)]
        for layer in layer_roots:  # AWS puts /opt/python and /opt on a Python function's path
            python_paths += [str(layer / "python"), str(layer)]
        env = {key: os.environ[key] for key in _INHERITED_ENV if key in os.environ}
        if self._sandbox is not None:  # the emulator's home and temporary directory are not there
            env.update({"HOME": "/tmp", "TMPDIR": "/tmp"})
        env.update(sandbox.RUNTIME_ENV)
        env.update({key: str(value) for key, value in env_vars.items()})
        env.update(
            {
                "LAMBDA_TASK_ROOT": str(task_root),
                "PYTHONPATH": os.pathsep.join(python_paths),
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        self._env = env
        logs: list[str] = []
        if not self._spawn(logs):
            self.stop()  # LocalStack does not stop an environment that failed to start
            raise LambdaRuntimeException(
                "The execution environment did not start: " + ("".join(logs).strip() or "no output")
            )

    def _spawn(self, logs: list[str]) -> bool:
        """Starts a fresh environment; True once its runtime is ready (its output goes to logs)."""
        self._kill()
        self._cpu_used = 0.0
        network = self._network
        if self._sandbox is not None and network is None:  # stopped meanwhile
            logs.append("the execution environment was stopped\n")
            return False
        read_fd, write_fd = os.pipe()
        argv = [sys.executable, "-I", "-m", "cloudlabs_emulator.lambda_runtime"]
        # The runtime starts with the emulator's locale and path only: nothing the function sets
        # (LD_PRELOAD, PYTHON*, ...) applies before it has dropped privileges (lambda_runtime)
        env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL") if key in os.environ}
        env.update({**sandbox.RUNTIME_ENV, "CLOUDLABS_LAMBDA_FD": str(write_fd)})
        task_root = self._env["LAMBDA_TASK_ROOT"]
        setup: dict[str, Any] = {
            "env": self._env,
            "limits": self._limits.rlimits(),
            "uid": self._uid,
        }
        if self._sandbox is not None and network is not None:
            command = self._sandbox.command(
                argv,
                code_dirs=self._code,
                tmp_bytes=self._limits.tmp_bytes,
                chdir=task_root,
                network=network.sandbox,
            )
            setup["network"] = {"socket": sandbox.EMULATOR_SOCKET, "port": network.port}
        else:
            command = argv
        try:
            process = sandbox.SPAWNER.popen(
                args=command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                cwd=task_root if self._sandbox is None else "/",
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            os.close(read_fd)
            raise LambdaRuntimeException(f"Cannot start the execution environment: {exc}") from exc
        finally:
            os.close(write_fd)
        self._process = process
        inbox = self._inbox = _Inbox()
        for target, stream in ((self._read_messages, os.fdopen(read_fd, "rb")),
                               (self._read_output, process.stdout)):  # fmt: skip
            threading.Thread(
                target=target, args=(stream, inbox), daemon=True, name=f"lambda-{self.id}"
            ).start()
        self._write(json.dumps(setup).encode() + b"\n")  # if it died, its output tells why
        deadline = time.monotonic() + _STARTUP_GRACE_SECONDS
        while True:
            try:
                message = inbox.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                logs.append(f"the runtime was not ready within {_STARTUP_GRACE_SECONDS:.0f} s\n")
                self._kill()
                return False
            if message is None:
                return False
            if message.get("ready") is True:
                return True
            if "log" in message:
                logs.append(message["log"])

    def _write(self, data: bytes) -> bool:
        process = self._process
        assert process is not None and process.stdin is not None
        try:
            process.stdin.write(data)
            process.stdin.flush()
        except (OSError, ValueError):  # it died (or was stopped): reported as an exit error
            return False
        return True

    @staticmethod
    def _read_messages(stream: Any, inbox: _Inbox) -> None:
        with stream:
            for line in _lines(stream):
                inbox.put(_message(line), len(line))
        inbox.put(None)  # end of stream: the environment is gone

    @staticmethod
    def _read_output(stream: Any, inbox: _Inbox) -> None:
        """What the runtime, bwrap or the function's subprocesses write to stdout and stderr."""
        with stream:
            for line in _lines(stream):
                inbox.put({"log": line.decode("utf-8", "replace")}, len(line))

    def _kill(self) -> None:
        """Ends the environment's process tree and waits until it has ended.

        In a sandbox, the first child of bwrap is pid 1 of the environment's pid namespace: when
        it dies, the kernel kills and reaps every process in there, then bwrap exits. Unsandboxed,
        the process group goes, and what the runtime started that is still its descendant.
        """
        process = self._process
        if process is None:
            return
        try:
            tree = psutil.Process(process.pid).children(recursive=True)
        except psutil.Error:
            tree = []
        if process.poll() is None:
            if self._sandbox is None:
                with contextlib.suppress(OSError):
                    os.killpg(process.pid, signal.SIGKILL)
                victims = tree
            else:
                victims = [child for child in tree if _parent(child) == process.pid]
            for victim in victims:
                with contextlib.suppress(psutil.Error):
                    victim.kill()
            try:
                process.wait(timeout=0 if not victims else 5)
            except subprocess.TimeoutExpired:
                process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        _wait_ended(tree, timeout=5)
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()

    def stop(self) -> None:
        self._kill()
        if self._network is not None:
            self._network.close()
            self._network = None
        if self._uid is not None:
            sandbox.UIDS.release(self._uid)
            self._uid = None

    # -- invocation ------------------------------------------------------------------------
    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        with self._lock:
            return self._invoke(payload)

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _invoke(self, payload: dict[str, str]) -> InvocationResult:
        request_id = payload["invoke-id"]
        timeout = float(self.function_version.config.timeout)
        logs: list[str] = []
        outcome: dict[str, Any] | None = None
        if self._alive() and self._limits.cpu_seconds - self._cpu_used < timeout:
            self._kill()  # it could not use its whole timeout of CPU time: a fresh environment
        if not self._alive() and not self._spawn(logs):  # after a timeout, a crash or the above
            outcome = self._exited(request_id)
            logs.append(f"RequestId: {request_id} {outcome['error']['errorMessage']}\n")
        started = time.monotonic()
        if outcome is None:
            data = json.dumps(payload).encode() + b"\n"  # written aside: a pipe can be full
            threading.Thread(target=self._write, args=(data,), daemon=True).start()
        deadline = started + timeout
        log_bytes = 0
        while outcome is None:
            try:
                message = self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                outcome = self._timed_out(request_id, timeout, logs)
                break
            if message is None:
                outcome = self._exited(request_id)
                logs.append(f"RequestId: {request_id} {outcome['error']['errorMessage']}\n")
            elif "log" in message:
                log_bytes += len(message["log"])
                if log_bytes <= _MAX_LOG_BYTES:
                    logs.append(message["log"])
                elif log_bytes - len(message["log"]) <= _MAX_LOG_BYTES:
                    logs.append("[cloudlabs: further log output of this invocation dropped]\n")
            elif "ready" not in message:
                outcome = message
        duration_ms = (time.monotonic() - started) * 1000
        usage = outcome.get("usage") if isinstance(outcome.get("usage"), dict) else {}
        with contextlib.suppress(TypeError, ValueError):
            self._cpu_used = float(usage.get("cpu", self._cpu_used))
        is_error = "error" in outcome
        body = json.dumps(outcome["error"]) if is_error else outcome["result"]
        return InvocationResult(
            request_id=request_id,
            payload=body.encode(),
            is_error=is_error,
            logs=self._frame_logs(request_id, "".join(logs), duration_ms, usage),
        )

    def _timed_out(self, request_id: str, timeout: float, logs: list[str]) -> dict[str, Any]:
        self._kill()
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        message = f"Task timed out after {timeout:.2f} seconds"
        logs.append(f"{now} {request_id} {message}\n")
        return {
            "error": {
                "errorMessage": f"{now} {request_id} {message}",
                "errorType": "Sandbox.Timedout",
            }
        }

    def _exited(self, request_id: str) -> dict[str, Any]:
        assert self._process is not None
        try:
            code = self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._kill()
            code = self._process.wait(timeout=10)
        if self._sandbox is not None and code > 128:
            code = 128 - code  # bwrap exits with 128 + n when its command dies of signal n
        reason = f"signal: {-code}" if code < 0 else f"exit status {code}"
        return {
            "error": {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {reason}",
            }
        }

    def _frame_logs(
        self, request_id: str, body: str, duration_ms: float, usage: dict[str, Any]
    ) -> str:
        version = self.function_version.id.qualifier
        memory = self.function_version.config.memory_size
        used = 0
        with contextlib.suppress(TypeError, ValueError):
            used = int(usage.get("max_rss_kb", 0)) // 1024
        if body and not body.endswith("\n"):
            body += "\n"
        return (
            f"START RequestId: {request_id} Version: {version}\n{body}"
            f"END RequestId: {request_id}\n"
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {math.ceil(duration_ms)} ms\tMemory Size: {memory} MB\t"
            f"Max Memory Used: {min(used, memory)} MB\t\n"
        )

    # -- addresses (the process talks to LocalStack on its loopback: see _Network) ----------
    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        return f"http://127.0.0.1:{config.GATEWAY_LISTEN[0].port}/_localstack_lambda/{self.id}"

    def get_logs(self) -> str:
        return ""

    # -- versions --------------------------------------------------------------------------
    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        if function_version.config.code:
            function_version.config.code.prepare_for_execution()
        for layer in function_version.config.layers:
            if layer.code is not None:
                layer.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        return True
