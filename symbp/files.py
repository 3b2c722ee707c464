"""Reading inputs and writing outputs safely.

Outputs are all-or-nothing (every check before any write), atomic (a temporary file in the same
directory, then a rename), never over a file symbp did not write or that was edited since
(unless ``--force``), and a symbolic link stays a link: its target is replaced.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from symbp.errors import SpecError
from symbp.provenance import Provenance, provenance


class OutputError(Exception):
    """A file cannot or may not be written; nothing was written."""


def read_regular(path: Path, limit: int, what: str, kind: str) -> bytes:
    """At most ``limit`` + 1 bytes of the regular file ``path`` (a caller that gets more knows
    the file is too large). A directory, a pipe or a device is refused without waiting on it.

    ``what`` names the file in messages ("the spec"), ``kind`` what to name instead (".toml
    spec")."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as err:
        raise SpecError(f"cannot read {what}: {err.strerror}", where=str(path)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SpecError(f"not a regular file; name a {kind} file", where=str(path))
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError as err:
        raise SpecError(f"cannot read {what}: {err.strerror}", where=str(path)) from None
    finally:
        os.close(fd)


def destination(path: Path) -> Path:
    """Where writing ``path`` really goes: a symbolic link's target, so that the link stays."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def check_writable(outputs: Mapping[Path, object], *, force: bool) -> None:
    """Refuse before writing anything: a directory or a special file in the way, a directory
    that cannot be made or written, or (without ``force``) a file symbp did not write or that
    was edited since it did."""
    for path in outputs:
        target = destination(path)
        if target.is_dir():
            raise OutputError(f"{path} is a directory; name a file")
        if path.is_symlink() and not target.parent.is_dir():
            raise OutputError(f"{path} links to {target}, whose directory does not exist")
        if target.exists():
            if not target.is_file():
                raise OutputError(f"{path} is not a regular file; name a file to write")
            if not force:
                _check_ours(path, target)
        _check_directory(path, target.parent)


def _check_ours(path: Path, target: Path) -> None:
    try:
        found = provenance(target.read_bytes())
    except OSError as err:
        raise OutputError(f"{path}: cannot read it to see who wrote it: {err.strerror}") from None
    if found is Provenance.EDITED:
        raise OutputError(f"{path} was edited since symbp wrote it; use --force to overwrite it")
    if found is Provenance.FOREIGN:
        raise OutputError(f"{path} was not written by symbp; use --force to overwrite it")


def _check_directory(path: Path, directory: Path) -> None:
    """The nearest existing directory above ``path`` must be a directory symbp may write in."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # a dangling link where a directory should be made
            raise OutputError(f"cannot write {path}: {existing} is a broken link")
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"cannot write {path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: {existing} is not writable")


def write_all(outputs: Mapping[Path, str | bytes], *, force: bool = False) -> list[Path]:
    """Write every file atomically, after every check has passed.

    A refusal writes nothing; an interrupted write leaves the previous file intact.
    """
    check_writable(outputs, force=force)
    written = []
    for path, data in outputs.items():
        write_atomic(path, data)
        written.append(path)
    return written


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write to a temporary file beside the destination, then rename it over the destination
    (a link's target, so the link stays)."""
    target = destination(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:  # the directory changed since it was checked
        raise OutputError(f"cannot write {path}: {err.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
