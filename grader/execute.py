"""Step 1 of grading: run a submission in a real kernel, its parameters injected by papermill.

papermill injects the parameters (``papermill.parameterize``); nbclient runs the cells, through a
client that differs from nbclient's own in what grading needs:

- execution goes on after a cell raises, so later exercises still score;
- each cell has a timeout, and the whole notebook a budget;
- when a cell hangs or the kernel dies, the kernel is restarted, the ``parameters`` and ``setup``
  cells are re-run, and execution resumes at the next exercise: only that exercise loses points;
- every cell that did not run gets an error output saying why, so that nbgrader can never count
  a test that did not run as passed;
- a cell's output is capped, so a submission printing megabytes cannot exhaust memory;
- with ``tests``, test cells never run in the kernel: each runs in the grader's trusted process
  (:mod:`grader.trusted`) with the answers it reads exported from the kernel as plain data.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async, run_sync
from nbformat import NotebookNode
from nbformat.v4 import new_output
from papermill.parameterize import parameterize_notebook

from grader import answers as ans
from grader import notebook as nbu
from grader.capture import Event, OutputCaps
from grader.errors import EmulatorError
from grader.trusted import TestProcess

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class Execution:
    """The executed notebook and what happened on the way."""

    notebook: NotebookNode
    events: list[Event]
    seconds: float
    ran: set[int] = dataclasses.field(default_factory=set)  #: cells that ran (or were tested)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)  #: kernel start, tests


@dataclasses.dataclass(frozen=True)
class Tests:
    """Test cells run in a trusted process (:mod:`grader.trusted`), not in the kernel."""

    process: TestProcess
    inputs: dict[str, list[str]]  #: grade id -> the answer names the test reads


class _SetupBroken(Exception):
    """The kernel's setup failed after a restart while the emulator is fine."""


def _json_object(text: str | None) -> dict | None:
    try:
        value = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def not_run_output(reason: str) -> NotebookNode:
    return new_output("error", ename="NotRun", evalue=reason, traceback=[f"NotRun: {reason}"])


