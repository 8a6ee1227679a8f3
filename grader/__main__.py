"""``python -m grader`` is the ``cloudlabs`` command (handy in a notebook: the kernel's PATH may
not include the virtualenv: ``import sys; !{sys.executable} -m grader check storage``)."""

from grader.cli import cli

cli(prog_name="cloudlabs")
