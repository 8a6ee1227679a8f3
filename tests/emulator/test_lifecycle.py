"""Starting, stopping and recovering the embedded emulator, and the external backend."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from grader import emulator as emu
from grader.emulator import commands
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


def test_admin_token_is_private_and_found_by_the_commands(own, monkeypatch):
    token_file = own.config.home / "admin-token"
    assert (own.config.home / "emulator.json").exists()  # next to the pid file
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert own.admin_token == token_file.read_text().strip() and len(own.admin_token) >= 32
    instance = own.instance_id()
    assert instance and own.status().instance == instance
    # `cloudlabs status` in another process reads the same home, so finds the same token
    monkeypatch.setenv("CLOUDLABS_EMULATOR_HOME", str(own.config.home))
    assert commands.status(port=own.config.port).instance == instance


def _non_loopback_ipv4() -> str | None:
    """An IPv4 address of this machine's other interfaces, if it has one."""
    addresses = []
    if shutil.which("ip"):
        out = subprocess.run(
            ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=False
        ).stdout
        addresses = [line.split()[3].split("/")[0] for line in out.splitlines() if " inet " in line]
    if not addresses:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect(("192.0.2.1", 9))  # no packet is sent; only picks the route
                addresses = [probe.getsockname()[0]]
            except OSError:
                pass
    return next((a for a in addresses if not ipaddress.ip_address(a).is_loopback), None)


def test_listens_on_the_configured_host_only(own):
    """LocalStack's server would listen on 0.0.0.0 whatever GATEWAY_LISTEN says."""
    address = _non_loopback_ipv4()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    assert own.config.host == "127.0.0.1"
    with socket.create_connection(("127.0.0.1", own.config.port), timeout=5):
        pass
    with pytest.raises(OSError):  # refused (nothing listens there)
        socket.create_connection((address, own.config.port), timeout=5).close()


def test_shutdown_switch_is_refused_even_with_the_token(own):
    for action in ("kill", "restart"):
        request = urllib.request.Request(
            f"{own.endpoint_url}/_localstack/health",
            data=json.dumps({"action": action}).encode(),
            headers={emu.ADMIN_HEADER: own.admin_token},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=5)
        assert info.value.code == 403
    time.sleep(0.5)
    assert own.status().running


def test_restart_after_the_emulator_is_killed(own):
    pid = own.status().pid
    instance, token = own.instance_id(), own.admin_token
    assert instance is not None
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while own.status().running and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not own.status().running
    assert own.instance_id() is None
    own.start()
    assert own.status().running and own.status().pid != pid
    # the grader tells the restarted emulator from the one it started
    assert own.instance_id() not in (None, instance)
    assert own.admin_token != token
    from grader.statecheck import session_for

    aws = session_for(endpoint_url=own.endpoint_url, account_id="123456789012")
    assert aws.client("sqs").create_queue(QueueName="after-restart")["QueueUrl"]


def test_stop_removes_the_admin_token(own):
    own.stop()
    assert own.admin_token is None and own.instance_id() is None
    assert not (own.config.home / "admin-token").exists()
    own.start()  # for the tests that follow in any order
    assert own.admin_token and own.instance_id()


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
    assert external.admin_token is None and external.instance_id() is None  # no guard there
    assert external.status().instance is None
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
