"""``multipart/form-data`` bodies (RFC 7578): made for an upload, read by a simulator.

:func:`encode` makes a body of text fields and files with a fresh random boundary (one that
occurs in no value); names and file names are quoted as browsers do (``"`` as ``%22``, CR and LF
as ``%0D`` and ``%0A``). :func:`parse` reads one back, strictly: a body that does not follow the
format raises :class:`MultipartError` (a ``ValueError``) saying where. Parts are kept whole in
memory: bodies are the size of an upload, not a stream.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence

import msgspec

CRLF = b"\r\n"
MAX_PARTS = 256
MAX_HEAD = 8192  # bytes of one part's header lines
_BOUNDARY = re.compile(r'boundary=(?:"([^"]{1,70})"|([0-9A-Za-z\'()+_,./:=?-]{1,70}))')
_PARAM = re.compile(r';\s*([A-Za-z*-]+)="((?:[^"\\]|\\.)*)"')


class MultipartError(ValueError):
    """A body that is not ``multipart/form-data``, or a malformed one."""


class Part(msgspec.Struct, frozen=True):
    """A field (``filename`` empty) or a file of a form."""

    name: str
    value: bytes
    filename: str = ""
    content_type: str = ""

    @property
    def text(self) -> str:
        """The value as UTF-8 text (:class:`MultipartError` if it is not)."""
        try:
            return self.value.decode()
        except UnicodeDecodeError:
            raise MultipartError(f"field {self.name!r} is not UTF-8 text") from None


def field(name: str, value: str) -> Part:
    return Part(name, value.encode())


def _quote(text: str) -> str:
    return text.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def encode(parts: Sequence[Part], boundary: str = "") -> tuple[str, bytes]:
    """The ``Content-Type`` header and the body of a form of ``parts``."""
    while not boundary or any(boundary.encode() in part.value for part in parts):
        boundary = "loa-" + secrets.token_hex(16)
    delimiter = b"--" + boundary.encode()
    out: list[bytes] = []
    for part in parts:
        disposition = f'form-data; name="{_quote(part.name)}"'
        if part.filename:
            disposition += f'; filename="{_quote(part.filename)}"'
        head = f"Content-Disposition: {disposition}\r\n"
        if part.content_type:
            head += f"Content-Type: {part.content_type}\r\n"
        out += [delimiter, CRLF, head.encode(), CRLF, part.value, CRLF]
    out += [delimiter, b"--", CRLF]
    return f"multipart/form-data; boundary={boundary}", b"".join(out)


def boundary_of(content_type: str) -> str:
    media, _, params = content_type.partition(";")
    if media.strip().lower() != "multipart/form-data":
        raise MultipartError(f"not multipart/form-data: {media.strip()[:60]!r}")
    found = _BOUNDARY.search(params)
    if found is None:
        raise MultipartError("multipart/form-data without a boundary")
    return found[1] or found[2]


def parse(content_type: str, body: bytes) -> list[Part]:
    """The parts of a ``multipart/form-data`` body, in order."""
    delimiter = b"--" + boundary_of(content_type).encode()
    if not body.startswith(delimiter):
        raise MultipartError("the body does not start with the boundary")
    parts: list[Part] = []
    pos = len(delimiter)
    while True:
        if body.startswith(b"--", pos):
            return parts  # the close delimiter (what follows is an epilogue)
        if not body.startswith(CRLF, pos):
            raise MultipartError(f"part {len(parts) + 1}: no line break after the boundary")
        if len(parts) == MAX_PARTS:
            raise MultipartError(f"more than {MAX_PARTS} parts")
        start = pos + 2
        head_end = body.find(CRLF + CRLF, start, start + MAX_HEAD)
        if head_end < 0:
            raise MultipartError(f"part {len(parts) + 1}: no end of its header lines")
        end = body.find(CRLF + delimiter, head_end + 4)
        if end < 0:
            raise MultipartError(f"part {len(parts) + 1}: no boundary after it")
        parts.append(_part(body[start:head_end], body[head_end + 4:end], len(parts) + 1))
        pos = end + 2 + len(delimiter)


def _part(head: bytes, value: bytes, number: int) -> Part:
    disposition = content_type = ""
    for line in head.split(CRLF):
        name, sep, text = line.decode("utf-8", errors="replace").partition(":")
        if not sep:
            raise MultipartError(f"part {number}: a header line without a colon")
        key = name.strip().lower()
        if key == "content-disposition":
            disposition = text.strip()
        elif key == "content-type":
            content_type = text.strip()
    kind, _, params = disposition.partition(";")
    if kind.strip().lower() != "form-data":
        raise MultipartError(f"part {number}: no Content-Disposition: form-data")
    found = {key.lower(): value for key, value in _PARAM.findall(";" + params)}
    if "name" not in found:
        raise MultipartError(f"part {number}: no name")
    return Part(found["name"], value, found.get("filename", ""), content_type)
