"""Hard time limits: work that grows with the model runs in a forked child, killed at the
deadline.

An alarm signal cannot stop SymPy while it is inside C code (issue 11: the alarm's exception
surfaced as ``SystemError`` from ``Basic.__hash__``), and a Python-level deadline is only checked
between calls. A process can always be killed. The child inherits the parent's memory (the
derivation, a loaded module, even a test's monkeypatches), so nothing is pickled on the way in;
each result it sends back is small (counts, text) and is pickled through a pipe as soon as it is
ready, so the parent keeps every stage that finished before the deadline. Forking costs a few
milliseconds.

Where ``os.fork`` does not exist (Windows), the work runs in the process and the deadline is
checked between stages only.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import struct
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TIMEOUT = 60.0
"""Seconds a command's growing work may take unless ``--timeout`` says otherwise."""
Emit = Callable[[str, Any], None]
"""``emit(stage, value)``: hand one finished stage's result to the parent."""


@dataclass
class Outcome:
    """What the work handed back before it ended or was stopped."""

    results: dict[str, Any] = field(default_factory=dict)
    finished: bool = False
    """False when the deadline stopped the work (the stages not in ``results`` did not end)."""
    seconds: float = 0.0


class StageCrashed(Exception):
    """The child ended without finishing and without an error of its own (killed, say, by the
    system for using too much memory)."""


def run_stages(work: Callable[[Emit], None], timeout: float) -> Outcome:
    """Run ``work(emit)`` for at most ``timeout`` seconds and return what it emitted.

    An exception in the work is raised here, with the child's traceback as a note.
    """
    started = time.monotonic()
    if not hasattr(os, "fork"):
        return _run_inline(work, started + timeout)
    read_end, write_end = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    with warnings.catch_warnings():
        # Python 3.12+ (and JAX, when the caller imported it) warn of forking with threads
        # alive: the child runs SymPy only, and touches no thread-owned state of theirs.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings(
            "ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning
        )
        pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        _child(work, write_end)
    os.close(write_end)
    outcome = Outcome()
    try:
        error = _collect(read_end, started + timeout, outcome)
    finally:
        os.close(read_end)
        _reap(pid)
    outcome.seconds = time.monotonic() - started
    if error is not None:
        raise error
    return outcome


def _child(work: Callable[[Emit], None], fd: int) -> None:
    status = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: the parent cleans up

        def emit(stage: str, value: Any) -> None:
            _send(fd, ("result", stage, value))

        work(emit)
        _send(fd, ("done", None, None))
    except BaseException as err:  # everything goes to the parent, which decides
        status = 1
        text = "".join(traceback.format_exception(err))
        try:
            pickle.loads(pickle.dumps(err))  # it must come back whole in the parent
        except Exception:
            err = RuntimeError(f"{type(err).__name__}: {err}")
        _send(fd, ("error", err, text))
    finally:
        os._exit(status)  # no atexit handlers, no flushing of the parent's buffers


def _send(fd: int, message: tuple) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    payload = struct.pack(">Q", len(data)) + data
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _collect(fd: int, deadline: float, outcome: Outcome) -> BaseException | None:
    """Read messages until the child is done or the deadline passes; the child's error."""
    buffer = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return None
        chunk = os.read(fd, 1 << 16)
        if not chunk:  # the child is gone without saying "done"
            return StageCrashed("the computation ended without a result (out of memory?)")
        buffer += chunk
        while len(buffer) >= 8:
            (size,) = struct.unpack(">Q", buffer[:8])
            if len(buffer) < 8 + size:
                break
            kind, first, second = pickle.loads(bytes(buffer[8 : 8 + size]))
            del buffer[: 8 + size]
            if kind == "result":  # (stage, its value)
                outcome.results[first] = second
            elif kind == "done":
                outcome.finished = True
                return None
            else:  # (the exception, the child's traceback)
                first.add_note(second.rstrip())
                return first


def _reap(pid: int) -> None:
    """Stop the child if it still runs, and wait for it (no zombie is left)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


class _Late(Exception):
    pass


def _run_inline(work: Callable[[Emit], None], deadline: float) -> Outcome:
    outcome = Outcome()

    def emit(stage: str, value: Any) -> None:
        outcome.results[stage] = value
        if time.monotonic() > deadline:
            raise _Late

    started = time.monotonic()
    try:
        work(emit)
        outcome.finished = time.monotonic() <= deadline
    except _Late:
        pass
    outcome.seconds = time.monotonic() - started
    return outcome
