"""The class hub on Kubernetes: deploy/jupyterhub/z2jh/values.yaml passes Zero to JupyterHub's
own schema (chart 4.4.0, vendored), its identity hook gives each student the account and prefix
that the hub on one machine gives them, the pod it asks for is valid Kubernetes, and the pieces
agree: the exchange's layout with the spawner's, the emulator's Service and labels with the
students' network policy, the student image with what must stay out of it. There is no cluster
on these machines; what a cluster adds (scheduling, storage, the chart's templates) is not
tested here, and docs/classroom.md says so."""

from __future__ import annotations

import copy
import re
import types
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from grader import jupyter
from grader.cli import cli
from grader.hub import HubConfig, identity
from grader.hub_spawner import USERNAME, SandboxSpawner
from tests.test_deploy import DEPLOY, hadolint, kubernetes_validate  # noqa: F401

Z2JH = DEPLOY / "jupyterhub" / "z2jh"
CHART = Z2JH / "chart-4.4.0"
SECRET = "9f" * 32
NAMES = ["alice", "bob", "lms-7f3c2a91", "a.b_c-d", "0"]


def _yaml(path: Path):
    return yaml.safe_load(path.read_text())


def _merged(defaults: dict, values: dict) -> dict:
    """Helm's merge of values onto the chart's defaults (maps merge, everything else replaces)."""
    out = copy.deepcopy(defaults)
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@pytest.fixture(scope="module")
def values() -> dict:
    return _yaml(Z2JH / "values.yaml")


@pytest.fixture(scope="module")
def chart_errors():
    validator = jsonschema.Draft7Validator(_yaml(CHART / "values.schema.yaml"))
    defaults = _yaml(CHART / "values.yaml")
    return lambda values: sorted(
        "/".join(map(str, e.absolute_path)) + ": " + e.message
        for e in validator.iter_errors(_merged(defaults, values))
    )


def test_the_class_values_pass_the_charts_schema(values, chart_errors):
    assert chart_errors(values) == []


def test_the_charts_schema_rejects_broken_values(values, chart_errors):
    broken = copy.deepcopy(values)
    broken["singleuser"]["memroy"] = broken["singleuser"].pop("memory")
    broken["singleuser"]["networkPolicy"]["egressAllowRules"]["internet"] = False
    broken["hub"]["extraConfig"] = ["not", "a", "map"]
    errors = chart_errors(broken)
    assert any(e.startswith("singleuser:") and "'memroy'" in e for e in errors), errors
    assert any(e.startswith("singleuser/networkPolicy/egressAllowRules:") for e in errors)
    assert any(e.startswith("hub/extraConfig:") for e in errors), errors


# --- the identity hook ---------------------------------------------------------------------


def _spawner(values: dict, name: str, *, mounts_as_dict: bool = False):
    mounts = values["singleuser"]["storage"]["extraVolumeMounts"]
    if mounts_as_dict:
        mounts = {f"{m['name']}-{i}": m for i, m in enumerate(mounts)}
    return types.SimpleNamespace(
        user=types.SimpleNamespace(name=name),
        environment=dict(values["singleuser"]["extraEnv"]),
        volume_mounts=copy.deepcopy(mounts),
        init_containers=[],
        image="registry.example.edu/course/cloudlabs-student:v0.1.0",
    )


@pytest.fixture
def hook(values, monkeypatch):
    """The hub's pre-spawn hook, from running extraConfig as the chart's jupyterhub_config does."""
    from traitlets.config import Config

    monkeypatch.setenv("CLOUDLABS_CLASS_SECRET", SECRET + "\n")
    c = Config()
    for code in values["hub"]["extraConfig"].values():
        exec(compile(code, "hub.extraConfig", "exec"), {"c": c})
    return c.KubeSpawner.pre_spawn_hook


def test_the_hook_gives_each_student_the_hubs_identity(values, hook):
    seen = set()
    for name in NAMES:
        spawner = _spawner(values, name)
        hook(spawner)
        who = identity(SECRET.encode(), name)
        env = spawner.environment
        assert env["CLOUDLABS_ACCOUNT_ID"] == env["AWS_ACCESS_KEY_ID"] == who.account_id
        assert env["CLOUDLABS_PREFIX"] == who.prefix
        assert env["AWS_ENDPOINT_URL"] == values["singleuser"]["extraEnv"]["AWS_ENDPOINT_URL"]
        seen.add(who.account_id)
    assert len(seen) == len(NAMES) and "000000000000" not in seen


