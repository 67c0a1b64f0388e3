"""The one output sanitiser: no control character, escape sequence or bidi override reaches a terminal or an export.

Text is stored as it came (quote offsets index the stored abstract exactly); every renderer passes what it shows
through `visible` (or `visible_json` for JSON values) on the way out.
"""

from __future__ import annotations

import re
from typing import Any

# Whole escape sequences go: CSI ("ESC [ ... final", or the 8-bit U+009B), OSC ("ESC ] ... BEL|ST", or U+009D),
# DCS/SOS/PM/APC strings, and two-character ESC sequences. An unterminated string ends at the line's end.
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|(?:\x1b[\]P^_X]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"
)
# What is left: C0 but tab and newline, DEL, C1, and the bidi embeddings, overrides, isolates and marks.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_PICTURE_DEL = "\u2421"
_REPLACEMENT = "\ufffd"


def _shown(match: re.Match[str]) -> str:
    """A C0 control as its Unicode control picture (␀ .. ␟, ␡ for DEL); anything else as U+FFFD."""
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)
    return _PICTURE_DEL if code == 0x7F else _REPLACEMENT


def visible(text: str) -> str:
    """`text` safe to print or save: escape sequences removed, other controls made visible; tab and newline kept."""
    if text.isprintable():  # the common case: nothing to do (tab and newline are not printable, so they take the slow path)
        return text
    text = _SEQUENCE.sub("", text.replace("\r\n", "\n"))
    return _CONTROL.sub(_shown, text)


def visible_json(value: Any) -> Any:
    """A JSON-ready value with `visible` applied to every string in it, keys included."""
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, dict):
        return {visible_json(k): visible_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [visible_json(v) for v in value]
    return value


_INTRODUCER = re.compile("[\x1b\x90\x98\x9b\x9d\x9e\x9f]")
_STRING_END = re.compile("\x07|\x1b\\\\|\x9c|\n")
_CSI_BODY = re.compile("[\x30-\x3f]*[\x20-\x2f]*")
_HOLD_MAX = 512  # a "sequence" longer than this is not waiting for its end: release it (still sanitised)


def _unfinished(tail: str) -> bool:
    """Whether `tail` (starting at an introducer) is an escape sequence that the next text could still complete."""
    if len(tail) > _HOLD_MAX:
        return False
    if tail.startswith(("\x1b[", "\x9b")):
        return _CSI_BODY.fullmatch(tail[2 if tail[0] == "\x1b" else 1 :]) is not None
    if tail[:2] in ("\x1b]", "\x1bP", "\x1b^", "\x1b_", "\x1bX") or tail[0] != "\x1b":
        return _STRING_END.search(tail, 1) is None
    return re.fullmatch("\x1b[\x20-\x2f]*", tail) is not None


class VisibleStream:
    """`visible` for text that arrives in pieces: an escape sequence split between two pieces is held back until it
    is whole, so it is removed like any other instead of leaving "[2J" on the screen."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        """The sanitised text that can be shown now."""
        text = self._held + text
        self._held = ""
        starts = [m.start() for m in _INTRODUCER.finditer(text, max(0, len(text) - _HOLD_MAX - 1))]
        if starts and _unfinished(text[starts[-1] :]):
            text, self._held = text[: starts[-1]], text[starts[-1] :]
        return visible(text)
