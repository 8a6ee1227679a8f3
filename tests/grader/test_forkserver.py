"""Kernels forked from a fork server (grader/forkserver.py): the lab's imports and service models
done before the fork, the launcher's own start when the server is gone, and nothing left when a
kernel's launcher is killed. What a forked kernel sees and may do is tested with the other
sandboxed kernels, in test_sandbox.py (its ``launch`` fixture)."""

from __future__ import annotations

import json
import os
import shutil

import psutil
import pytest

from grader import answers, botocache, forkserver, sandbox
from grader.execute import execute
from grader.kernels import Kernel
from grader.labs import find
from tests import factories as f

needs_fork = pytest.mark.skipif(
    not (shutil.which("bwrap") and forkserver.usable("bwrap")),
    reason="kernels are forked into bwrap sandboxes by root only",
)

PROBE = (
    "import json, os, sys\n"
    "print(json.dumps({'preloaded': 'boto3' in sys.modules, 'parent': os.getppid(),\n"
    "                  'pid': os.getpid(), 'names': sorted(n for n in globals() if n[0] != '_')}))\n"
)


def _kernel(tmp_path, socket) -> Kernel:
    return Kernel(parent=tmp_path, mode="bwrap", memory_mb=2048, hide=[], forkserver=socket)


def _probe(kernel: Kernel) -> tuple[dict, str]:
    """What the kernel reports of itself, and its log (the kernel is closed)."""
    try:
        nb = f.notebook(f.code(PROBE))
        executed = execute(nb, parameters={}, cwd=kernel.workdir, kernel=sandbox.KERNEL_NAME,
                           km=kernel.km).notebook  # fmt: skip
        return json.loads(executed.cells[0].outputs[0]["text"]), (
            kernel.workdir / "kernel.log"
        ).read_text()
    finally:
        kernel.close()


@needs_fork
def test_a_forked_kernel_has_the_servers_imports_and_none_of_its_names(tmp_path, process_watch):
    with forkserver.ForkServer(parent=tmp_path, preload=["boto3"], services=["s3"]) as server:
        assert server.ready
        seen, log = _probe(_kernel(tmp_path, server.socket).start())
    assert seen["preloaded"] and seen["parent"] == 0  # forked: its parent is outside the sandbox
    assert seen["names"] == [
        "In",
        "Out",
        "exit",
        "get_ipython",
        "json",
        "open",
        "os",
        "quit",
        "sys",
    ]
    assert "forked no kernel" not in log
    left = process_watch.left(timeout=15)
    assert not left, process_watch.describe(left)


@needs_fork
def test_without_a_server_the_launcher_starts_the_kernel_itself(tmp_path, process_watch):
    server = forkserver.ForkServer(parent=tmp_path)
    server.close()  # gone before the kernel asks for it
    seen, log = _probe(_kernel(tmp_path, server.socket).start())
    assert seen["parent"] == 1  # bwrap's init: started the usual way
    assert "the fork server forked no kernel; starting it here" in log


@needs_fork
def test_a_killed_launcher_ends_its_forked_kernel_and_sandbox(tmp_path, process_watch):
    with forkserver.ForkServer(parent=tmp_path, preload=["boto3"]) as server:
        kernel = _kernel(tmp_path, server.socket).start()
        client = kernel.km.blocking_client()
        try:
            client.start_channels()
            client.wait_for_ready(timeout=60)
            forked = psutil.Process(server._process.pid).children(recursive=True)
            assert len(forked) == 2  # the kernel, and its parent that reports its end
            kernel.km.provisioner.process.kill()  # the launcher, as a kernel manager kills it
            _, alive = psutil.wait_procs(forked, timeout=15)
            assert not alive, process_watch.describe(alive)
        finally:
            client.stop_channels()
            kernel.close()
        left = [p for p in process_watch.left(timeout=15) if p.pid != server._process.pid]
        assert not left, process_watch.describe(left)
    left = process_watch.left(timeout=15)
    assert not left, process_watch.describe(left)


def test_a_server_is_only_made_for_root_and_bwrap(tmp_path):
    assert forkserver.start(mode="none", parent=tmp_path, preload=[]) is None
    assert forkserver.start(mode="bwrap", parent=None, preload=[]) is None
    assert forkserver.usable("bwrap") == (os.geteuid() == 0)


def test_the_services_a_labs_setup_makes_clients_of():
    source = (
        "import boto3\n"
        "session = boto3.Session()\n"
        "def client(name, **kw):\n    return session.client(name, **kw)\n"
        "s3 = client('s3', config=None)\nsqs = session.client('sqs')\n"
        "ddb = boto3.client(service_name='dynamodb')\nagain = client('s3')\nname = 'iam'\n"
        "iam = client(name)\n"
    )
    assert answers.client_services(source) == ["s3", "sqs"]
    assert answers.client_services("%%bash\nls") == []
    assert find("storage").services == ("s3", "kms", "iam", "sqs")


def test_botocore_sessions_share_one_loader_once_it_is_shared():
    import botocore.session

    botocache.share_loader()
    botocache.share_loader()  # a second time changes nothing
    first, second = botocore.session.Session(), botocore.session.Session()
    assert first.get_component("data_loader") is second.get_component("data_loader")
    botocache.warm(["s3", "no-such-service"])
    model = first.get_component("data_loader").load_service_model("s3", "service-2")
    assert model is second.get_component("data_loader").load_service_model("s3", "service-2")
