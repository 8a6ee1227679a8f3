"""Where tests run: a trusted process of the grader's, never the student's kernel.

The student's kernel runs the parameters, setup and answer cells. A test cell (visible and hidden
asserts) runs here instead, in a long-lived worker process (``python -m grader.trusted``) that
ran the lab's own parameters and setup cells for the same account. The test sees the setup's
names (clients, resource names), the builtins and the answers it reads, which the kernel sends as
plain data (:mod:`grader.answers`); a student's function is a stub whose calls go back to the
kernel as plain data. So hidden tests never enter the student's kernel, and nothing the kernel
does (monkeypatched boto3, custom exception hooks, input transformers, objects whose ``==`` is
always true) reaches the test or its outcome.

A test that runs longer than its timeout is stopped by killing the worker, which is then started
again and re-runs the setup. Workers are pooled: one per grading thread, reused for every
submission that thread grades.

Protocol (JSON lines): the grader sends ``{"op": "begin", "parameters", "setup"}``,
``{"op": "test", "source", "answers"}`` and ``{"op": "reply", ...}`` on the worker's stdin; the
worker answers on its stdout with ``{"type": "done", "error"}`` or, while a test calls a student's
function, ``{"type": "call", "name", "args", "kwargs"}``.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import io
import itertools
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from grader import answers as ans

#: The environment a worker keeps (it talks to the emulator; nothing else of the grader's).
_KEPT_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "PYTHONPATH")
_MEMORY_MB = 2048


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How one test ended: ``error`` is None when it passed, else (name, message)."""

    error: tuple[str, str] | None = None

    @property
    def passed(self) -> bool:
        return self.error is None


Call = Callable[[str, list, dict], dict]


class TestProcess:
    """One worker process and the conversation with it (used by one thread at a time)."""

    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self._begin: dict | None = None
        self._begun = False
        self._ids = itertools.count(1)  #: every request has an id its replies carry
        self._spawn()

    # -- the process ---------------------------------------------------------------------------
    def _spawn(self) -> None:
        self._cwd = tempfile.mkdtemp(prefix="cloudlabs-tests-")
        env = {k: v for k, v in os.environ.items() if k in _KEPT_ENV}
        env.update({"PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore", "HOME": self._cwd,
                    "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})  # fmt: skip
        self._process = subprocess.Popen(
            [sys.executable, "-m", "grader.trusted"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=self._cwd,
            env=env,
            start_new_session=True,
        )
        self._messages: queue.Queue[dict | None] = queue.Queue()
        threading.Thread(
            target=_read_lines, args=(self._process.stdout, self._messages), daemon=True
        ).start()
        self._begun = False

    def _send(self, message: dict) -> None:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(message).encode() + b"\n")
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the worker died; the reader thread reports it

    def _restart(self) -> None:
        self.close()
        self._spawn()
        if self._begin is not None:
            self._send(self._begin)

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=10)
        for stream in (self._process.stdin, self._process.stdout):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]
        shutil.rmtree(self._cwd, ignore_errors=True)

    # -- the conversation ----------------------------------------------------------------------
    def begin(self, *, parameters: dict[str, Any], setup: list[str]) -> None:
        """Start running the lab's setup for one submission (returns at once)."""
        self._begin = {"op": "begin", "id": next(self._ids), "parameters": parameters,
                       "setup": setup}  # fmt: skip
        self._begun = False
        self._send(self._begin)

    def _wait(self, deadline: float, request: int) -> dict | str | None:
        """The next message about ``request``; replies to earlier requests (a submission whose
        tests never ran leaves its setup's reply unread) are dropped, never taken for this one."""
        while True:
            try:
                message = self._messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return "timeout"
            if message is None or message.get("id") == request:
                return message

    def _await_setup(self, timeout: float) -> Outcome:
        if self._begun:
            return Outcome()
        assert self._begin is not None
        message = self._wait(time.monotonic() + timeout, self._begin["id"])
        if not isinstance(message, dict):
            self._restart()
            return Outcome(("SetupError", "the lab's setup did not finish in the test process"))
        self._begun = True
        if message.get("error"):
            name, text = message["error"]
            return Outcome(("SetupError", f"the lab's setup failed: {name}: {text}"))
        return Outcome()

    def run(self, source: str, answers: dict, *, call: Call, timeout: float) -> Outcome:
        """Run one test cell with ``answers`` (the kernel's JSON values) bound."""
        setup = self._await_setup(timeout)
        if not setup.passed:
            self._begun = False
            return setup
        request = next(self._ids)
        self._send({"op": "test", "id": request, "source": source, "answers": answers})
        deadline = time.monotonic() + timeout
        while True:
            message = self._wait(deadline, request)
            if message == "timeout" or message is None:
                self._restart()
                why = (
                    f"the test did not finish within {timeout:.0f} s"
                    if message == "timeout"
                    else "the test process stopped while running this test"
                )
                return Outcome(("TestTimeout", why))
            assert isinstance(message, dict)
            if message.get("type") == "call":
                started = time.monotonic()
                reply = call(message["name"], message.get("args", []), message.get("kwargs", {}))
                deadline += time.monotonic() - started  # the student's time is not the test's
                self._send({"op": "reply", "id": request, **reply})
                continue
            error = message.get("error")
            return Outcome(tuple(error) if error else None)  # type: ignore[arg-type]


