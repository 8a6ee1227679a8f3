"""Answers: what crosses from a student's kernel to the trusted tests, as plain data only.

A test cell reads three kinds of names: what the lab's parameters and setup cells define (the
trusted test process runs those cells itself), Python's builtins, and the exercise's **answers**:
names the lab declares in its solution cells' metadata (``cloudlabs.answers``) and the student's
code assigns. After the student's cells ran, the grader asks the kernel for the answers a test
reads; the kernel sends them as JSON. Only exact plain types cross (None, bool, int, float, str,
list, tuple, dict with str keys, bytes, datetime and date); an object of any other type, a
subclass with methods of its own included, arrives as "not plain data". A function the student wrote (``send_order``)
crosses as a stub: when the trusted test calls it, the call is sent back to the student's kernel
with plain-data arguments, and only its plain-data return value comes back.

Nothing the kernel sends is ever executed or unpickled: a lying kernel can only give wrong
answers, which the tests then check against the state in AWS.
"""

from __future__ import annotations

import ast
import base64
import builtins
import datetime
import json
from typing import Any

from nbformat import NotebookNode

from grader import notebook as nbu

TAG = "__cloudlabs_type__"
#: Characters of JSON one export may send (answers are ids, short strings and small lists).
MAX_EXPORT_CHARS = 2_000_000
PARAMETER_NAMES = ("endpoint_url", "region", "account_id", "prefix")

# -- what a test reads ------------------------------------------------------------------------


def assigned_names(source: str) -> set[str]:
    """Names a piece of code binds at any level (assignments, defs, imports, loop targets)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def imported_modules(source: str) -> set[str]:
    """The modules a piece of code imports (absolute imports; none when it does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython syntax (magics, shell escapes)
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def client_services(source: str) -> list[str]:
    """The AWS services a piece of code makes clients of: string constants passed first to a call
    of ``client`` (``boto3.client("s3")``, ``session.client("sqs")``, a lab's ``client("iam")``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        first = node.args[0]
        service = first.value if isinstance(first, ast.Constant) else None
        if name == "client" and isinstance(service, str) and service not in found:
            found.append(service)
    return found


def loaded_names(source: str) -> set[str]:
    return {
        node.id
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }


def setup_sources(nb: NotebookNode) -> list[str]:
    """The sources of the lab's setup cells, in order (parameters are injected separately)."""
    return [
        c.source
        for c in nb.cells
        if c.cell_type == "code" and "setup" in nbu.tags(c) and "parameters" not in nbu.tags(c)
    ]


def setup_names(nb: NotebookNode) -> set[str]:
    names = set(PARAMETER_NAMES)
    for source in setup_sources(nb):
        names |= assigned_names(source)
    return names


def free_names(source: str, given: set[str]) -> set[str]:
    """Names ``source`` reads that neither it, ``given`` nor the builtins define."""
    return loaded_names(source) - assigned_names(source) - given - set(dir(builtins))


def declared_answers(cell: NotebookNode) -> list[str]:
    """The answer names a solution cell declares (``metadata.cloudlabs.answers``)."""
    return list(cell.get("metadata", {}).get("cloudlabs", {}).get("answers", []))


# -- the kernel side ---------------------------------------------------------------------------

#: Defined in the student's kernel (silently) before each export or call. It only reads the
#: kernel's globals and encodes them; the grader decodes the JSON and trusts nothing else.
KERNEL_HELPERS = """
def __cloudlabs_encode__(value, depth=0):
    import base64, datetime, types
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind in (datetime.datetime, datetime.date):
        return {"__cloudlabs_type__": kind.__name__, "iso": value.isoformat()}
    if depth > 40:
        raise ValueError("nested too deeply")
    if kind in (list, tuple):
        return [__cloudlabs_encode__(v, depth + 1) for v in value]
    if kind is dict:
        if not all(type(k) is str for k in value):
            raise TypeError("dict keys must be str")
        return {k: __cloudlabs_encode__(v, depth + 1) for k, v in value.items()}
    if kind is bytes:
        return {"__cloudlabs_type__": "bytes", "b64": base64.b64encode(value).decode()}
    if kind is types.FunctionType:
        return {"__cloudlabs_type__": "function"}
    raise TypeError(kind.__name__)


def __cloudlabs_export__(names):
    import json
    out = {}
    for name in names:
        if name not in globals():
            out[name] = {"__cloudlabs_type__": "missing"}
            continue
        value = globals()[name]
        try:
            out[name] = __cloudlabs_encode__(value)
        except Exception:
            out[name] = {"__cloudlabs_type__": "unsupported", "type": type(value).__name__}
    return json.dumps(out)


def __cloudlabs_call__(name, arguments):
    import json
    args, kwargs = __cloudlabs_decode__(json.loads(arguments))
    try:
        value = globals()[name](*args, **kwargs)
    except Exception as exc:
        return json.dumps({"raised": [type(exc).__name__, str(exc)[:2000]]})
    try:
        return json.dumps({"value": __cloudlabs_encode__(value)})
    except Exception:
        return json.dumps({"raised": ["TypeError", f"{name} returned a {type(value).__name__}, "
                                                   "which is not plain data"]})


def __cloudlabs_decode__(value):
    import base64
    if isinstance(value, list):
        return [__cloudlabs_decode__(v) for v in value]
    if isinstance(value, dict):
        if value.get("__cloudlabs_type__") == "bytes":
            return base64.b64decode(value["b64"])
        return {k: __cloudlabs_decode__(v) for k, v in value.items()}
    return value
"""


def export_expression(names: list[str]) -> str:
    return f"__cloudlabs_export__({sorted(names)!r})"


def call_expression(name: str, args: list, kwargs: dict) -> str:
    payload = json.dumps([encode(args), encode(kwargs)])
    return f"__cloudlabs_call__({name!r}, {payload!r})"


def reply_text(reply: dict | None, key: str) -> str | None:
    """The JSON text a user expression of an execute reply evaluated to, or None."""
    content = (reply or {}).get("content", {})
    expression = content.get("user_expressions", {}).get(key, {})
    if content.get("status") != "ok" or expression.get("status") != "ok":
        return None
    text = expression.get("data", {}).get("text/plain", "")
    if not isinstance(text, str) or len(text) > MAX_EXPORT_CHARS * 2:
        return None
    try:
        value = ast.literal_eval(text)  # the repr of a str: a literal, never code
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, str) and len(value) <= MAX_EXPORT_CHARS else None


