"""The class hub on loopback: real JupyterHub, configurable-http-proxy and bubblewrap. Two students
get servers in their own sandboxes and accounts; neither can read the other's files, the hub's
secrets or the other's AWS resources, and everything the hub started ends with it."""

from __future__ import annotations

import secrets
import types

import pytest

from grader import ROOT, classroom
from grader.errors import ConfigError
from grader.hub import Identity, class_secret, identity


def test_identities_are_stable_distinct_and_never_the_default(tmp_path):
    secret = class_secret(tmp_path)
    assert class_secret(tmp_path) == secret  # made once, then read
    assert oct((tmp_path / "class-secret").stat().st_mode & 0o777) == "0o600"
    alice, bob = identity(secret, "alice"), identity(secret, "bob")
    assert identity(secret, "alice") == alice and alice != bob
    assert identity(b"another class", "alice") != alice
    ids = {identity(secret, f"student-{n}").account_id for n in range(2000)}
    assert len(ids) == 2000 and "000000000000" not in ids
    assert all(len(i) == 12 and i.isdigit() and i[0] != "0" for i in ids)
    assert alice.prefix.startswith("u") and len(alice.prefix) == 11


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    if classroom.missing_parts():
        pytest.skip(f"{classroom.missing_parts()} (`make classroom` installs it)")
    env = {"CLOUDLABS_HUB_AUTHENTICATOR": "dummy", "CLOUDLABS_HUB_PASSWORD": secrets.token_hex(8)}
    with classroom.running_hub(tmp_path_factory.mktemp("hub"), env=env) as running:
        for name in ("alice", "bob"):
            running.api("POST", f"/hub/api/users/{name}")
            running.start_server(name)
        yield running  # running_hub fails if anything it started outlives the hub


def run_code(hub: classroom.Hub, user: str, code: str) -> str:
    return hub.run_code(user, code)


def test_each_student_works_in_their_own_account(hub):
    secret = class_secret(hub.data)
    for user in ("alice", "bob"):
        out = run_code(hub, user, "import os; print(os.environ['CLOUDLABS_ACCOUNT_ID'], "
                                  "os.environ['CLOUDLABS_PREFIX'], os.getcwd())")  # fmt: skip
        account, prefix, cwd = out.split()
        assert Identity(account, prefix) == identity(secret, user)
        assert cwd == str(hub.data / "homes" / user)


def test_no_student_reads_another_s_files_or_the_hub_s_secrets(hub):
    (hub.data / "homes" / "bob" / "answers.txt").write_text("bob's work")
    targets = [hub.data / "homes" / "bob" / "answers.txt", hub.data / "class-secret",
               hub.data / "jupyterhub.sqlite", hub.data / "jupyterhub_cookie_secret",
               ROOT / "solutions"]  # fmt: skip
    code = (
        "import os\n"
        f"for path in {[str(t) for t in targets]!r}:\n"
        "    try:\n"
        "        with open(path, 'rb') as f: print('READ', path)\n"
        "    except IsADirectoryError:\n"
        "        print('LISTED' if os.listdir(path) else 'EMPTY', path)\n"
        "    except OSError as exc:\n"
        "        print('DENIED', path, type(exc).__name__)\n"
    )
    out = run_code(hub, "alice", code)
    assert "READ" not in out and "LISTED" not in out, out
    assert out.count("DENIED") + out.count("EMPTY") == len(targets), out
    assert run_code(hub, "alice", "open('mine.txt', 'w').write('x'); print('ok')") == "ok\n"
    assert (hub.data / "homes" / "alice" / "mine.txt").read_text() == "x"


def test_no_student_sees_another_s_aws_resources(hub):
    make = "import boto3; boto3.client('s3').create_bucket(Bucket=os.environ['CLOUDLABS_PREFIX'] + '-private')\n"
    listing = "import boto3; print(sorted(b['Name'] for b in boto3.client('s3').list_buckets()['Buckets']))"
    run_code(hub, "alice", "import os\n" + make)
    alice = identity(class_secret(hub.data), "alice")
    assert run_code(hub, "alice", listing).strip() == repr([f"{alice.prefix}-private"])
    assert run_code(hub, "bob", listing).strip() == "[]"


def test_a_student_s_own_hub_token_opens_no_other_server(hub):
    code = (
        "import os, urllib.request, urllib.error\n"
        f"for user in ('alice', 'bob'):\n"
        f"    request = urllib.request.Request({hub.url!r} + f'/user/{{user}}/api/contents',\n"
        "        headers={'Authorization': 'token ' + os.environ['JUPYTERHUB_API_TOKEN']})\n"
        "    try:\n"
        "        urllib.request.urlopen(request, timeout=20).close(); print(user, 200)\n"
        "    except urllib.error.HTTPError as err:\n"
        "        print(user, err.code)\n"
    )
    out = dict(line.split() for line in run_code(hub, "bob", code).splitlines())
    assert out == {"alice": "403", "bob": "200"}, out


