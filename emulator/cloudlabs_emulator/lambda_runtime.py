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

Network. In a sandbox the process has a network namespace of its own, where only ``lo`` exists;
the setup's ``network`` (``socket``, a unix socket path; ``port``, the gateway's) names its one
way out. After the uid switch, before the function's code loads, :class:`Relay` (one thread)
listens on ``127.0.0.1:port`` (and ``[::1]:port`` where IPv6 is up) and forwards each connection
to the unix socket, whose other end, in the emulator, forwards it to the gateway. So the endpoint
LocalStack gives the function (``AWS_ENDPOINT_URL=http://127.0.0.1:port``, ``LOCALSTACK_HOSTNAME``,
``EDGE_PORT``) reaches the emulator, and no other address or port reaches anything.

Only the standard library and boto3 (which AWS's Python runtimes also ship) are imported here.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import importlib
import io
import json
import logging
import os
import resource
import selectors
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
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


class _Link:
    """One forwarded connection: ``ends[0]`` accepted, ``ends[1]`` dialled."""

    __slots__ = ("connecting", "ends", "eof", "events", "pending", "shut")

    def __init__(self, accepted: socket.socket, dialled: socket.socket) -> None:
        self.ends = (accepted, dialled)
        self.pending = [b"", b""]  # bytes read from one end, to write to this end
        self.eof = [False, False]  # this end has sent everything
        self.shut = [False, False]  # this end was told so (shutdown for writing)
        self.events = [0, 0]  # what the selector watches for on this end
        self.connecting = True  # ends[1] until its connect completes


_LISTENER, _WAKE = object(), object()


class Relay:
    """Forwards every connection accepted on ``listeners`` to a new connection from ``dial``.

    One thread serves all connections with a selector. ``dial`` returns a non-blocking socket
    whose connect has begun (or raises ``OSError``: the accepted connection is then closed). Each
    direction holds at most one chunk in flight and reads on only once it is written, so a slow
    reader slows its writer; an end that finishes sending (EOF) is shut down for writing on the
    other side once what it sent is through; an error on either end closes both. At most
    ``max_connections`` at a time: beyond, further ones wait in the listeners' backlogs.
    :meth:`close` ends the thread, which closes every socket (the listeners too).
    """

    CHUNK = 64 * 1024

    def __init__(
        self,
        listeners: list[socket.socket],
        dial: Callable[[], socket.socket],
        *,
        max_connections: int = 64,
        name: str = "cloudlabs-relay",
    ) -> None:
        self._listeners = listeners
        self._dial = dial
        self._max = max_connections
        self._selector = selectors.DefaultSelector()
        self._wake, self._waker = socket.socketpair()
        self._links: set[_Link] = set()
        self._accepting = False
        self._resume_at: float | None = None  # accept failed (no file descriptor left): retry then
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)
        for sock in (*listeners, self._wake):
            sock.setblocking(False)
        self._selector.register(self._wake, selectors.EVENT_READ, _WAKE)

    def start(self) -> Relay:
        self._accept_again()
        self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if not self._thread.is_alive() and self._thread.ident is None:  # never started
            self._release()
            return
        with contextlib.suppress(OSError):
            self._waker.send(b"x")
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # -- the thread ------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                wait = None
                if self._resume_at is not None:
                    wait = max(0.0, self._resume_at - time.monotonic())
                for key, mask in self._selector.select(wait):
                    if key.data is _WAKE:
                        return
                    if key.data is _LISTENER:
                        self._accept(key.fileobj)  # type: ignore[arg-type]
                        continue
                    link, side = key.data
                    if link not in self._links:  # closed by an earlier event of this round
                        continue
                    try:
                        self._service(link, side, mask)
                    except Exception:  # whatever it is, it is this connection's
                        self._close_link(link)
                if self._resume_at is not None and time.monotonic() >= self._resume_at:
                    self._resume_at = None
                    self._accept_again()
        finally:
            self._release()

    def _release(self) -> None:
        self._closed = True
        for link in list(self._links):
            self._close_link(link)
        for sock in (*self._listeners, self._wake, self._waker):
            with contextlib.suppress(OSError):
                sock.close()
        with contextlib.suppress(OSError):
            self._selector.close()

    def _accept_again(self) -> None:
        if not self._accepting and len(self._links) < self._max:
            for listener in self._listeners:
                self._selector.register(listener, selectors.EVENT_READ, _LISTENER)
            self._accepting = True

    def _stop_accepting(self) -> None:
        if self._accepting:
            for listener in self._listeners:
                self._selector.unregister(listener)
            self._accepting = False

    def _accept(self, listener: socket.socket) -> None:
        while len(self._links) < self._max:
            try:
                accepted, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # EMFILE and the like: the listener stays readable, so pause
                self._stop_accepting()
                self._resume_at = time.monotonic() + 1.0
                return
            accepted.setblocking(False)
            if accepted.family != socket.AF_UNIX:
                with contextlib.suppress(OSError):
                    accepted.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                dialled = self._dial()
            except OSError:
                accepted.close()
                continue
            link = _Link(accepted, dialled)
            self._links.add(link)
            self._watch(link)
        self._stop_accepting()

    def _service(self, link: _Link, side: int, mask: int) -> None:
        sock, other = link.ends[side], 1 - side
        try:
            if link.connecting:  # only ends[1] is watched, for writing
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    raise OSError(error, os.strerror(error))
                link.connecting = False
            else:
                if mask & selectors.EVENT_WRITE and link.pending[side]:
                    sent = sock.send(link.pending[side], socket.MSG_NOSIGNAL)
                    link.pending[side] = link.pending[side][sent:]
                if mask & selectors.EVENT_READ and not link.eof[side] and not link.pending[other]:
                    data = sock.recv(self.CHUNK)
                    if data:
                        link.pending[other] = data
                    else:
                        link.eof[side] = True
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._close_link(link)
            return
        for end in (0, 1):  # the other end finished sending and all it sent is through
            if link.eof[1 - end] and not link.pending[end] and not link.shut[end]:
                link.shut[end] = True
                with contextlib.suppress(OSError):
                    link.ends[end].shutdown(socket.SHUT_WR)
        if all(link.shut):
            self._close_link(link)
        else:
            self._watch(link)

    def _watch(self, link: _Link) -> None:
        for end in (0, 1):
            events = 0
            if not link.connecting:
                if not link.eof[end] and not link.pending[1 - end]:
                    events |= selectors.EVENT_READ
                if link.pending[end]:
                    events |= selectors.EVENT_WRITE
            elif end == 1:
                events = selectors.EVENT_WRITE
            if events == link.events[end]:
                continue
            sock = link.ends[end]
            if not link.events[end]:
                self._selector.register(sock, events, (link, end))
            elif events:
                self._selector.modify(sock, events, (link, end))
            else:
                self._selector.unregister(sock)
            link.events[end] = events

    def _close_link(self, link: _Link) -> None:
        self._links.discard(link)
        for end, sock in enumerate(link.ends):
            if link.events[end]:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self._selector.unregister(sock)
            with contextlib.suppress(OSError):  # also when a forked process holds a copy
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        if not self._closed and self._resume_at is None:
            self._accept_again()


