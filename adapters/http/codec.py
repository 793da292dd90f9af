"""HTTP/1.1 messages from and to bytes, sans I/O (no sockets, no asyncio).

* :func:`request_head` and :func:`encode_request` build a request (``Host``, the caller's
  headers, ``Content-Length``); a client keeps the head of a request it repeats and appends only
  the length and the body (RFC 9112).
* :func:`encode_response` builds a response with a ``Content-Length`` body.
* :class:`ResponseParser` and :class:`RequestParser` are fed bytes as they arrive and answer the
  messages completed by them, in order (several when a read holds several). Bodies are framed
  by ``Content-Length`` or ``Transfer-Encoding: chunked``; a response with neither ends when the
  connection does (:meth:`ResponseParser.feed_eof`). Interim responses (1xx) are skipped, except
  101 which this codec refuses. Malformed input raises :class:`HttpError`, never anything else.

Header names are lower-cased; a repeated header's values are joined with ``", "``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Generic, TypeVar
from urllib.parse import parse_qsl, unquote

MAX_HEAD = 64 * 1024  # request or status line and headers
MAX_BODY = 16 * 1024 * 1024

_TOKEN = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_NO_BODY = frozenset({204, 304})


class HttpError(ValueError):
    """Bytes that are not HTTP/1.1 this codec accepts."""


class Response:
    """A parsed response."""

    __slots__ = ("body", "headers", "keep_alive", "reason", "status")

    def __init__(self, status: int, reason: str, headers: dict[str, str], body: bytes,
                 keep_alive: bool) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive  # False: the connection ends after this response


class Request:
    """A parsed request. ``path`` is percent-decoded, without the query string."""

    __slots__ = ("_query", "body", "headers", "keep_alive", "method", "path", "query_string",
                 "target")

    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes,
                 keep_alive: bool) -> None:
        self.method = method
        self.target = target
        path, _, self.query_string = target.partition("?")
        self.path = unquote(path) if "%" in path else path
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self._query: dict[str, str] | None = None

    @property
    def query(self) -> dict[str, str]:
        """The query string's parameters (the last value of a repeated one)."""
        if self._query is None:
            self._query = dict(parse_qsl(self.query_string, keep_blank_values=True))
        return self._query

    def form(self) -> dict[str, str]:
        """An ``application/x-www-form-urlencoded`` body's fields; {} for another type."""
        kind = self.headers.get("content-type", "").partition(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            return {}
        try:
            text = self.body.decode()
        except UnicodeDecodeError:
            raise HttpError("a form body that is not UTF-8") from None
        return dict(parse_qsl(text, keep_blank_values=True))


# -- building -----------------------------------------------------------------------------------


def _check_header(name: str, value: str) -> bytes:
    try:
        raw, text = name.encode("latin-1"), value.encode("latin-1")
    except UnicodeEncodeError:
        raise HttpError(f"header {name!r} is not Latin-1: encode its value") from None
    if not raw or raw.translate(None, _TOKEN):
        raise HttpError(f"header name {name!r} is not a token")
    if any(c in value for c in "\r\n\0"):
        raise HttpError(f"header {name!r} has a line break in its value")
    return raw + b": " + text + b"\r\n"


def request_head(method: str, target: str, host: str, headers: Mapping[str, str]) -> bytes:
    """A request up to ``Content-Length: ``: append the length, ``\\r\\n\\r\\n`` and the body."""
    if not method.encode().isalpha() or not target or any(c in target for c in " \r\n\0"):
        raise HttpError(f"cannot build a request {method} {target!r}")
    lines = [f"{method} {target} HTTP/1.1\r\n".encode()]
    names = {name.lower() for name in headers}
    if names & {"content-length", "transfer-encoding"}:
        raise HttpError("Content-Length and Transfer-Encoding are the codec's")
    if "host" not in names:
        lines.append(_check_header("Host", host))
    lines.extend(_check_header(name, value) for name, value in headers.items())
    lines.append(b"Content-Length: ")
    return b"".join(lines)


def encode_request(method: str, target: str, host: str, headers: Mapping[str, str],
                   body: bytes = b"") -> bytes:
    return request_head(method, target, host, headers) + b"%d\r\n\r\n" % len(body) + body


_status_lines: dict[tuple[int, str], bytes] = {}


def encode_response(status: int, body: bytes, content_type: str = "application/json", *,
                    keep_alive: bool = True, headers: Mapping[str, str] | None = None) -> bytes:
    """A response with a ``Content-Length`` body; ``Connection: close`` unless ``keep_alive``."""
    start = _status_lines.get((status, content_type))
    if start is None:
        if not 100 <= status <= 999:
            raise HttpError(f"status {status} is not three digits")
        reason = _REASONS.get(status, b"Unknown")
        start = b"HTTP/1.1 %d %s\r\n%s" % (status, reason, _check_header("Content-Type",
                                                                          content_type))
        if len(_status_lines) < 256:
            _status_lines[(status, content_type)] = start
    extra = b"".join(_check_header(n, v) for n, v in headers.items()) if headers else b""
    if not keep_alive:
        extra += b"Connection: close\r\n"
    return b"%s%sContent-Length: %d\r\n\r\n%s" % (start, extra, len(body), body)


# -- parsing ------------------------------------------------------------------------------------

M = TypeVar("M", Request, Response)

_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _TRAILER, _UNTIL_EOF = range(6)
_CHUNKED, _EOF, _INTERIM = -1, -2, -3  # framings other than a length


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


_HEADER = re.compile(rb"^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\r\n\0]*)\r\n", re.M)
_names: dict[bytes, str] = {}  # header names as sent -> lower-cased
# Keep-alive peers send the same start lines and header blocks again and again: the latest are
# remembered as parsed (emptied when full).
_CACHED = 256
_blocks: dict[bytes, dict[str, str]] = {}
_request_lines: dict[bytes, tuple[str, str, bytes]] = {}
_status_lines_in: dict[bytes, tuple[bytes, int, str]] = {}


def _headers(block: bytes) -> dict[str, str]:
    """The header lines of a head, each ending with CRLF."""
    known = _blocks.get(block)
    if known is not None:
        return known.copy()
    found = _HEADER.findall(block)
    if len(found) != block.count(b"\n"):  # a line that is not ``name: value`` CRLF
        for line in block.split(b"\r\n")[:-1]:
            if _HEADER.fullmatch(line + b"\r\n") is None:
                raise HttpError(f"malformed header line {line[:60]!r}")
        raise HttpError("a bare CR or LF in the head")
    names = _names
    headers: dict[str, str] = {}
    for raw, value in found:
        name = names.get(raw)
        if name is None:
            name = raw.decode("ascii").lower()
            if len(names) < 512:
                names[raw] = name
        text = value.decode("latin-1").rstrip(" \t")
        headers[name] = f"{headers[name]}, {text}" if name in headers else text
    if len(_blocks) >= _CACHED:
        _blocks.clear()
    _blocks[block] = headers.copy()
    return headers


def _keep_alive(version: bytes, headers: dict[str, str]) -> bool:
    tokens = headers.get("connection")
    if version == b"HTTP/1.1":
        return tokens is None or "close" not in tokens.lower()
    return tokens is not None and "keep-alive" in tokens.lower()


class _Parser(Generic[M]):
    """The framing common to requests and responses; subclasses read the head."""

    __slots__ = ("_buf", "_length", "_msg", "_parts", "_state")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._state = _HEAD
        self._length = 0  # bytes the current state waits for (body or chunk, with its CRLF)
        self._msg: M | None = None
        self._parts: list[bytes] = []

    @property
    def idle(self) -> bool:
        """True between messages with nothing buffered."""
        return self._state == _HEAD and not self._buf

    def _start(self, head: bytes) -> tuple[M, int]:
        """The message of a head (its lines with their CRLF, without the empty line) and how
        its body is framed:
        a length (0: none), _CHUNKED, _EOF (until the connection ends) or _INTERIM (a 1xx
        response, skipped)."""
        raise NotImplementedError

    def feed(self, data: bytes) -> list[M]:
        """The messages that ``data`` completes, in order."""
        if self._buf:
            self._buf += data
            if self._state == _LENGTH and len(self._buf) < self._length:
                return []
            buf = bytes(self._buf)
        else:
            buf = data
        done: list[M] = []
        pos, end = 0, len(buf)
        while pos < end:
            state = self._state
            if state == _HEAD:
                moved = self._head(buf, pos, end, done)
            elif state == _LENGTH:
                moved = -1 if end - pos < self._length else pos + self._length
                if moved > 0:
                    done.append(self._finish(buf[pos:moved]))
            elif state == _UNTIL_EOF:
                self._parts.append(buf[pos:])
                if sum(map(len, self._parts)) > MAX_BODY:
                    raise HttpError(f"body longer than {MAX_BODY} bytes")
                moved = end
            else:
                moved = self._chunked(buf, pos, end, done)
            if moved < 0:
                break
            pos = moved
        if pos < end:
            self._buf = bytearray(buf[pos:])
        elif self._buf:
            self._buf = bytearray()
        return done

    def _head(self, buf: bytes, pos: int, end: int, done: list[M]) -> int:
        """A head, and its body when it is all there; the new position, or -1 to wait."""
        stop = buf.find(b"\r\n\r\n", pos)
        if stop < 0:
            if end - pos > MAX_HEAD:
                raise HttpError(f"head longer than {MAX_HEAD} bytes")
            if buf.find(b"\n\n", pos) >= 0:
                raise HttpError("line endings without CR")
            return -1
        if stop - pos > MAX_HEAD:
            raise HttpError(f"head longer than {MAX_HEAD} bytes")
        msg, length = self._start(buf[pos:stop + 2])
        pos = stop + 4
        if length == _INTERIM:
            return pos
        if length == 0:
            done.append(msg)
            return pos
        if length > 0 and end - pos >= length:  # the usual case: the whole body is here
            msg.body = buf[pos:pos + length]
            done.append(msg)
            return pos + length
        self._msg = msg
        if length > 0:
            self._state, self._length = _LENGTH, length
        else:
            self._state = _CHUNK_SIZE if length == _CHUNKED else _UNTIL_EOF
        return pos

    def _chunked(self, buf: bytes, pos: int, end: int, done: list[M]) -> int:
        """One step of a chunked body; the new position, or -1 to wait for more bytes."""
        state = self._state
        if state == _CHUNK_DATA:
            if end - pos < self._length:
                return -1
            if buf[pos + self._length - 2:pos + self._length] != b"\r\n":
                raise HttpError("chunk not followed by CRLF")
            self._parts.append(buf[pos:pos + self._length - 2])
            self._state = _CHUNK_SIZE
            return pos + self._length
        stop = buf.find(b"\r\n", pos)
        if stop < 0:
            if end - pos > 4096:
                raise HttpError("chunk size or trailer line too long")
            return -1
        line = buf[pos:stop]
        if state == _TRAILER:
            if not line:
                done.append(self._finish(b"".join(self._parts)))
            return stop + 2
        size_text = line.partition(b";")[0].strip(b" \t")
        try:
            if not size_text or size_text.translate(None, b"0123456789abcdefABCDEF"):
                raise ValueError
            size = int(size_text, 16)
        except ValueError:
            raise HttpError(f"bad chunk size {line[:40]!r}") from None
        if size == 0:
            self._state = _TRAILER
        else:
            if sum(map(len, self._parts)) + size > MAX_BODY:
                raise HttpError(f"body longer than {MAX_BODY} bytes")
            self._state, self._length = _CHUNK_DATA, size + 2
        return stop + 2

    def _finish(self, body: bytes) -> M:
        msg = self._msg
        assert msg is not None
        msg.body = body
        self._msg = None
        self._parts = []
        self._state = _HEAD
        return msg

    def _framing(self, headers: dict[str, str], allow_eof: bool) -> int:
        coding = headers.get("transfer-encoding")
        if coding is not None:
            if coding.rpartition(",")[2].strip().lower() == "chunked":
                return _CHUNKED
            if allow_eof:
                return _EOF
            raise HttpError(f"Transfer-Encoding {coding!r} without chunked last")
        length = headers.get("content-length")
        if length is None:
            return _EOF if allow_eof else 0
        if not (length.isdigit() and length.isascii()):
            values = {v.strip() for v in length.split(",")}
            if len(values) != 1 or not _digits(length := values.pop()):
                raise HttpError(f"bad Content-Length {length[:40]!r}")
        size = int(length)
        if size > MAX_BODY:
            raise HttpError(f"body longer than {MAX_BODY} bytes")
        return size


class ResponseParser(_Parser[Response]):
    """Responses from a byte stream (responses to HEAD requests are not supported)."""

    __slots__ = ()

    def _start(self, head: bytes) -> tuple[Response, int]:
        eol = head.find(b"\r\n")
        line = head[:eol]
        start = _status_lines_in.get(line)
        if start is None:
            version, _, rest = line.partition(b" ")
            code, _, reason = rest.partition(b" ")
            if (version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3
                    or not code.isdigit() or b"\n" in reason or b"\r" in reason):
                raise HttpError(f"malformed status line {line[:60]!r}")
            if len(_status_lines_in) >= _CACHED:
                _status_lines_in.clear()
            start = _status_lines_in[line] = (version, int(code), reason.decode("latin-1"))
        version, status, text = start
        headers = _headers(head[eol + 2:])
        response = Response(status, text, headers, b"", _keep_alive(version, headers))
        if status < 200:
            if status == 101:
                raise HttpError("101 Switching Protocols: no upgrade was asked for")
            return response, _INTERIM  # skipped
        if status in _NO_BODY:
            return response, 0
        length = self._framing(headers, allow_eof=True)
        if length == _EOF:
            response.keep_alive = False
        elif "transfer-encoding" in headers and "content-length" in headers:
            response.keep_alive = False  # ambiguous framing: do not reuse the connection
        return response, length

    def feed_eof(self) -> Response | None:
        """The connection ended: the response whose body it ends, None if no response was
        under way; HttpError if one was cut short."""
        if self._state == _UNTIL_EOF:
            return self._finish(b"".join(self._parts))
        if self._state != _HEAD or self._buf:
            raise HttpError("connection closed in the middle of a response")
        return None


class RequestParser(_Parser[Request]):
    """Requests from a byte stream. ``continue_expected`` is True while a request that asked
    for ``100 Continue`` waits for its body."""

    __slots__ = ()

    def _start(self, head: bytes) -> tuple[Request, int]:
        eol = head.find(b"\r\n")
        line = head[:eol]
        start = _request_lines.get(line)
        if start is None:
            start = _request_line(line)
            if len(_request_lines) >= _CACHED:
                _request_lines.clear()
            _request_lines[line] = start
        method, target, version = start
        headers = _headers(head[eol + 2:])
        if version == b"HTTP/1.1" and "host" not in headers:
            raise HttpError("HTTP/1.1 request without Host")
        keep_alive = version == b"HTTP/1.1" and _keep_alive(version, headers)  # 1.0: close
        request = Request(method, target, headers, b"", keep_alive)
        return request, self._framing(headers, allow_eof=False)

    @property
    def continue_expected(self) -> bool:
        msg = self._msg
        return (msg is not None and self._state != _HEAD
                and msg.headers.get("expect", "").lower() == "100-continue")


def _request_line(line: bytes) -> tuple[str, str, bytes]:
    """Method, target (origin form) and version of a request line."""
    parts = line.split(b" ")
    if len(parts) != 3 or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0") or not parts[0] or (
            parts[0].translate(None, _TOKEN)):
        raise HttpError(f"malformed request line {line[:60]!r}")
    method, target, version = parts
    if not target.startswith(b"/"):
        if target != b"*" and not target.startswith((b"http://", b"https://")):
            raise HttpError(f"bad request target {target[:60]!r}")
        if target != b"*":  # absolute form: keep the path and query
            slash = target.find(b"/", target.find(b"//") + 2)
            target = target[slash:] if slash > 0 else b"/"
    try:
        return method.decode("ascii"), target.decode("ascii"), version
    except UnicodeDecodeError:
        raise HttpError("request target is not ASCII") from None
