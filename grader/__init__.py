"""cloudlabs: an AWS course in Jupyter, graded automatically against a local emulator."""

from pathlib import Path

__version__ = "0.1.0"

#: The repository checkout this package runs from (the package is installed in editable mode).
ROOT = Path(__file__).resolve().parent.parent
