"""``cloudlabs lab``: the emulator plus JupyterLab in the checkout, opened on labs/."""

from __future__ import annotations

import os
import sys

from grader import ROOT
from grader.emulator import commands as emulator_commands


def main(*, port: int | None = None) -> None:
    status = emulator_commands.up()
    print(f"emulator running at {status.endpoint_url}; stop it with `cloudlabs down`")
    argv = [sys.executable, "-m", "jupyter", "lab", f"--notebook-dir={ROOT}", "labs/"]
    if port:
        argv.append(f"--port={port}")
    if os.geteuid() == 0:  # containers and JupyterHub pods often run as root
        argv.append("--allow-root")
    os.chdir(ROOT)  # nbgrader_config.py here makes formgrader use solutions/ and labs/
    os.execv(sys.executable, argv)
