"""Starting, stopping and recovering the embedded emulator, and the external backend."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from grader import emulator as emu
from grader.errors import EmulatorError, SetupError
from tests.conftest import emulator_config


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """A second embedded emulator that these tests may kill."""
    instance = emu.create(emulator_config(tmp_path_factory.mktemp("lifecycle")))
    instance.start()
    yield instance
    instance.stop()


def test_start_is_idempotent_and_status_shows_services(own):
    pid = own.status().pid
    own.start()
    state = own.status()
    assert state.running and state.pid == pid
    assert state.version == "2026.3.0"
    assert {"s3", "lambda", "dynamodb", "elbv2", "ecs"} <= set(state.services)


def test_restart_after_the_emulator_is_killed(own):
    pid = own.status().pid
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while own.status().running and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not own.status().running
    own.start()
    assert own.status().running and own.status().pid != pid
    from grader.statecheck import session_for

    aws = session_for(endpoint_url=own.endpoint_url, account_id="123456789012")
    assert aws.client("sqs").create_queue(QueueName="after-restart")["QueueUrl"]


def test_busy_port_is_refused_with_a_clear_message(tmp_path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        config = emulator_config(tmp_path, port=port)
        with pytest.raises(EmulatorError, match=f"port {port}.*in use") as info:
            emu.create(config).start()
        assert "--port" in info.value.fix


def test_stop_leaves_other_processes_alone(tmp_path):
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        config = emulator_config(tmp_path)
        config.home.mkdir(parents=True, exist_ok=True)
        (config.home / "emulator.json").write_text(
            f'{{"pid": {stranger.pid}, "host": "127.0.0.1", "port": {config.port}}}'
        )
        emu.create(config).stop()
        assert stranger.poll() is None
    finally:
        stranger.kill()


def test_missing_virtualenv_says_run_make_setup(tmp_path):
    config = emulator_config(tmp_path, python=tmp_path / "nope" / "python")
    with pytest.raises(SetupError, match="virtualenv") as info:
        emu.create(config).start()
    assert "make setup" in info.value.fix


def test_external_backend_uses_a_running_endpoint(emulator, tmp_path):
    config = emulator_config(tmp_path, backend="external", endpoint_url=emulator.endpoint_url)
    external = emu.create(config)
    external.start()
    assert external.status().running
    external.stop()  # a no-op: it does not own the process
    assert emulator.status().running


def test_external_backend_without_endpoint_explains(tmp_path):
    with pytest.raises(Exception, match="endpoint URL"):
        emu.create(emulator_config(tmp_path, backend="external"))


def test_remote_shutdown_switch_is_refused(emulator):
    """LocalStack's POST /_localstack/health {"action": "kill"} would stop it for everyone."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{emulator.endpoint_url}/_localstack/health",
        data=json.dumps({"action": "kill"}).encode(),
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 403
    time.sleep(0.5)
    assert emulator.status().running
