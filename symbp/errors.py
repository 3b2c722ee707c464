"""The one error type users see: a bad spec, said in one line that names where and what to do."""

from __future__ import annotations


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
        return ": ".join([*parts, self.message])

    def located(self, *, where: str | None = None, key: str | None = None) -> SpecError:
        """The same error with the file and key filled in where they were missing."""
        return SpecError(
            self.message,
            where=self.where or where,
            key=self.key or key,
        )
