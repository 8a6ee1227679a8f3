"""A Docker-free Lambda runtime executor for LocalStack.

Each execution environment is a local Python process (:mod:`cloudlabs_emulator.lambda_runtime`)
that imports the function's handler from its unzipped code and layers. This executor writes each
invocation to the process, collects its output for CloudWatch Logs, enforces the function's
timeout by killing the process (the next invocation starts a fresh one, as AWS resets a timed-out
environment), and reports errors in AWS's shapes.

Selected with ``LAMBDA_RUNTIME_EXECUTOR=cloudlabs``. Python runtimes only: every Python runtime
runs on the emulator's own interpreter, which ships boto3 as AWS's runtimes do.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import math
import os
import queue
import subprocess
import sys
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

LOG = logging.getLogger(__name__)

#: Environment variables of the emulator process passed on to functions (everything else a
#: function sees comes from LocalStack: its configuration, credentials and endpoints).
_INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "SSL_CERT_FILE")
_STARTUP_GRACE_SECONDS = 30.0


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


class LocalRuntimeExecutor(RuntimeExecutor):
    """An execution environment backed by a local process (see the module docstring)."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self._env: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, env_vars: dict[str, str]) -> None:
        runtime = str(self.function_version.config.runtime or "")
        if not runtime.startswith("python"):
            raise LambdaRuntimeException(
                f"Runtime {runtime or 'image'} is not supported by the cloudlabs emulator; "
                "use a python3.x runtime."
            )
        task_root, layer_roots = _code_dirs(self.function_version)
        python_paths = [str(task_root)]
        for layer in layer_roots:  # AWS puts /opt/python and /opt on a Python function's path
            python_paths += [str(layer / "python"), str(layer)]
        env = {key: os.environ[key] for key in _INHERITED_ENV if key in os.environ}
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
        self._spawn()

    def _spawn(self) -> None:
        read_fd, write_fd = os.pipe()
        env = self._env
        self._process = subprocess.Popen(
            [sys.executable, "-m", "cloudlabs_emulator.lambda_runtime"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(write_fd,),
            cwd=env["LAMBDA_TASK_ROOT"],
            env={**env, "CLOUDLABS_LAMBDA_FD": str(write_fd)},
            start_new_session=True,
        )
        os.close(write_fd)
        messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._messages = messages
        threading.Thread(
            target=self._read_messages,
            args=(read_fd, messages),
            daemon=True,
            name=f"lambda-runtime-{self.id}",
        ).start()

    @staticmethod
    def _read_messages(fd: int, messages: queue.Queue[dict[str, Any] | None]) -> None:
        with os.fdopen(fd, "rb") as stream:
            for line in stream:
                try:
                    messages.put(json.loads(line))
                except ValueError:
                    messages.put({"log": line.decode("utf-8", "replace")})
        messages.put(None)  # end of stream: the process is gone

    def stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    # -- invocation ------------------------------------------------------------------------
    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        with self._lock:
            return self._invoke(payload)

    def _invoke(self, payload: dict[str, str]) -> InvocationResult:
        request_id = payload["invoke-id"]
        if self._process is None or self._process.poll() is not None:
            self._spawn()  # a fresh environment after a timeout or a crash
        assert self._process is not None and self._process.stdin is not None
        timeout = float(self.function_version.config.timeout)
        started = time.monotonic()
        try:
            self._process.stdin.write(json.dumps(payload).encode() + b"\n")
            self._process.stdin.flush()
        except OSError:
            pass  # the process died at start-up; reported below as an exit error
        logs: list[str] = []
        outcome: dict[str, Any] | None = None
        deadline = started + timeout
        while outcome is None:
            try:
                message = self._messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                outcome = self._timed_out(request_id, timeout, logs)
                break
            if message is None:
                outcome = self._exited(request_id)
                logs.append(f"RequestId: {request_id} {outcome['error']['errorMessage']}\n")
            elif "log" in message:
                logs.append(message["log"])
            else:
                outcome = message
        duration_ms = (time.monotonic() - started) * 1000
        is_error = "error" in outcome
        body = json.dumps(outcome["error"]) if is_error else outcome["result"]
        return InvocationResult(
            request_id=request_id,
            payload=body.encode(),
            is_error=is_error,
            logs=self._frame_logs(request_id, "".join(logs), duration_ms),
        )

    def _timed_out(self, request_id: str, timeout: float, logs: list[str]) -> dict[str, Any]:
        self.stop()
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
        code = self._process.wait(timeout=10)
        reason = f"signal: {-code}" if code < 0 else f"exit status {code}"
        return {
            "error": {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {reason}",
            }
        }

    def _frame_logs(self, request_id: str, body: str, duration_ms: float) -> str:
        version = self.function_version.id.qualifier
        memory = self.function_version.config.memory_size
        used = 0
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(psutil.Error):
                used = psutil.Process(self._process.pid).memory_info().rss // 2**20
        if body and not body.endswith("\n"):
            body += "\n"
        return (
            f"START RequestId: {request_id} Version: {version}\n{body}"
            f"END RequestId: {request_id}\n"
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {math.ceil(duration_ms)} ms\tMemory Size: {memory} MB\t"
            f"Max Memory Used: {min(used, memory)} MB\t\n"
        )

    # -- addresses (the process talks to LocalStack on loopback) -----------------------------
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
