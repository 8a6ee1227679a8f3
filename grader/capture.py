"""Output caps for the grading client: every channel a kernel can write through counts.

A mixin of :class:`grader.execute.GradingClient` (an nbclient ``NotebookClient``): it overrides
nbclient's output handlers so that one cell keeps at most ``output_limit`` characters of output
and the whole notebook ``notebook_output_factor`` times that, and records an :class:`Event` when
it drops something.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from nbformat import NotebookNode
from nbformat.v4 import new_output


@dataclasses.dataclass(frozen=True)
class Event:
    """Something that went wrong while running one cell."""

    cell: int
    section: str | None
    kind: str  #: "timeout", "kernel-died", "budget", "output-truncated", "setup-broken"
    message: str


class OutputCaps:
    """The output-capping half of the grading client (needs ``output_limit`` and ``events``)."""

    output_limit: int
    events: list[Event]

    # -- output cap --------------------------------------------------------------------------
    # Every channel a kernel can put output through counts, in characters as stored: streams;
    # execute_result and display_data (every mime type, base64 images, and their metadata); errors
    # (name, value and traceback); update_display_data, which rewrites each output with its
    # display id (in any cell) and so costs its size once per output it rewrites; output after a
    # clear_output; widget comm messages, whose state goes into the notebook's metadata. What one
    # cell sends is capped at ``output_limit``, the whole notebook at ``notebook_output_factor``
    # times that. What is dropped costs nothing (one huge message cannot use up the notebook's
    # cap for the cells after it); a clear_output frees nothing: the caps count what was kept,
    # so the executed notebook stays bounded whatever the order of messages. An error is never
    # dropped while its
    # cell holds none (nbgrader scores a test cell by its errors): it is shortened instead, it
    # always lands in its cell (not in an output widget) and a clear_output keeps it.

    notebook_output_factor = 20  #: the notebook's output cap, in multiples of ``output_limit``
    _NOTE = "\n[cloudlabs: "  #: how the truncation notes begin
    _SURROGATE = re.compile("[\ud800-\udfff]")

    @dataclasses.dataclass
    class _Caps:
        cells: dict[int, int] = dataclasses.field(default_factory=dict)  #: characters per cell
        total: int = 0  #: characters the whole notebook sent
        noted: set[int] = dataclasses.field(default_factory=set)  #: cells told they were cut
        whole_noted: bool = False  #: the notebook's cap was reported
        current: int = 0  #: the cell whose messages are being processed

    @property
    def _caps(self) -> OutputCaps._Caps:
        caps = self.__dict__.get("_output_caps")
        if caps is None:
            caps = self.__dict__["_output_caps"] = self._Caps()
        return caps

    @property
    def notebook_output_limit(self) -> int:
        return self.notebook_output_factor * self.output_limit

    def process_message(self, msg, cell, cell_index):  # type: ignore[override]
        self._caps.current = cell_index
        content = msg.get("content")
        if (
            isinstance(content, dict)
            and msg.get("msg_type") not in {"status", "execute_input"}
            and self._SURROGATE.search(self._json_text(content))
        ):  # lone surrogates (from a hand-made message) could not be written out as UTF-8
            msg = {**msg, "content": self._scrub(content)}
        return super().process_message(msg, cell, cell_index)

    def output(self, outs, msg, display_id, cell_index):  # type: ignore[override]
        content = msg.get("content") or {}
        kind = msg.get("msg_type") or msg.get("header", {}).get("msg_type")
        size = self._size(kind, content)
        room = self._room(cell_index)
        if kind == "error":  # never into a widget, never lost while its cell holds no error
            self._clear_pending(outs, cell_index)
            if size > room:
                self._truncated(outs, cell_index)
                if any(o.get("output_type") == "error" for o in outs):
                    return None
            out = self._error(content, short=size > room)
            self._charge(cell_index, min(size, self._size(kind, out)))
            outs.append(out)
            return out
        if size <= room:
            self._charge(cell_index, size)
            return super().output(outs, msg, display_id, cell_index)
        if not self.output_hook_stack[msg.get("parent_header", {}).get("msg_id")]:
            self._clear_pending(outs, cell_index)
        if kind == "stream" and room > 0:  # keep what fits of a stream
            text = str(content.get("text", ""))[:room]
            self._charge(cell_index, len(text))
            super().output(outs, {**msg, "content": {**content, "text": text}}, None, cell_index)
        self._truncated(outs, cell_index)
        return None

    def clear_output(self, outs, msg, cell_index):  # type: ignore[override]
        hooked = self.output_hook_stack[msg.get("parent_header", {}).get("msg_id")]
        if hooked or (msg.get("content") or {}).get("wait"):
            return super().clear_output(outs, msg, cell_index)
        outs[:] = self._kept(outs)
        self.clear_display_id_mapping(cell_index)
        return None

    def _update_display_id(self, display_id, msg):  # type: ignore[override]
        targets = sum(len(v) for v in self._display_id_map.get(display_id, {}).values())
        if not targets:
            return super()._update_display_id(display_id, msg)
        cell_index = self._caps.current
        size = targets * self._size("display_data", msg.get("content") or {})
        if size > self._room(cell_index):
            self._truncated(self.nb.cells[cell_index].outputs, cell_index)
            return None
        self._charge(cell_index, size)
        return super()._update_display_id(display_id, msg)

    def handle_comm_msg(self, outs, msg, cell_index):  # type: ignore[override]
        content = msg.get("content") or {}
        buffers = sum(4 * len(b) // 3 + 4 for b in msg.get("buffers") or [])
        size = len(self._json_text(content.get("data"))) + buffers
        if size > self._room(cell_index):
            self._truncated(outs, cell_index)
            return None
        self._charge(cell_index, size)
        try:
            return super().handle_comm_msg(outs, msg, cell_index)
        except Exception as exc:  # a hand-made comm message must not stop the grading
            self.log.warning("ignored a malformed comm message: %r", exc)
            return None

    def _room(self, cell_index: int) -> int:
        """Characters the cell may still send within both caps."""
        caps = self._caps
        cell = self.output_limit - caps.cells.get(cell_index, 0)
        return max(0, min(cell, self.notebook_output_limit - caps.total))

    def _charge(self, cell_index: int, size: int) -> None:
        caps = self._caps
        caps.cells[cell_index] = caps.cells.get(cell_index, 0) + size
        caps.total += size

    def _kept(self, outs: list) -> list:
        """What a clear_output leaves: the errors and the truncation notes."""
        return [o for o in outs if o.get("output_type") == "error" or self._is_note(o)]

    def _is_note(self, output: NotebookNode) -> bool:
        return output.get("output_type") == "stream" and str(output.get("text")).startswith(
            self._NOTE
        )

    def _clear_pending(self, outs: list, cell_index: int) -> None:
        """Carry out a clear_output(wait=True) before an output that is handled here."""
        if self.clear_before_next_output:
            outs[:] = self._kept(outs)
            self.clear_display_id_mapping(cell_index)
            self.clear_before_next_output = False

    def _truncated(self, outs: list, cell_index: int) -> None:
        """Say once per cell, in the cell and in the events, that output was dropped."""
        caps = self._caps
        whole = self.output_limit - caps.cells.get(cell_index, 0) > (
            self.notebook_output_limit - caps.total
        )  # the notebook's cap is the nearer one
        if not any(self._is_note(o) for o in outs):  # (again, if a clear_output removed it)
            cap = self.notebook_output_limit if whole else self.output_limit
            where = "the notebook's " if whole else ""
            text = f"{self._NOTE}output beyond {where}{cap:,} characters was dropped]\n"
            outs.append(new_output("stream", name="stdout", text=text))
        if cell_index in caps.noted or (whole and caps.whole_noted):
            return
        caps.noted.add(cell_index)
        caps.whole_noted |= whole
        why = (
            f"the notebook printed too much output (over {self.notebook_output_limit:,} "
            "characters in all); later output was dropped"
            if whole
            else "the cell printed too much output"
        )
        self.events.append(Event(cell_index, None, "output-truncated", why))

    @staticmethod
    def _json_text(value: Any) -> str:
        try:
            return json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError, RecursionError):
            return str(value)

    @classmethod
    def _size(cls, kind: str | None, content: dict) -> int:
        """Characters an output takes in the notebook (close enough: JSON text, but a stream's
        text as it is)."""
        if kind == "stream":
            return len(str(content.get("text", "")))
        return len(cls._json_text({k: v for k, v in content.items() if k != "transient"}))

    @staticmethod
    def _error(content: dict, *, short: bool) -> NotebookNode:
        """An error output from ``content``, whatever its shape; ``short``: at most ~10 kB."""
        name, value = str(content.get("ename", "Error")), str(content.get("evalue", ""))
        lines = content.get("traceback") or []
        lines = [str(line) for line in (lines if isinstance(lines, list) else [lines])]
        if short:
            name, value = name[:200], value[:2_000]
            lines = [line[:2_000] for line in lines[-3:]] + ["[cloudlabs: traceback shortened]"]
        return new_output("error", ename=name, evalue=value, traceback=lines)

    @classmethod
    def _scrub(cls, value: Any) -> Any:
        if isinstance(value, str):
            return cls._SURROGATE.sub("\ufffd", value)
        if isinstance(value, dict):
            return {cls._scrub(k): cls._scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [cls._scrub(v) for v in value]
        return value
