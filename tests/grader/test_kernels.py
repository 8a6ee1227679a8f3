"""Kernels started ahead of need: each serves one submission, the lab's imports preloaded, and
none outlives the pool."""

from __future__ import annotations

import json

import pytest

from grader import sandbox
from grader.execute import execute
from grader.kernels import Kernel, KernelPool
from tests import factories as f

PROBE = (
    "import json, sys\n"
    "print(json.dumps({'preloaded': 'email.mime.text' in sys.modules,\n"
    "                  'names': sorted(n for n in globals() if not n.startswith('_'))}))\n"
)


def _kernel(tmp_path, preload=()):
    return Kernel(parent=tmp_path, mode=sandbox.resolve_mode("auto"), memory_mb=2048,
                  hide=[], preload=preload)  # fmt: skip


def _run(kernel: Kernel) -> dict:
    nb = f.notebook(f.code(PROBE))
    executed = execute(nb, parameters={}, cwd=kernel.workdir, kernel=sandbox.KERNEL_NAME,
                       km=kernel.km).notebook  # fmt: skip
    return json.loads(executed.cells[0].outputs[0]["text"])


def test_a_preloaded_kernel_has_the_modules_and_no_names_of_them(tmp_path, process_watch):
    kernel = _kernel(tmp_path, preload=("email.mime.text", "no_such_module_anywhere"))
    try:
        seen = _run(kernel.start())
    finally:
        kernel.close()
    assert seen["preloaded"] is True
    assert seen["names"] == ["In", "Out", "exit", "get_ipython", "json", "open", "quit", "sys"]
    assert not kernel.workdir.exists()


def test_without_preload_nothing_extra_is_imported(tmp_path, process_watch):
    kernel = _kernel(tmp_path)
    try:
        assert _run(kernel.start())["preloaded"] is False
    finally:
        kernel.close()


@pytest.mark.parametrize(("ahead", "total"), [(2, 3), (3, 1), (0, 2)])
def test_the_pool_launches_ahead_never_beyond_the_class_and_ends_every_kernel(
    tmp_path, process_watch, ahead, total
):
    made: list[Kernel] = []

    def make() -> Kernel:
        made.append(_kernel(tmp_path))
        return made[-1]

    with KernelPool(make, ahead=ahead, total=total) as pool:
        pool.fill()
        assert len(made) == min(ahead, total)
        first = pool.take()  # a launched kernel, and the next one launched
        assert first.km.has_kernel and first.workdir.is_dir()
        assert len(made) == min(total, ahead + 1)
        assert _run(first)["names"]  # it serves a notebook
        first.close()
        for _ in range(total - 1):
            pool.take().close()
        assert len(made) == total  # one kernel per submission, none wasted
    left = process_watch.left(timeout=15)
    assert not left, process_watch.describe(left)
    assert not any(k.workdir.exists() for k in made)


def test_a_closed_pool_ends_the_kernels_nobody_took(tmp_path, process_watch):
    made: list[Kernel] = []
    pool = KernelPool(lambda: made.append(_kernel(tmp_path)) or made[-1], ahead=2, total=5)
    pool.fill()
    assert len(made) == 2 and all(k.km.has_kernel for k in made)
    pool.close()
    pool.fill()  # a closed pool launches nothing more
    assert len(made) == 2
    left = process_watch.left(timeout=15)
    assert not left, process_watch.describe(left)
    assert not any(k.workdir.exists() for k in made)
