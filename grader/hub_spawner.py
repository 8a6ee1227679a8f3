"""The class hub's spawner: each user's Jupyter server in bubblewrap (:mod:`grader.sandbox`).

What a student's server sees: the system, the course's Python, their own home (the only writable
place: the lectures are copied there on the first start), the student-mode Jupyter settings, and
nbgrader's exchange as a student needs it (the released labs read-only; an inbound folder of
their own, which the hub side collects from, :mod:`grader.exchange`). Not: other homes, the hub's
database and secrets, the emulator's state, the lab sources. When the hub runs as root each home
has a user id of its own, which also makes the process limit count that student alone."""

from __future__ import annotations

import functools
import os
import re
import shutil
import sys
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner

from grader import ROOT, jupyter
from grader import sandbox as sandboxes
from grader.config import load
from grader.errors import ConfigError
from grader.hub import HubConfig, class_secret, identity

#: Where the exchange is inside a server's sandbox (nbgrader's Exchange.root there).
EXCHANGE = Path(jupyter.EXCHANGE_ROOT)
#: User names that name a folder safely (JupyterHub lower-cases names; LTI ids are checked).
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
#: Environment variables a server keeps inside its sandbox (JupyterHub's, and the course's).
KEPT_PREFIXES = ("JUPYTERHUB_", "JPY_", "CLOUDLABS_", "AWS_")


class SandboxSpawner(LocalProcessSpawner):
    """A user's server as a local process behind bubblewrap, with the user's AWS identity."""

    @functools.cached_property
    def hub_config(self) -> HubConfig:
        return load(HubConfig, "hub")

    @property
    def data(self) -> Path:
        return self.hub_config.data.resolve()

    @property
    def home(self) -> Path:
        name = self.user.name
        if not USERNAME.fullmatch(name):
            raise ConfigError(f"user name {name!r} cannot name a home folder",
                              fix="use user names of letters, digits, '.', '-', '_'")  # fmt: skip
        return self.data / "homes" / name

    def inbound(self) -> Path:
        return self.data / "inbound" / self.user.name

    def outbound(self) -> Path:
        return self.data / "exchange" / self.hub_config.course_id / "outbound"

    def student_settings(self) -> Path:
        """Student mode, with nbgrader's assignment list (fetch, submit) kept on."""
        return jupyter.student_config(self.data / "jupyter-student",
                                      exchange_course=self.hub_config.course_id)  # fmt: skip

    def make_preexec_fn(self, name: str) -> None:
        return None  # no system user to become: the sandbox gives the server its own user id

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        env["USER"] = self.user.name
        env["HOME"] = str(self.home)
        return env

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        who = identity(class_secret(self.data), self.user.name)
        env.update(
            CLOUDLABS_ACCOUNT_ID=who.account_id,
            CLOUDLABS_PREFIX=who.prefix,
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{self.hub_config.emulator_port}",
            AWS_ACCESS_KEY_ID=who.account_id,  # boto3's defaults land in the student's account
            AWS_SECRET_ACCESS_KEY="test",
            AWS_DEFAULT_REGION="us-east-1",
            CLOUDLABS_CHECK_URL=f"http://127.0.0.1:{self.hub_config.check_port}/check",
            JUPYTER_CONFIG_PATH=str(self.student_settings()),
        )
        return env

    def _prepare_home(self) -> None:
        home = self.home
        home.mkdir(parents=True, exist_ok=True)
        self.outbound().mkdir(parents=True, exist_ok=True)
        self.inbound().mkdir(parents=True, exist_ok=True)
        uid = sandboxes.kernel_uid(home) if os.geteuid() == 0 else None
        if not (home / "course").exists():
            shutil.copytree(ROOT / "course", home / "course",
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints"))  # fmt: skip
            if uid is not None:
                for path in [home / "course", *(home / "course").rglob("*")]:
                    os.chown(path, uid, uid, follow_symlinks=False)
        if uid is not None:  # the student's user writes their submissions there, and only there
            os.chown(self.inbound(), uid, uid)

    async def start(self) -> tuple[str, int]:
        if sandboxes.resolve_mode("auto") != "bwrap":
            raise ConfigError("bubblewrap is not installed: students' servers never run "
                              "unsandboxed", fix="run `make setup` (it installs bubblewrap)")  # fmt: skip
        self._prepare_home()
        self.notebook_dir = str(self.home)
        env = self.get_env()
        kept = sorted(n for n in env if n.startswith(KEPT_PREFIXES) or n == "JUPYTER_CONFIG_PATH")
        settings = Path(env["JUPYTER_CONFIG_PATH"])
        course = self.hub_config.course_id
        self.cmd = [
            sys.executable, "-m", "grader.sandbox", "--mode", "bwrap",
            "--memory-mb", str(self.hub_config.memory_mb), "--workdir", str(self.home),
            "--bind", f"{settings}:{settings}", "--user-name", self.user.name,
            # the course's own code and released material (no lab sources): lectures import
            # grader.quiz, labs grader.check, the practice exams read course/bank
            "--bind", f"{ROOT / 'grader'}:{ROOT / 'grader'}",
            "--bind", f"{ROOT / 'course'}:{ROOT / 'course'}",
            "--scratch", str(EXCHANGE),  # nbgrader wants its root writable: a private tmpfs
            "--bind", f"{self.outbound()}:{EXCHANGE / course / 'outbound'}",
            "--bind-rw", f"{self.inbound()}:{EXCHANGE / course / 'inbound'}",
            *[arg for name in kept for arg in ("--keep-env", name)],
            "--", str(Path(sys.executable).parent / "jupyterhub-singleuser"),
        ]  # fmt: skip
        return await super().start()
