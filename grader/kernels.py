"""Kernels started ahead of need.

A kernel takes about half a second to start, and a lab's imports (boto3) as long again. A class
run does not wait for either: while a worker grades one submission, the kernel for the next one
boots in the background with the lab's imports done (:func:`grader.sandbox.preload_line`). Each
kernel has its own working directory and sandbox, made before any submission is assigned to it,
and it serves exactly one submission: nothing a submission does reaches another's kernel.
"""

from __future__ import annotations

import collections
import contextlib
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbclient.util import run_sync

from grader import sandbox
from grader.execute import kernel_manager, shutdown


class Kernel:
    """One sandboxed kernel and its working directory (removed by :meth:`close`)."""

    def __init__(
        self, *, parent: Path | None, mode: str, memory_mb: int, hide: Sequence[Path],
        preload: Sequence[str] = (), forkserver: Path | None = None,
    ) -> None:  # fmt: skip
        self.workdir = Path(tempfile.mkdtemp(prefix="kernel-", dir=parent))
        specs = sandbox.write_kernelspec(
            self.workdir / ".kernels", mode=mode, memory_mb=memory_mb, hide=list(hide),
            workdir=self.workdir, preload=preload, forkserver=forkserver,
        )  # fmt: skip
        self.km: AsyncKernelManager = kernel_manager(sandbox.KERNEL_NAME, [specs])
        # The connection file lives in the working directory, the one place a sandboxed kernel
        # sees besides the read-only system.
        self.km.connection_file = str(self.workdir / ".kernel-connection.json")

    def start(self) -> Kernel:
        """Launch the kernel's process (it boots on its own; nbclient waits for it when used)."""
        run_sync(self.km.start_kernel)()
        return self

    def close(self) -> None:
        shutdown(self.km)
        shutil.rmtree(self.workdir, ignore_errors=True)


class KernelPool:
    """Up to ``ahead`` kernels launched before they are asked for, and never more in all than
    ``total`` (the submissions left to grade)."""

    def __init__(self, make: Callable[[], Kernel], *, ahead: int, total: int) -> None:
        self._make = make
        self._ahead = max(0, ahead)
        self._left = total
        self._ready: collections.deque[Kernel] = collections.deque()
        self._lock = threading.Lock()
        self._closed = False

    def _launch(self) -> Kernel:
        kernel = self._make()
        try:
            return kernel.start()
        except BaseException:
            kernel.close()
            raise

    def take(self) -> Kernel:
        """A launched kernel for one submission (the caller closes it), and the next launched."""
        with self._lock:
            kernel = self._ready.popleft() if self._ready else None
            self._left -= 1
        if kernel is None:
            kernel = self._launch()
        self.fill()
        return kernel

    def fill(self) -> None:
        """Launch kernels until ``ahead`` wait (or no submission is left for them)."""
        while True:
            with self._lock:
                if self._closed or len(self._ready) >= min(self._ahead, self._left):
                    return
            try:
                kernel = self._launch()
            except Exception:  # the submission that takes it will start one and see the error
                return
            with self._lock:
                if self._closed:
                    kernel.close()
                    return
                self._ready.append(kernel)

    def close(self) -> None:
        """End every kernel nobody took."""
        with self._lock:
            self._closed = True
            left, self._ready = list(self._ready), collections.deque()
        for kernel in left:
            with contextlib.suppress(Exception):
                kernel.close()

    def __enter__(self) -> KernelPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
