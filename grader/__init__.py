"""cloudlabs: an AWS course in Jupyter, graded automatically against a local emulator."""

import sys
from pathlib import Path

__version__ = "0.1.0"

#: The repository checkout this package runs from (the package is installed in editable mode).
ROOT = Path(__file__).resolve().parent.parent

# jsonschema (under nbformat) imports rfc3987_syntax when it is installed (jupyter_server's
# dependencies install it), only to check the "iri" string format, and that import compiles a
# grammar: 1.2 s of every grader process's start. Nothing cloudlabs validates uses that format;
# jsonschema treats a module that cannot be imported as absent.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