class GradingClient(OutputCaps, NotebookClient):
    """nbclient's client with the grading behaviour described in the module docstring."""

    def __init__(
        self, nb: NotebookNode, *, budget: float, output_limit: int, tests: Tests | None = None,
        emulator_alive: Callable[[], bool] | None = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(nb, **kwargs)
        self.tests = tests
        self.emulator_alive = emulator_alive
        self.broken = ""  #: why nothing more runs (the kernel's setup broke after a restart)
        self.budget = budget
        self.output_limit = output_limit
        self.cell_timeout = self.timeout
        self.events: list[Event] = []
        self.ran: set[int] = set()
        self.timings = {"kernel start": 0.0, "tests": 0.0}

    def execute(self, **kwargs: Any) -> NotebookNode:  # type: ignore[override]
        """nbclient's ``execute``, but a kernel the student broke is not asked for its info."""
        self.reset_execution_trackers()
        started = time.monotonic()
        with self.setup_kernel(**kwargs):
            self.timings["kernel start"] = time.monotonic() - started
            self.execute_cells()
            if self.kc is not None and not self.broken:
                info = self.wait_for_reply(self.kc.kernel_info())
                if info:
                    self.nb.metadata["language_info"] = info["content"]["language_info"]
            self.set_widgets_metadata()
        return self.nb

    # -- the cell loop -----------------------------------------------------------------------
    def execute_cells(self) -> None:
        cells = self.nb.cells
        sections = nbu.sections(self.nb)
        deadline = time.monotonic() + self.budget
        skip: dict[str, str] = {}  # section -> why its remaining cells do not run
        for index, cell in enumerate(cells):
            section = sections[index]
            if cell.cell_type != "code":
                continue
            cell.outputs = []  # what a submission brought is never taken for a result
            cell.execution_count = None
            if self.broken or section in skip:
                self._not_run(cell, self.broken or skip[section])
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 1:
                why = f"the notebook's time budget of {self.budget:.0f} s was used up"
                if not any(e.kind == "budget" for e in self.events):
                    self.events.append(Event(index, section, "budget", why))
                self._not_run(cell, why)
                continue
            self.timeout = int(max(1, min(self.cell_timeout, remaining)))
            try:
                self._run_cell(cell, index, section, skip)
                self.ran.add(index)
            except _SetupBroken as broken:
                self.broken = str(broken)
                self.events.append(Event(index, section, "setup-broken", self.broken))

    def _run_cell(
        self, cell: NotebookNode, index: int, section: str | None, skip: dict[str, str]
    ) -> None:
        if self.tests is not None and nbu.is_graded(cell) and not nbu.is_solution(cell):
            if not nbu.is_state_check(cell):  # state checks run after the notebook
                self._run_test(cell)
            return
        try:
            self.execute_cell(cell, index)
        except CellTimeoutError:
            why = f"a cell ran longer than {self.timeout} s and was stopped"
            self._crashed(cell, index, section, "timeout", why, skip)
        except DeadKernelError:
            why = "the kernel died (os._exit, a crash, or too much memory)"
            self._crashed(cell, index, section, "kernel-died", why, skip)

    def _not_run(self, cell: NotebookNode, reason: str) -> None:
        cell.outputs = [not_run_output(f"this cell did not run: {reason}")]

    def _crashed(
        self, cell: NotebookNode, index: int, section: str | None, kind: str, why: str,
        skip: dict[str, str],
    ) -> None:  # fmt: skip
        cell.outputs.append(not_run_output(why))
        self.events.append(Event(index, section, kind, why))
        if section:
            skip[section] = f"an earlier cell of this exercise failed: {why}"
        self._restart()

    def _restart(self) -> None:
        """A fresh kernel with the parameters and setup cells run again. When the setup fails
        again and the emulator is fine, the cause is the student's (files their code left in the
        kernel's home, say): the rest of the notebook does not run, and the report says why."""
        self.kc.stop_channels()
        try:
            run_sync(self.km.restart_kernel)(now=True)
            run_sync(self.async_start_new_kernel_client)()
        except Exception as exc:  # it started once, so what stops it now is the student's
            raise _SetupBroken(
                "the kernel could not be restarted (did your code change files in its home "
                f"directory?): {exc}"
            ) from exc
        for cell in self.nb.cells:
            if cell.cell_type == "code" and nbu.SETUP_TAGS & set(nbu.tags(cell)):
                reply = self.wait_for_reply(self.kc.execute(cell.source, store_history=False))
                if (reply or {}).get("content", {}).get("status") != "ok":
                    if self.emulator_alive is not None and not self.emulator_alive():
                        raise EmulatorError(
                            "the emulator stopped answering while this submission ran",
                            fix="check that the emulator is running (`cloudlabs status`)",
                        )
                    raise _SetupBroken(
                        "after a kernel restart the lab's setup cells failed in this notebook's "
                        "kernel (did your code change files in its home directory?)"
                    )

    # -- tests in the trusted process --------------------------------------------------------
    def _run_test(self, cell: NotebookNode) -> None:
        """Run a test cell in the trusted process with the answers it reads from the kernel."""
        assert self.tests is not None
        started = time.monotonic()
        names = self.tests.inputs.get(nbu.grade_id(cell) or "", [])
        values: dict | None = {}
        if names:
            text = self._kernel_eval(ans.export_expression(names))
            values = _json_object(text)
        if values is None:
            error = ("AnswersUnreadable", "your answers could not be read from the notebook")
        else:
            outcome = self.tests.process.run(
                cell.source, values, call=self._call_student, timeout=self.cell_timeout
            )
            error = outcome.error
            if error and error[0] == "SetupError":  # the lab's own setup: never the student's
                raise EmulatorError(
                    f"the grader's test process could not run the lab's setup ({error[1]})",
                    fix="check that the emulator is running (`cloudlabs status`) and that the "
                    "lab's setup cells run (`cloudlabs validate`)",
                )
        cell.outputs = (
            []
            if error is None
            else [self._error({"ename": error[0], "evalue": error[1]}, short=True)]
        )
        self.timings["tests"] += time.monotonic() - started

    def _call_student(self, name: str, args: list, kwargs: dict) -> dict:
        text = self._kernel_eval(ans.call_expression(name, args, kwargs))
        reply = _json_object(text)
        if reply is None or not ({"value", "raised"} & set(reply)):
            return {"raised": ["Error", "it did not answer (it hung, crashed or was replaced)"]}
        return reply

    def _kernel_eval(self, expression: str) -> str | None:
        """Evaluate ``expression`` silently in the student's kernel; the JSON text it returned."""
        try:
            msg_id = self.kc.execute(
                ans.KERNEL_HELPERS, silent=True, store_history=False,
                user_expressions={"value": expression},
            )  # fmt: skip
            reply = run_sync(self._async_reply)(msg_id, float(self.cell_timeout))
            if reply is None:  # hung: interrupt it; a kernel that ignores that is restarted
                run_sync(self.km.interrupt_kernel)()
                reply = run_sync(self._async_reply)(msg_id, 5.0)
                if reply is None:
                    self._restart()
                    return None
        except DeadKernelError:
            self._restart()
            return None
        return ans.reply_text(reply, "value")

    async def _async_reply(self, msg_id: str, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=min(1, remaining)))
            except Empty:
                if not await ensure_async(self.kc.is_alive()):
                    raise DeadKernelError("Kernel died") from None
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg
        return None