def test_no_student_learns_another_s_account_id(hub):
    """Account ids are in each server's environment: no other student can read a process's."""
    bob = identity(class_secret(hub.data), "bob")
    code = (
        "import os, pathlib\n"
        "seen = set()\n"
        "for proc in pathlib.Path('/proc').iterdir():\n"
        "    try:\n"
        "        seen.add((proc / 'environ').read_bytes())\n"
        "    except OSError:\n"
        "        pass\n"
        f"print(len(seen), any({bob.account_id.encode()!r} in env for env in seen))\n"
    )
    count, found = run_code(hub, "alice", code).split()
    assert int(count) >= 1 and found == "False"  # alice reads her own processes, none of bob's
    assert bob.account_id not in run_code(hub, "alice", "import os; print(dict(os.environ))")


def test_students_import_the_course_s_code_and_read_its_released_material(hub):
    from grader import bank

    out = run_code(hub, "alice", "import os\nfrom grader import bank, quiz\n"
                   f"print(len(bank.load()), quiz.digest('q', 'A'), os.path.exists({str(ROOT / 'solutions')!r}))")  # fmt: skip
    count, digest, sources_seen = out.split()
    assert int(count) == len(bank.load()) > 0
    assert digest == __import__("grader.quiz").quiz.digest("q", "A")
    assert sources_seen == "False"  # the lab sources (hidden tests, state checks) stay out


def test_a_student_s_self_check_is_graded_by_the_hub_s_service(hub):
    import nbformat

    from grader import labs, samples

    lab = labs.find("storage")
    solved = samples.solution_submission(lab, nbformat.read(str(lab.release), as_version=4))
    nbformat.write(solved, str(hub.data / "homes" / "alice" / "storage.ipynb"))
    out = run_code(hub, "alice", "from grader.check import show\nprint(repr(show('storage')))")
    assert "storage: your self-check (visible tests and state checks)" in out, out
    assert f"Total: {lab.max_score:g} / {lab.max_score:g}" in out, out  # the solution: all marks
    refused = run_code(hub, "bob", "import os, requests\nanswer = requests.post("
                       "os.environ['CLOUDLABS_CHECK_URL'] + '/storage', data=b'{}')\n"
                       "print(answer.status_code)")  # fmt: skip
    assert refused.strip() == "403"  # no hub token, no check
    statuses = run_code(hub, "bob", "import os, requests\n"
                        "url, auth = os.environ['CLOUDLABS_CHECK_URL'], "
                        "{'Authorization': 'token ' + os.environ['JUPYTERHUB_API_TOKEN']}\n"
                        "print(requests.post(url + '/Astrology', data=b'{}', headers=auth).status_code,"
                        " requests.post(url + '/storage', data=b'x' * (16 * 2**20 + 1), headers=auth).status_code,"
                        " requests.post(url + '/storage', data=b'not json', headers=auth).json()['text'])")  # fmt: skip
    assert statuses.split()[:2] == ["404", "413"], statuses
    assert "is not valid JSON, so not a notebook" in statuses, statuses  # a reason, not a crash
    missing = run_code(hub, "bob", "from grader.check import show\nshow('storage')")
    assert "no saved notebook storage.ipynb to check" in missing


def test_the_lms_launch_is_wired_to_the_tool_s_registration(tmp_path, monkeypatch):
    from traitlets.config import Config

    from grader.errors import ConfigError
    from grader.hub import HubConfig, configure

    hub = HubConfig(data=tmp_path, authenticator="lti13")
    with pytest.raises(ConfigError) as caught:
        configure(Config(), hub)
    assert "CLOUDLABS_LTI_AUTHORIZE_URL" in str(caught.value) and "dummy" in caught.value.fix
    for name, value in {"ISSUER": "https://lms.example.edu", "CLIENT_ID": "tool",
                        "AUTHORIZE_URL": "https://lms.example.edu/authorize",
                        "JWKS_URL": "https://lms.example.edu/jwks"}.items():  # fmt: skip
        monkeypatch.setenv(f"CLOUDLABS_LTI_{name}", value)
    c = Config()
    configure(c, hub)
    lti = c.LTI13Authenticator
    assert c.JupyterHub.authenticator_class.endswith("LTI13Authenticator")
    assert (lti.issuer, lti.client_id, lti.jwks_endpoint, lti.username_key) == (
        "https://lms.example.edu",
        {"tool"},
        "https://lms.example.edu/jwks",
        "sub",
    )


@pytest.mark.parametrize("name", ["../bob", "Alice", "a/b", "", "x" * 65, "bob\n"])
def test_a_name_that_cannot_name_a_folder_gets_no_home(name, tmp_path):
    from grader.hub_spawner import SandboxSpawner

    spawner = types.SimpleNamespace(user=types.SimpleNamespace(name=name), data=tmp_path)
    with pytest.raises(ConfigError, match="cannot name a home folder"):
        SandboxSpawner.home.fget(spawner)
