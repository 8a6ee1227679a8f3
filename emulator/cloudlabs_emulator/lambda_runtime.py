"""One Lambda execution environment: a Python process that runs a function's handler.

Started by :class:`cloudlabs_emulator.lambda_executor.LocalRuntimeExecutor` as ``python -I -m
cloudlabs_emulator.lambda_runtime`` (isolated: no ``PYTHON*`` variable, user site or working
directory on the path), usually inside a bubblewrap sandbox (:mod:`cloudlabs_emulator.sandbox`).
The first line on stdin sets the environment up (JSON: ``limits``, resource limits to apply;
``uid``, the unprivileged uid to switch to; ``env``, the function's environment), and only then
does anything the function controls come into play; the process answers ``{"ready": true}``.
Every further line is one invocation; the process writes JSON lines to file descriptor
``$CLOUDLABS_LAMBDA_FD``: ``{"log": text}`` while the handler runs, then ``{"result": ...}`` or
``{"error": {...}}``, each with ``usage`` (CPU seconds and peak resident memory so far). The
parent enforces the timeout by killing the environment.

Only the standard library and boto3 (which AWS's Python runtimes also ship) are imported here.
"""

from __future__ import annotations

import ctypes
import importlib
import io
import json
import logging
import os
import resource
import sys
import time
import traceback
from typing import Any, TextIO


class _Channel:
    """Writes protocol messages to the parent."""

    def __init__(self, fd: int) -> None:
        self._out = os.fdopen(fd, "w", buffering=1, encoding="utf-8")

    def send(self, message: dict[str, Any]) -> None:
        self._out.write(json.dumps(message) + "\n")
        self._out.flush()


class _LogStream(io.TextIOBase):
    """A text stream that forwards whole lines to the parent as log records."""

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            complete, self._pending = self._pending.rsplit("\n", 1)
            self._channel.send({"log": complete + "\n"})
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._channel.send({"log": self._pending})
            self._pending = ""


class _LambdaContext:
    def __init__(self, request_id: str, invoked_arn: str, deadline: float) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


class _CurrentStdoutHandler(logging.StreamHandler):
    """Like AWS's runtime: log records go to the function's output, whatever sys.stdout is now."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def _configure_logging(request_filter: _RequestIdFilter) -> None:
    handler = _CurrentStdoutHandler()
    handler.setFormatter(
        logging.Formatter("[%(levelname)s]\t%(asctime)s\t%(aws_request_id)s\t%(message)s\n")
    )
    handler.addFilter(request_filter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


def _error(error_type: str, message: str, stack: list[str] | None = None) -> dict[str, Any]:
    return {"errorMessage": message, "errorType": error_type, "stackTrace": stack or []}


def _load_handler(spec: str):
    module_name, _, function_name = spec.rpartition(".")
    if not module_name:
        raise _InitError("Runtime.MalformedHandlerName", f"Bad handler '{spec}': not enough values")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _InitError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        ) from exc
    except Exception as exc:  # an error at import time is the function's own error
        raise _InitError(
            "Runtime.UserCodeSyntaxError" if isinstance(exc, SyntaxError) else type(exc).__name__,
            f"{exc}",
            traceback.format_exception(exc)[1:],
        ) from exc
    handler = getattr(module, function_name, None)
    if handler is None:
        raise _InitError(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
        )
    return handler


class _InitError(Exception):
    def __init__(self, error_type: str, message: str, stack: list[str] | None = None) -> None:
        super().__init__(message)
        self.payload = _error(error_type, message, stack)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _apply_limits(limits: dict[str, int]) -> None:
    """Sets each ``RLIMIT_<name>`` soft and hard (never above a hard limit already lower)."""
    for name, value in limits.items():
        kind = getattr(resource, f"RLIMIT_{name}")
        _soft, hard = resource.getrlimit(kind)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(kind, (value, value))


def _drop_privileges(uid: int) -> None:
    """Becomes ``uid``:``uid`` with no supplementary group and no capability, for good."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # clears the permitted, effective and ambient capabilities
    libc = ctypes.CDLL(None, use_errno=True)
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    if libc.capset(ctypes.byref(header), (_CapData * 2)()) != 0:  # and the inheritable ones
        raise OSError(ctypes.get_errno(), "capset")
    if os.getresuid() != (uid,) * 3 or os.getresgid() != (uid,) * 3 or os.getgroups():
        raise RuntimeError("could not switch to the sandbox user")


def _enter_environment(setup: dict[str, Any]) -> None:
    """Applies the limits, drops privileges, then takes on the function's environment."""
    _apply_limits(setup.get("limits", {}))
    if setup.get("uid") is not None:
        _drop_privileges(int(setup["uid"]))
    os.environ.clear()
    os.environ.update(setup.get("env", {}))
    sys.dont_write_bytecode = True
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    task_root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    for path in reversed([task_root, *paths]):
        if path not in sys.path:
            sys.path.insert(0, path)


def _usage() -> dict[str, float]:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu": used.ru_utime + used.ru_stime, "max_rss_kb": used.ru_maxrss}


def main() -> None:
    channel = _Channel(int(os.environ.pop("CLOUDLABS_LAMBDA_FD")))
    _enter_environment(json.loads(sys.stdin.readline() or "{}"))
    runtime_pid = os.getpid()
    request_filter = _RequestIdFilter()
    _configure_logging(request_filter)
    sys.stdout = sys.stderr = log_stream = _LogStream(channel)
    channel.send({"ready": True})
    handler = None
    for line in sys.stdin:
        invocation = json.loads(line)
        request_id = invocation["invoke-id"]
        request_filter.request_id = request_id
        deadline = time.time() + float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "3"))
        context = _LambdaContext(request_id, invocation.get("invoked-function-arn", ""), deadline)
        message: dict[str, Any]
        try:
            if handler is None:
                handler = _load_handler(os.environ["_HANDLER"])
            event = json.loads(invocation["payload"] or "null")
            result = handler(event, context)
            try:
                message = {"result": json.dumps(result)}
            except (TypeError, ValueError) as exc:
                message = {
                    "error": _error("Runtime.MarshalError", f"Unable to marshal response: {exc}")
                }
        except _InitError as exc:
            print(f"[ERROR] {exc.payload['errorType']}: {exc.payload['errorMessage']}")
            message = {"error": exc.payload}
        except Exception as exc:  # the handler's own failure, reported as AWS does
            stack = traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:])
            print(f"[ERROR] {type(exc).__name__}: {exc}\nTraceback (most recent call last):")
            print("".join(stack), end="")
            message = {"error": _error(type(exc).__name__, str(exc), stack)}
        log_stream.flush()
        if os.getpid() != runtime_pid:  # a process the function forked came back here: not ours
            os._exit(1 if "error" in message else 0)
        channel.send({**message, "usage": _usage()})


if __name__ == "__main__":
    main()