def kernel_manager(kernel: str, kernel_dirs: list[Path] | None = None) -> AsyncKernelManager:
    """A kernel manager for ``kernel``, looked up first in ``kernel_dirs`` (the sandbox's)."""
    specs = KernelSpecManager()
    if kernel_dirs:
        specs.kernel_dirs = [str(d) for d in kernel_dirs] + list(specs.kernel_dirs)
    return AsyncKernelManager(kernel_name=kernel, kernel_spec_manager=specs)


def execute(
    nb: NotebookNode,
    *,
    parameters: dict[str, Any],
    cwd: Path,
    kernel: str = "python3",
    kernel_dirs: list[Path] | None = None,
    cell_timeout: float = 60.0,
    budget: float = 600.0,
    output_limit: int = 100_000,
    start_timeout: float = 60.0,
    tests: Tests | None = None,
    emulator_alive: Callable[[], bool] | None = None,
    km: AsyncKernelManager | None = None,
) -> Execution:
    """Run a copy of ``nb`` with ``parameters`` injected; the executed copy and what went wrong.

    ``km``: a kernel manager whose kernel was started ahead of need (:mod:`grader.kernels`); by
    default a kernel is started here. Either way the kernel is ended before this returns."""
    started = time.monotonic()
    nb = _with_papermill_metadata(nb)
    if parameters:  # as papermill does: no parameters, no injected cell
        nb = parameterize_notebook(nb, parameters, kernel_name=kernel, language="python")
    if km is None:
        km = kernel_manager(kernel, kernel_dirs)
        # The connection file lives in the working directory, the one place a sandboxed kernel
        # sees besides the read-only system.
        km.connection_file = str(cwd / ".kernel-connection.json")
    client = GradingClient(
        nb, km=km, budget=budget, output_limit=output_limit, tests=tests,
        emulator_alive=emulator_alive, kernel_name=kernel, timeout=int(cell_timeout),
        startup_timeout=int(start_timeout), allow_errors=True, log=LOG,
    )  # fmt: skip
    try:
        client.execute()
    finally:
        if client.kc is not None:
            with contextlib.suppress(Exception):
                client.kc.stop_channels()
        shutdown(km)  # nbclient leaves running a kernel it was handed: end it here
    return Execution(
        client.nb, client.events, time.monotonic() - started, client.ran, client.timings
    )


def _with_papermill_metadata(nb: NotebookNode) -> NotebookNode:
    """A copy of ``nb`` with the metadata papermill's parameterize reads and writes (as
    ``papermill.iorw.load_notebook_node`` would give it)."""
    nb = copy.deepcopy(nb)
    nb.metadata["papermill"] = NotebookNode({"parameters": {}})
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
    return nb


def shutdown(km: AsyncKernelManager) -> None:
    """Stop the kernel and its process group, whatever state it is in."""
    with contextlib.suppress(Exception):
        if run_sync(km.is_alive)():
            run_sync(km.shutdown_kernel)(now=True)
    with contextlib.suppress(Exception):
        run_sync(km.cleanup_resources)()