def start_connection(family: int, address: Any) -> socket.socket:
    """A non-blocking socket whose connect to ``address`` has begun (for :class:`Relay`)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        if family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        error = sock.connect_ex(address)
        if error not in (0, errno.EINPROGRESS):  # a unix socket's full backlog is EAGAIN
            raise OSError(error, os.strerror(error))
    except BaseException:
        sock.close()
        raise
    return sock


def _open_network(network: dict[str, Any]) -> Relay:
    """The forwarder from the loopback gateway port to the emulator's unix socket."""
    port, path = int(network["port"]), str(network["socket"])
    listeners = [socket.create_server(("127.0.0.1", port), backlog=128)]
    if socket.has_ipv6:
        with contextlib.suppress(OSError):  # "localhost" may be ::1 first
            listeners.append(
                socket.create_server(("::1", port), family=socket.AF_INET6, backlog=128)
            )
    return Relay(
        listeners, lambda: start_connection(socket.AF_UNIX, path), name="cloudlabs-network"
    ).start()


def _usage() -> dict[str, float]:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu": used.ru_utime + used.ru_stime, "max_rss_kb": used.ru_maxrss}


def main() -> None:
    channel = _Channel(int(os.environ.pop("CLOUDLABS_LAMBDA_FD")))
    setup = json.loads(sys.stdin.readline() or "{}")
    _enter_environment(setup)
    if setup.get("network"):
        _open_network(setup["network"])
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