def test_the_hook_mounts_the_students_own_inbound_folder_alone(values, hook):
    for as_dict in (False, True):
        spawner = _spawner(values, "alice", mounts_as_dict=as_dict)
        hook(spawner)
        mounts = spawner.volume_mounts
        mounts = list(mounts.values()) if as_dict else mounts
        exchange = [m for m in mounts if m["name"] == "exchange"]
        assert {m["subPath"] for m in exchange} == {"exchange/cloudlabs/outbound", "inbound/alice"}
        assert all(m.get("readOnly") for m in exchange if "outbound" in m["subPath"])
    (init,) = spawner.init_containers
    assert init["command"][-1] == "/exchange/inbound/alice"
    assert init["securityContext"]["runAsUser"] == values["singleuser"]["uid"]


def test_the_hook_allows_the_names_the_hub_on_one_machine_allows(values):
    code = values["hub"]["extraConfig"]["cloudlabs-identity"]
    (pattern,) = re.findall(r'CLOUDLABS_USERNAME = re.compile\(r"(.+)"\)', code)
    assert pattern == USERNAME.pattern


@pytest.mark.parametrize("name", ["../bob", "Alice", "a/b", "", "x" * 65, "bob\n"])
def test_the_hook_refuses_a_name_that_cannot_name_a_folder(values, hook, name):
    with pytest.raises(ValueError, match="cannot name a folder"):
        hook(_spawner(values, name))


# --- the pieces agree ----------------------------------------------------------------------


def test_the_exchange_is_laid_out_as_on_one_machine(values, hook, tmp_path):
    course = HubConfig().course_id
    spawner = _spawner(values, "alice")
    hook(spawner)
    at = {m["mountPath"]: m.get("subPath", "") for m in spawner.volume_mounts}
    root = jupyter.EXCHANGE_ROOT
    assert root in at  # nbgrader's root: writable, the pod's own
    one_machine = types.SimpleNamespace(data=tmp_path, hub_config=HubConfig(),
                                        user=types.SimpleNamespace(name="alice"))  # fmt: skip
    outbound = SandboxSpawner.outbound(one_machine).relative_to(tmp_path)
    inbound = SandboxSpawner.inbound(one_machine).relative_to(tmp_path)
    assert at[f"{root}/{course}/outbound"] == str(outbound)
    assert at[f"{root}/{course}/inbound"] == str(inbound)
    # and the instructor's pod makes these folders, at CLOUDLABS_HUB_DATA
    pod = _class_docs()[("Pod", "cloudlabs-instructor")]
    made = pod["spec"]["initContainers"][0]["args"][0].split()
    assert {f"/data/{outbound}", f"/data/{inbound.parent}"} <= set(made)
    (instructor,) = pod["spec"]["containers"]
    assert {"name": "CLOUDLABS_HUB_DATA", "value": "/data"} in instructor["env"]


def _class_docs() -> dict[tuple[str, str], dict]:
    docs = yaml.safe_load_all((DEPLOY / "kubernetes" / "40-class.yaml").read_text())
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def _env(deployment: dict) -> dict[str, str]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


def test_students_reach_the_emulator_and_the_self_check_and_only_them(values):
    docs = _class_docs()
    network = values["singleuser"]["networkPolicy"]
    assert not any(network["egressAllowRules"][k] for k in ("nonPrivateIPs", "privateIPs",
                                                           "cloudMetadataServer"))  # fmt: skip
    allowed = {}
    for rule in network["egress"]:
        (to,) = rule["to"]
        (port,) = rule["ports"]
        allowed[to["podSelector"]["matchLabels"]["app.kubernetes.io/name"]] = port["port"]
    assert allowed == {"cloudlabs-emulator": 4566, "cloudlabs-check": 4598}
    urls = {"cloudlabs-emulator": "AWS_ENDPOINT_URL", "cloudlabs-check": "CLOUDLABS_CHECK_URL"}
    for name, variable in urls.items():
        service, deployment = docs[("Service", name)], docs[("Deployment", name)]
        port = service["spec"]["ports"][0]["port"]
        assert port == allowed[name]
        assert values["singleuser"]["extraEnv"][variable].startswith(f"http://{name}:{port}")
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()
        # each admits the chart's student pods
        policy = docs[("NetworkPolicy", name)]["spec"]
        admitted = [p["podSelector"]["matchLabels"] for p in policy["ingress"][0]["from"]]
        assert {"component": "singleuser-server"} in admitted
    assert values["singleuser"]["extraEnv"]["CLOUDLABS_CHECK_URL"].endswith("/check")
    # the emulator reaches nothing; the self-check reaches the emulator, the hub and DNS
    emulator = docs[("NetworkPolicy", "cloudlabs-emulator")]["spec"]
    assert emulator["policyTypes"] == ["Ingress", "Egress"] and emulator["egress"] == []
    env = _env(docs[("Deployment", "cloudlabs-emulator")])
    assert (
        env["CLOUDLABS_EMULATOR_HOST"] == "0.0.0.0" and env["CLOUDLABS_HUB_EMULATOR_PORT"] == "4566"
    )
    check = _env(docs[("Deployment", "cloudlabs-check")])
    assert (
        check["CLOUDLABS_HUB_CHECK_IP"] == "0.0.0.0" and check["CLOUDLABS_HUB_CHECK_PORT"] == "4598"
    )
    assert (
        check["CLOUDLABS_HUB_EMULATOR_URL"] == values["singleuser"]["extraEnv"]["AWS_ENDPOINT_URL"]
    )
    assert set(check) - {"JUPYTERHUB_API_URL", "TMPDIR"} <= {
        f"CLOUDLABS_HUB_{f.upper()}" for f in HubConfig.__dataclass_fields__}  # fmt: skip


