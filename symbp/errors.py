"""The one error type users see: a bad spec, said in one line that names where and what to do."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """``text`` with control characters escaped (a newline as ``\\n``), so it prints on one line.

    A file name, a TOML key or a step may hold a newline; a message must still be one line.
    """
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class SpecError(ValueError):
    """A problem in user input, reported as ``file: key: message`` without a traceback.

    ``where`` names the file, ``key`` the TOML key (and for a step its index and text).
    """

    def __init__(self, message: str, *, where: str | None = None, key: str | None = None):
        self.message = message
        self.where = where
        self.key = key
        super().__init__(self.format())

    def format(self) -> str:
        parts = [p for p in (self.where, self.key) if p]
        return one_line(": ".join([*parts, self.message]))

    def located(self, *, where: str | None = None, key: str | None = None) -> SpecError:
        """The same error with the file and key filled in where they were missing."""
        return SpecError(
            self.message,
            where=self.where or where,
            key=self.key or key,
        )
