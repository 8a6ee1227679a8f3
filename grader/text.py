"""Text from submissions made safe for reports: bounded in size and free of characters that XML 1.0
or HTML cannot carry.

Everything a submission produced (cell outputs, error names and values, failure messages, notes)
passes through :func:`clean` before it reaches results JSON, feedback HTML, the class summary or
``junit.xml``: a NUL or a lone surrogate would make ``junit.xml`` unparseable, terminal escape
sequences would rewrite the instructor's terminal, and a 10 MB message would bloat every report.
"""

from __future__ import annotations

import re
from typing import Any

#: The default cap, in characters, for one piece of text in a report (a message, a note).
LIMIT = 2_000

#: ANSI/VT100 escape sequences (colours in tracebacks, cursor movement): removed whole, so no
#: ``[0;31m`` is left behind once the escape character itself is gone.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")

#: What XML 1.0 does not allow (C0 controls but tab, LF and CR; surrogates, which in a Python
#: string are always lone; U+FFFE and U+FFFF) and what HTML calls a parse error (DEL, the C1
#: controls, the noncharacters U+FDD0–U+FDEF and U+xFFFE/U+xFFFF of every plane).
_INVALID = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
    + "".join(f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(1, 17))
    + "]"
)


def clean(text: Any, limit: int = LIMIT) -> str:
    """``text`` as a string of at most about ``limit`` characters that any XML 1.0 or HTML
    document can hold: escape sequences and invalid characters removed, and the end cut (with a
    note saying how much) when it is too long. Not HTML-escaped: escaping is the writer's job."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    limit = max(0, limit)
    window = limit + 256  # scan a little beyond the limit only: what is removed shortens it
    dropped = len(text) > window
    text = _INVALID.sub("", _ANSI.sub("", text[:window] if dropped else text))
    if dropped or len(text) > limit:
        return text[:limit] + " … [cut: too long]"
    return text


def clean_lines(items: Any, *, limit: int = LIMIT, count: int = 100) -> list[str]:
    """Each of ``items`` cleaned; at most ``count`` of them, then one line saying how many more."""
    items = list(items or [])
    kept = [clean(item, limit) for item in items[:count]]
    if len(items) > count:
        kept.append(f"… and {len(items) - count:,} more")
    return kept