def test_a_students_pod_is_valid_kubernetes(values, hook, kubernetes_validate, tmp_path):  # noqa: F811
    """The pod KubeSpawner builds from these values, near enough to validate what we set."""
    single = values["singleuser"]
    spawner = _spawner(values, "alice")
    hook(spawner)
    volumes = [{"name": "home", "emptyDir": {}}, *single["storage"]["extraVolumes"]]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "jupyter-alice",
            "namespace": "cloudlabs-class",
            "labels": {"component": "singleuser-server"},
        },
        "spec": {
            "securityContext": {"runAsUser": single["uid"], "fsGroup": single["fsGid"]},
            "initContainers": spawner.init_containers,
            "containers": [
                {
                    "name": "notebook",
                    "image": spawner.image,
                    "command": [single["cmd"]],
                    "env": [{"name": k, "value": v} for k, v in spawner.environment.items()],
                    "resources": {
                        "requests": {
                            "memory": single["memory"]["guarantee"],
                            "cpu": str(single["cpu"]["guarantee"]),
                        },
                        "limits": {
                            "memory": single["memory"]["limit"],
                            "cpu": str(single["cpu"]["limit"]),
                        },
                    },
                    "lifecycle": single["lifecycleHooks"],
                    "volumeMounts": [
                        {"name": "home", "mountPath": "/home/jovyan"},
                        *spawner.volume_mounts,
                    ],
                }
            ],
            "volumes": volumes,
        },
    }
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "singleuser", "namespace": "cloudlabs-class"},
        "spec": {"podSelector": {"matchLabels": {"component": "singleuser-server"}},
                 "policyTypes": ["Egress"], "egress": single["networkPolicy"]["egress"]},
    }  # fmt: skip
    path = tmp_path / "pod.yaml"
    path.write_text(yaml.safe_dump_all([pod, policy]))
    result = kubernetes_validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    pod["spec"]["containers"][0]["volumeMounts"][0]["readonly"] = True  # a typo strict mode sees
    path.write_text(yaml.safe_dump(pod))
    assert kubernetes_validate(path).returncode != 0


# --- the student image ---------------------------------------------------------------------


def test_the_student_image_passes_hadolint(hadolint):  # noqa: F811
    result = hadolint(DEPLOY / "Dockerfile.student")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_student_image_holds_nothing_that_grades(values):
    ignored = set((DEPLOY / "Dockerfile.student.dockerignore").read_text().split())
    assert {"solutions", "tests", "benchmarks", "samples", ".git", ".venv-emulator"} <= ignored
    text = (DEPLOY / "Dockerfile.student").read_text()
    assert re.search(r"useradd --uid 1000 --gid 100 .* jovyan$", text, re.M)
    assert re.search(r"^USER 1000:100$", text, re.M)
    assert values["singleuser"]["uid"] == 1000 and values["singleuser"]["fsGid"] == 100
    assert "cloudlabs hub student-settings /etc/cloudlabs/jupyter" in text
    assert re.search(r"JUPYTER_CONFIG_PATH=/etc/cloudlabs/jupyter$", text, re.M)
    assert (
        "/opt/cloudlabs/course"
        in values["singleuser"]["lifecycleHooks"]["postStart"]["exec"]["command"][-1]
    )


def test_student_settings_keep_the_assignment_list_on_the_exchange(tmp_path):
    result = CliRunner().invoke(cli, ["hub", "student-settings", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    nbgrader = (tmp_path / "s" / "nbgrader_config.py").read_text()
    assert f"c.Exchange.root = {jupyter.EXCHANGE_ROOT!r}" in nbgrader
    assert f"c.CourseDirectory.course_id = {HubConfig().course_id!r}" in nbgrader
    server = yaml.safe_load((tmp_path / "s" / "jupyter_server_config.json").read_text())
    extensions = server["ServerApp"]["jpserver_extensions"]
    assert extensions["nbgrader.server_extensions.assignment_list"] is True
    assert extensions["nbgrader.server_extensions.formgrader"] is False