def _read_lines(stream: Any, messages: queue.Queue) -> None:
    for line in stream:
        try:
            messages.put(json.loads(line))
        except ValueError:
            continue
    messages.put(None)


class TestPool:
    """Idle workers, handed to grading threads one at a time; closed with the pool."""

    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self._idle: queue.SimpleQueue[TestProcess] = queue.SimpleQueue()
        self._all: list[TestProcess] = []
        self._lock = threading.Lock()

    def warm(self, count: int) -> None:
        for _ in range(count):
            self._idle.put(self._new())

    def _new(self) -> TestProcess:
        process = TestProcess()
        with self._lock:
            self._all.append(process)
        return process

    @contextlib.contextmanager
    def process(self) -> Iterator[TestProcess]:
        try:
            worker = self._idle.get_nowait()
        except queue.Empty:
            worker = self._new()
        try:
            yield worker
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        with self._lock:
            workers, self._all = self._all, []
        for worker in workers:
            worker.close()

    def __enter__(self) -> TestPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the worker ---------------------------------------------------------------------------------


class StudentCodeError(Exception):
    """Raised in a test when a function the student wrote raised, or returned no plain data."""


class _Worker:
    def __init__(self, reader: Any, writer: Any) -> None:
        self.reader = reader
        self.writer = writer
        self.base: dict[str, Any] | None = None
        self.request: int | None = None  #: the id of the request being served

    def send(self, message: dict) -> None:
        message = {"id": self.request, **message}
        self.writer.write(json.dumps(message) + "\n")
        self.writer.flush()

    def receive(self) -> dict | None:
        line = self.reader.readline()
        return json.loads(line) if line else None

    def function(self, name: str) -> Callable[..., Any]:
        def student_function(*args: Any, **kwargs: Any) -> Any:
            self.send({"type": "call", "name": name, "args": ans.encode(list(args)),
                       "kwargs": ans.encode(kwargs)})  # fmt: skip
            reply = self.receive() or {}
            while reply and (reply.get("op") != "reply" or reply.get("id") != self.request):
                reply = self.receive() or {}
            if "raised" in reply:
                kind, text = ([*list(reply["raised"]), "", ""])[:2]
                raise StudentCodeError(f"your function {name} raised {kind}: {text}")
            try:
                return ans.decode(reply.get("value"))
            except ans.Unavailable:
                raise StudentCodeError(f"your function {name} returned no plain data") from None

        student_function.__name__ = name
        return student_function

    def begin(self, message: dict) -> None:
        namespace: dict[str, Any] = {"__name__": "__cloudlabs_tests__", "__builtins__": builtins}
        namespace.update(message.get("parameters", {}))
        try:
            with _quiet():
                for source in message.get("setup", []):
                    exec(compile(source, "<setup>", "exec"), namespace)  # the lab's own code
        except BaseException as exc:
            self.base = None
            self.send({"type": "done", "error": _describe(exc)})
            return
        self.base = namespace
        self.send({"type": "done", "error": None})

    def test(self, message: dict) -> None:
        if self.base is None:
            self.send({"type": "done", "error": ["SetupError", "the lab's setup did not run"]})
            return
        namespace = dict(self.base)
        for name, value in (message.get("answers") or {}).items():
            try:
                namespace[name] = ans.decode(value, lambda name=name: self.function(name))
            except ans.Unavailable as missing:
                self.send({"type": "done", "error": _unavailable(name, missing)})
                return
        try:
            with _quiet():
                exec(compile(message["source"], "<test>", "exec"), namespace)  # the lab's test
        except BaseException as exc:
            self.send({"type": "done", "error": _describe(exc)})
            return
        self.send({"type": "done", "error": None})


def _unavailable(name: str, missing: ans.Unavailable) -> list[str]:
    if missing.kind == "missing":
        return ["NameError", f"`{name}` is not defined in your notebook"]
    if missing.kind == "function":
        return ["TypeError", f"`{name}` is a function where a value was expected"]
    return ["TypeError", f"`{name}` is a {missing.type_name}, not plain data (str, number, "
                         "bool, None, list, dict or bytes), so it cannot be graded"]  # fmt: skip


def _describe(exc: BaseException) -> list[str]:
    """(name, one-line message) of what a test or the setup raised; never a traceback, which
    could quote the test's hidden lines."""
    from grader.plain import PLAIN_ERROR, explain_exception

    plain = explain_exception(exc)
    if plain is not None:
        return [PLAIN_ERROR, plain[:2000]]
    text = str(exc)[:2000]
    if not text:
        text = "a check of this test failed" if isinstance(exc, AssertionError) else "no message"
    return [type(exc).__name__, text]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Tests may print; their output is dropped (the protocol owns the real stdout)."""
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = io.StringIO()
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def _limit_memory() -> None:
    import resource

    memory = _MEMORY_MB * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main() -> None:
    writer = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # stray writes of C code cannot corrupt the protocol
    _limit_memory()
    import boto3  # noqa: F401 - imported once, before the first submission needs it

    from grader import botocache

    botocache.share_loader()  # every submission's setup makes a session: one loader for all
    from grader.statecheck import bound_reads

    bound_reads()
    worker = _Worker(sys.stdin, writer)
    while True:
        message = worker.receive()
        if message is None:
            return
        worker.request = message.get("id")
        if message.get("op") == "begin":
            worker.begin(message)
        elif message.get("op") == "test":
            worker.test(message)


if __name__ == "__main__":
    main()
