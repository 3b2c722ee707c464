"""The TOML key at a place in a spec's text, for the errors ``tomllib`` raises without one.

``tomllib`` refuses an integer of more than 4300 digits with a bare ``ValueError`` and a deep
nesting with ``RecursionError``; neither says where. This scanner walks the text up to the
offending place, tracking table headers, inline tables, arrays and strings, and names the key
there as the rest of symbp does (``network.layers[0].units``). It never evaluates anything.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

_NUMBER = re.compile(r"[+-]?\d[\d_]*")


@dataclass
class _Frame:
    key: str
    array: bool
    index: int = 0


@dataclass
class _Scan:
    """The state of the walk at one offset: the key path there, or that it is in a string."""

    header: list[str] = field(default_factory=list)
    frames: list[_Frame] = field(default_factory=list)
    key: str = ""
    in_string: bool = False
    depth_exceeded_at: int | None = None

    def path(self) -> str:
        parts = list(self.header)
        for frame in self.frames:
            parts.append(f"{frame.key}[{frame.index}]" if frame.array else frame.key)
        if self.key:
            parts.append(self.key)
        text = ".".join(p for p in parts if p)
        return text.replace(".[", "[")


def _clean_key(text: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in text.strip().split("."))


def _scan(text: str, stop: int, max_depth: int | None = None) -> _Scan:
    """Walk ``text`` up to offset ``stop`` (or, with ``max_depth``, to the first place nested
    deeper than that)."""
    state = _Scan()
    buffer: list[str] = []
    line_start = True
    i = 0
    while i < stop:
        c = text[i]
        if c in "\"'":
            quote = c * 3 if text.startswith(c * 3, i) else c
            end = i + len(quote)
            while end < len(text) and not text.startswith(quote, end):
                end += 2 if c == '"' and text[end] == "\\" else 1
            if end >= stop:
                state.in_string = True
                return state
            buffer.append(text[i : end + len(quote)])
            i = end + len(quote)
            line_start = False
            continue
        if c == "#":
            end = text.find("\n", i)
            i = stop if end < 0 else end
            continue
        if c == "\n":
            if not state.frames:
                state.key, buffer = "", []
            line_start = True
            i += 1
            continue
        if c == "[" and line_start and not state.frames:
            end = text.find("]", i)
            end = stop if end < 0 else end
            state.header = [_clean_key(text[i + 1 : end].strip("[]"))]
            state.key, buffer = "", []
            i = end + 1
            continue
        if not c.isspace():
            line_start = False
        if c in "[{":
            state.frames.append(_Frame(state.key, array=c == "["))
            state.key, buffer = "", []
            if max_depth is not None and len(state.frames) > max_depth:
                state.depth_exceeded_at = i
                return state
        elif c in "]}":
            if state.frames:
                frame = state.frames.pop()
                state.key = frame.key
            buffer = []
        elif c == ",":
            if state.frames and state.frames[-1].array:
                state.frames[-1].index += 1
            else:
                state.key = ""
            buffer = []
        elif c == "=":
            state.key = _clean_key("".join(buffer))
            buffer = []
        else:
            buffer.append(c)
        i += 1
    return state


def oversized_number(text: str) -> tuple[str, int] | None:
    """(the key, the digit count) of the first integer too long for Python to read, if any."""
    limit = sys.get_int_max_str_digits() or 4300
    for match in _NUMBER.finditer(text):
        digits = sum(ch.isdigit() for ch in match.group())
        if digits <= limit:
            continue
        state = _scan(text, match.start())
        if not state.in_string:
            return state.path(), digits
    return None


def deepest_key(text: str, max_depth: int) -> str | None:
    """The key at the first place nested deeper than ``max_depth`` arrays and tables."""
    state = _scan(text, len(text), max_depth)
    return state.path() if state.depth_exceeded_at is not None else None
