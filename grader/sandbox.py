"""Where student code runs: a Jupyter kernel behind limits, and behind bubblewrap when available.

Modes (``CLOUDLABS_GRADE_SANDBOX``):

- ``bwrap``: the kernel sees the filesystem read-only, with the lab sources (solutions/), the
  grading workspace (gradebook, other students' results and notebooks), the submissions, the
  emulator's state (other students' Lambda code) and the other kernels' working directories (their
  connection files) hidden behind empty directories; only its own working directory is writable
  (and is its TMPDIR and HOME). It has its own PID namespace (it cannot see or signal the grader,
  the emulator or other kernels), no capabilities, and dies with the grader. It shares the
  network, which it needs to reach the emulator on loopback.
- ``none``: the kernel runs as the grader's user and can read what the grader can. Only the limits
  below apply. Use it only for trusted notebooks (your own, or a self-check).
- ``auto`` (default): ``bwrap`` when the ``bwrap`` command exists, else ``none`` (and the report
  says so).

Both modes apply resource limits: address space (``memory_mb``), no core files, a 256 MiB cap on
any file written. Cross-account isolation does not depend on the sandbox: each submission gets an
unguessable account id and prefix, and the emulator has no endpoint that lists accounts.

This module is also the kernel's launcher: ``python -m grader.sandbox [options] -- <kernel argv>``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
from pathlib import Path

from grader.errors import ConfigError

KERNEL_NAME = "cloudlabs-sandbox"
#: Environment variables a kernel keeps; everything else (the grader's settings, credentials) goes.
KEPT_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "PYTHONWARNINGS")


def resolve_mode(mode: str) -> str:
    if mode == "auto":
        return "bwrap" if shutil.which("bwrap") else "none"
    if mode == "bwrap" and not shutil.which("bwrap"):
        raise ConfigError(
            "the bwrap sandbox was requested but bubblewrap is not installed",
            fix="install it (Debian: `apt-get install bubblewrap`; `make setup` does this as root) "
            "or set CLOUDLABS_GRADE_SANDBOX=none for trusted notebooks",
        )
    if mode not in {"bwrap", "none"}:
        raise ConfigError(f"unknown sandbox mode {mode!r}", fix="use 'auto', 'bwrap' or 'none'")
    return mode


def work_root() -> Path:
    """A new directory for one grading run's kernel working directories. All runs share one
    parent, which every sandboxed kernel sees empty but for its own directory."""
    parent = Path(tempfile.gettempdir()) / "cloudlabs-work"
    parent.mkdir(mode=0o700, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=parent))


def write_kernelspec(
    directory: Path, *, mode: str, memory_mb: int, hide: list[Path], workdir: Path
) -> Path:
    """A kernelspec ``cloudlabs-sandbox`` in ``directory`` whose kernel runs behind this launcher."""
    spec_dir = directory / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "grader.sandbox", "--mode", mode, "--memory-mb", str(memory_mb)]
    argv += ["--workdir", str(workdir)]
    for path in hide:
        argv += ["--hide", str(path)]
    argv += ["--", sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "cloudlabs sandbox", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return directory


def _limit(memory_mb: int) -> None:
    memory = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 2**20, 256 * 2**20))


def bwrap_argv(kernel: list[str], *, hide: list[Path], workdir: Path) -> list[str]:
    argv = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    interpreters = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    for path in hide:
        if any(i.is_relative_to(path.resolve()) for i in interpreters):
            continue  # hiding it would hide the kernel's own Python
        if path.is_dir():
            argv += ["--tmpfs", str(path)]
        elif path.exists():
            argv += ["--ro-bind", "/dev/null", str(path)]
    argv += ["--bind", str(workdir), str(workdir), "--chdir", str(workdir)]
    argv += ["--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session", "--"]
    return argv + kernel


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m grader.sandbox")
    parser.add_argument("--mode", choices=["bwrap", "none"], required=True)
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--hide", type=Path, action="append", default=[])
    parser.add_argument("kernel", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    kernel = args.kernel[1:] if args.kernel[:1] == ["--"] else args.kernel
    # Not JPY_PARENT_PID: in its own PID namespace the kernel cannot see the grader and would
    # think it had exited; bwrap --die-with-parent ends the kernel with the grader instead.
    env = {k: v for k, v in os.environ.items() if k in KEPT_ENV}
    scratch = args.workdir / "tmp"
    scratch.mkdir(exist_ok=True)
    env.update({"HOME": str(args.workdir), "TMPDIR": str(scratch),
                "MPLCONFIGDIR": str(args.workdir / ".mpl")})  # fmt: skip
    env.setdefault("PYTHONWARNINGS", "ignore")
    _limit(args.memory_mb)
    command = (
        bwrap_argv(kernel, hide=args.hide, workdir=args.workdir) if args.mode == "bwrap" else kernel
    )
    os.chdir(args.workdir)
    # The kernel's own chatter goes to a log in its working directory, not the grader's terminal.
    log = os.open(args.workdir / "kernel.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main()