# -- plain data on the grader's side -----------------------------------------------------------


def encode(value: Any) -> Any:
    """Plain data (with bytes and tuples) as JSON-ready values, the kernel helper's encoding."""
    if isinstance(value, bytes):
        return {TAG: "bytes", "b64": base64.b64encode(value).decode()}
    if isinstance(value, datetime.date):
        return {TAG: type(value).__name__, "iso": value.isoformat()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    return value


def decode(value: Any, function: Any = None) -> Any:
    """JSON from the kernel back to plain values; ``function(tag)`` makes a stub for functions.
    Raises Unavailable for a value that did not cross (missing, not plain data)."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        kind = value.get(TAG)
        if kind == "bytes":
            return base64.b64decode(str(value.get("b64", "")))
        if kind in {"datetime", "date"}:
            parse = datetime.datetime if kind == "datetime" else datetime.date
            try:
                return parse.fromisoformat(str(value.get("iso", "")))
            except ValueError:
                raise Unavailable("unsupported", kind) from None
        if kind == "function" and function is not None:  # only a top-level answer is callable
            return function()
        if kind in {"missing", "unsupported", "function"}:
            raise Unavailable(kind, str(value.get("type", "")))
        return {k: decode(v) for k, v in value.items()}
    return value


class Unavailable(Exception):
    """An answer that did not cross as plain data."""

    def __init__(self, kind: str, type_name: str = "") -> None:
        super().__init__(kind, type_name)
        self.kind = kind
        self.type_name = type_name
