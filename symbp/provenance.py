"""Provenance: a header on every file symbp writes, with the SHA-256 of the rest of the file.

A file *verifies* when its header parses and the hash matches: symbp wrote it and nobody has
changed it since. Only such a file is overwritten without ``--force``, and only such a module is
imported by ``symbp check`` without ``--trust``. Header formats, one per kind of file:

- text (``.py``, CSV, the report's table): first line ``# symbp <version> sha256:<hex>``;
- LaTeX: first line ``% symbp <version> sha256:<hex>``;
- JSON: first line ``{"symbp": "<version> sha256:<hex>",``, the payload under ``"report"``;
- SVG: first line ``<!-- symbp <version> sha256:<hex> -->`` (the optional XML declaration,
  which would have to come first, is left out);
- PNG: a ``tEXt`` chunk ``symbp`` = ``<version> sha256:<hex>`` right after ``IHDR``;
- PDF: last line ``% symbp <version> sha256:<hex>``, after ``%%EOF`` (PDF offsets stay valid);
- zip (``.npz`` parameters, issue 15): the archive comment ``symbp <version> sha256:<hex>``,
  the file's last bytes (zip readers, ``np.load`` among them, skip it).

``<hex>`` hashes the file's bytes without the header line (or chunk; for a zip, the archive
as written with no comment). A hash is not a
signature: anyone can forge one on purpose, but no file gets one by accident, and no edit keeps
it.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import struct
import zlib
from typing import Any

from symbp.version import __version__

_HASH = r"(?P<version>[0-9A-Za-z.+_-]{1,40}) sha256:(?P<hash>[0-9a-f]{64})"
_FIRST_LINES = (
    re.compile(rb"[#%] symbp " + _HASH.encode()),
    re.compile(rb'\{"symbp": "' + _HASH.encode() + rb'",'),
    re.compile(rb"<!-- symbp " + _HASH.encode() + rb" -->"),
)
_XML_DECLARATION = re.compile(r"\A<\?xml[^>]*\?>\s*")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IHDR_END = 8 + 4 + 4 + 13 + 4
_PNG_KEY = b"symbp\x00"
_PDF_TAIL = re.compile(rb"\n% symbp " + _HASH.encode() + rb"\n\Z")
_ZIP_SIGNATURE = b"PK\x03\x04"
_ZIP_END = b"PK\x05\x06"
"""The end of a zip's central directory: 22 bytes, the last two the comment's length."""
_ZIP_TAIL = re.compile(rb"PK\x05\x06[\s\S]{18}symbp " + _HASH.encode() + rb"\Z")


class Provenance(enum.Enum):
    OURS = "written by symbp and unchanged"
    EDITED = "edited since symbp wrote it"
    FOREIGN = "not written by symbp"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _header(data: bytes) -> str:
    return f"{__version__} sha256:{_digest(data)}"


def stamp_text(text: str, comment: str = "#") -> str:
    """``text`` under its header line, ``comment`` being ``#`` (Python, CSV) or ``%`` (LaTeX)."""
    return f"{comment} symbp {_header(text.encode('utf-8'))}\n{text}"


def stamp_xml(text: str) -> str:
    """An XML document (SVG) under its header comment, without its optional declaration."""
    body = _XML_DECLARATION.sub("", text, count=1)
    return f"<!-- symbp {_header(body.encode('utf-8'))} -->\n{body}"


def stamp_json(payload: Any) -> str:
    """``payload`` as a JSON document ``{"symbp": header, "report": payload}``."""
    body = json.dumps({"report": payload}, indent=2).removeprefix("{\n") + "\n"
    return '{"symbp": "' + _header(body.encode("utf-8")) + '",\n' + body


def stamp_png(png: bytes) -> bytes:
    """``png`` with a ``tEXt`` chunk holding the header, inserted right after ``IHDR``."""
    if not png.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG image")
    text = _PNG_KEY + _header(png).encode("ascii")
    chunk = struct.pack(">I", len(text)) + b"tEXt" + text
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + text))
    return png[:_PNG_IHDR_END] + chunk + png[_PNG_IHDR_END:]


def stamp_pdf(pdf: bytes) -> bytes:
    """``pdf`` with the header as a last comment line (readers stop at ``%%EOF``)."""
    body = pdf if pdf.endswith(b"\n") else pdf + b"\n"
    return body + b"% symbp " + _header(body).encode("ascii") + b"\n"


def stamp_zip(archive: bytes) -> bytes:
    """A zip archive written without a comment (``np.savez``'s) with the header as its comment."""
    if not archive.startswith(_ZIP_SIGNATURE) or archive[-22:-18] != _ZIP_END:
        raise ValueError("not a zip archive without a comment")
    comment = b"symbp " + _header(archive).encode("ascii")
    return archive[:-2] + struct.pack("<H", len(comment)) + comment


def provenance(data: bytes) -> Provenance:
    """Whether ``data`` is a file symbp wrote and nobody changed, one it wrote that was edited,
    or one with no header of symbp's at all."""
    found = _split(data)
    if found is None:
        return Provenance.FOREIGN
    claimed, body = found
    return Provenance.OURS if claimed == _digest(body) else Provenance.EDITED


def _split(data: bytes) -> tuple[str, bytes] | None:
    """(the hash the header claims, the bytes it covers), or None without a header."""
    if data.startswith(_PNG_SIGNATURE):
        return _split_png(data)
    if data.startswith(_ZIP_SIGNATURE):
        return _split_zip(data)
    if data.startswith(b"%PDF-"):
        match = _PDF_TAIL.search(data)
        return (match["hash"].decode(), data[: match.start() + 1]) if match else None
    line, newline, rest = data.partition(b"\n")
    for pattern in _FIRST_LINES:  # an editor's CRLF keeps the header, and breaks the hash
        match = pattern.fullmatch(line.removesuffix(b"\r"))
        if newline and match is not None:
            return match["hash"].decode(), rest
    return None


def _split_png(data: bytes) -> tuple[str, bytes] | None:
    start = _PNG_IHDR_END
    if len(data) < start + 8 or data[start + 4 : start + 8] != b"tEXt":
        return None
    (length,) = struct.unpack(">I", data[start : start + 4])
    text = data[start + 8 : start + 8 + length]
    match = re.fullmatch(re.escape(_PNG_KEY) + _HASH.encode(), text)
    if match is None:
        return None
    return match["hash"].decode(), data[:start] + data[start + 12 + length :]


def _split_zip(data: bytes) -> tuple[str, bytes] | None:
    match = _ZIP_TAIL.search(data)
    if match is None:
        return None
    (length,) = struct.unpack("<H", data[match.start() + 20 : match.start() + 22])
    if length != len(data) - match.start() - 22:
        return None
    return match["hash"].decode(), data[: match.start() + 20] + b"\x00\x00"
