"""A one-line progress bar for the training loop, built in rather than tqdm.

On a terminal it redraws one line in place (``epoch 3/30 [#######.......] 21/45``) at most ten
times a second and erases it when the epoch ends, so that only the epoch lines stay. Anywhere
else (a log file, CI, a notebook's output) it draws nothing: there a bar would be a line per
redraw, and the epoch lines are the record. That is all a loop over minibatches needs, so it
needs no dependency (tqdm would add one, and a second code path to test, for the same line).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30
INTERVAL = 0.1
"""Seconds between redraws: enough to look alive, too few to cost anything."""


class Progress:
    """``update`` after each minibatch, ``clear`` at the end of an epoch."""

    def __init__(self, enabled: bool | None = None, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.enabled = _is_terminal(self.stream) if enabled is None else enabled
        self._shown = 0
        self._last = 0.0

    def update(self, epoch: int, epochs: int, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last < INTERVAL:
            return
        self._last = now
        filled = WIDTH * done // max(total, 1)
        line = f"epoch {epoch}/{epochs} [{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{total}"
        self.stream.write("\r" + line.ljust(self._shown))
        self.stream.flush()
        self._shown = len(line)

    def clear(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self.stream.flush()
            self._shown = 0


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False
