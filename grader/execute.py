"""Step 1 of grading: run a submission with papermill, parameters injected, in a real kernel.

papermill drives execution through a registered engine, ``cloudlabs``, whose client differs from
papermill's in what grading needs:

- execution goes on after a cell raises, so later exercises still score;
- each cell has a timeout, and the whole notebook a budget;
- when a cell hangs or the kernel dies, the kernel is restarted, the ``parameters`` and ``setup``
  cells are re-run, and execution resumes at the next exercise: only that exercise loses points;
- every cell that did not run gets an error output saying why, so that nbgrader can never count
  a test that did not run as passed;
- a cell's output is capped, so a submission printing megabytes cannot exhaust memory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import papermill
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbformat import NotebookNode
from nbformat.v4 import new_output
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.exceptions import PapermillExecutionError

from grader import notebook as nbu
from grader.errors import EmulatorError

LOG = logging.getLogger(__name__)
SETUP_TAGS = {"parameters", "injected-parameters", "setup"}


@dataclasses.dataclass(frozen=True)
class Event:
    """Something that went wrong while running one cell."""

    cell: int
    section: str | None
    kind: str  #: "timeout", "kernel-died", "budget", "output-truncated"
    message: str


@dataclasses.dataclass
class Execution:
    """The executed notebook and what happened on the way."""

    notebook: NotebookNode
    events: list[Event]
    seconds: float


def not_run_output(reason: str) -> NotebookNode:
    return new_output("error", ename="NotRun", evalue=reason, traceback=[f"NotRun: {reason}"])


class GradingClient(PapermillNotebookClient):
    """papermill's client with the grading behaviour described in the module docstring."""

    def __init__(self, nb_man: Any, *, budget: float, output_limit: int, **kwargs: Any) -> None:
        super().__init__(nb_man, **kwargs)
        self.budget = budget
        self.output_limit = output_limit
        self.cell_timeout = self.timeout
        self.events: list[Event] = []
        self._chars: dict[int, int] = {}

    # -- output cap --------------------------------------------------------------------------
    def output(self, outs, msg, display_id, cell_index):  # type: ignore[override]
        content = msg.get("content", {})
        size = len(str(content.get("text", ""))) + len(str(content.get("data", "")))
        used = self._chars.get(cell_index, 0)
        self._chars[cell_index] = used + size
        if used + size <= self.output_limit:
            return super().output(outs, msg, display_id, cell_index)
        if used <= self.output_limit:  # first message over the cap: say so once
            note = f"\n[cloudlabs: output beyond {self.output_limit:,} characters was dropped]\n"
            outs.append(new_output("stream", name="stdout", text=note))
            self.events.append(
                Event(cell_index, None, "output-truncated", "the cell printed too much output")
            )
        return None

    # -- the cell loop -----------------------------------------------------------------------
    def papermill_execute_cells(self) -> None:
        cells = self.nb.cells
        sections = nbu.sections(self.nb)
        deadline = time.monotonic() + self.budget
        skip: dict[str, str] = {}  # section -> why its remaining cells do not run
        for index, cell in enumerate(cells):
            section = sections[index]
            self.nb_man.cell_start(cell, index)
            try:
                if cell.cell_type != "code":
                    continue
                if section in skip:
                    self._not_run(cell, skip[section])
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
                    self.execute_cell(cell, index)
                except CellTimeoutError:
                    why = f"a cell ran longer than {self.timeout} s and was stopped"
                    self._crashed(cell, index, section, "timeout", why, skip)
                except DeadKernelError:
                    why = "the kernel died (os._exit, a crash, or too much memory)"
                    self._crashed(cell, index, section, "kernel-died", why, skip)
            finally:
                self.nb_man.cell_complete(cell, index)

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
        """A fresh kernel with the parameters and setup cells run again."""
        self.kc.stop_channels()
        run_sync(self.km.restart_kernel)(now=True)
        run_sync(self.async_start_new_kernel_client)()
        for cell in self.nb.cells:
            if cell.cell_type == "code" and SETUP_TAGS & set(nbu.tags(cell)):
                reply = self.wait_for_reply(self.kc.execute(cell.source, store_history=False))
                if (reply or {}).get("content", {}).get("status") != "ok":
                    raise EmulatorError(
                        "after a kernel restart the setup cells failed again",
                        fix="check that the emulator is running (`cloudlabs status`)",
                    )


class GradingEngine(NBClientEngine):
    """The papermill engine ``cloudlabs``: NBClientEngine with :class:`GradingClient`."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):  # type: ignore[override]
        budget = kwargs.pop("budget")
        output_limit = kwargs.pop("output_limit")
        sink = kwargs.pop("sink")
        kwargs.pop("input_path", None)
        client = GradingClient(
            nb_man,
            budget=budget,
            output_limit=output_limit,
            kernel_name=kernel_name,
            timeout=kwargs.pop("execution_timeout", None) or 60,
            startup_timeout=kwargs.pop("start_timeout", 60),
            allow_errors=True,
            log=LOG,
            **{k: v for k, v in kwargs.items() if k in {"km", "log_output"}},
        )
        nb = client.execute()
        sink.append((nb, client.events))
        return nb


papermill_engines.register("cloudlabs", GradingEngine)


def _papermill_banner(cell: NotebookNode) -> bool:
    return bool({"papermill-error-cell-tag"} & set(nbu.tags(cell)))


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
) -> Execution:
    """Run ``nb`` with papermill and return the executed copy with what went wrong."""
    started = time.monotonic()
    km = kernel_manager(kernel, kernel_dirs)
    # The connection file lives in the working directory, the one place a sandboxed kernel sees
    # besides the read-only system.
    km.connection_file = str(cwd / ".kernel-connection.json")
    sink: list[tuple[NotebookNode, list[Event]]] = []
    with contextlib.suppress(PapermillExecutionError):  # errors are the students' and graded
        papermill.execute_notebook(
            nb,
            None,
            parameters=parameters,
            engine_name="cloudlabs",
            kernel_name=kernel,
            # no cwd: papermill would chdir the whole grader process, and workers are threads;
            # the sandbox launcher starts the kernel in its working directory instead
            progress_bar=False,
            execution_timeout=cell_timeout,
            start_timeout=start_timeout,
            budget=budget,
            output_limit=output_limit,
            km=km,
            sink=sink,
        )
    executed, events = sink[0]
    # papermill marks the first error with banner cells; errors are the student's and graded.
    executed.cells = [c for c in executed.cells if not _papermill_banner(c)]
    return Execution(executed, events, time.monotonic() - started)
