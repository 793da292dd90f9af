"""HTTP/1.1 from and to bytes, sans I/O (no sockets, no asyncio).

* :func:`request_head`, :func:`encode_request` and :func:`encode_response` build messages
  (:mod:`adapters.http.message`).
* :class:`ResponseParser` and :class:`RequestParser` are fed bytes as they arrive and answer the
  messages completed by them, in order (several when a read holds several). Bodies are framed
  by ``Content-Length`` or ``Transfer-Encoding: chunked``; a response with neither ends when the
  connection does (:meth:`ResponseParser.feed_eof`). Interim responses (1xx) are skipped, except
  101 which this codec refuses. Malformed input raises :class:`HttpError`, never anything else.

Requests follow RFC 9112 strictly, since a server must not read one request's bytes as another's:
``chunked`` is the only transfer coding (another is refused with status 501; ``chunked`` not last,
or twice, 400; header lines repeating ``Transfer-Encoding`` are one list); ``Transfer-Encoding``
on an HTTP/1.0 request is 400; a request with both ``Transfer-Encoding`` and ``Content-Length``
is framed by the coding and its connection ends after the answer (``keep_alive`` False); more
than one ``Host`` is 400. The head is bounded by ``MAX_HEAD`` bytes and the trailers by
``MAX_TRAILERS`` (status 431); trailer lines must be header lines and are dropped.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from adapters.http.message import (
    MAX_BODY,
    MAX_HEAD,
    MAX_TRAILERS,
    HttpError,
    Request,
    Response,
    ascii_digits,
    encode_request,
    encode_response,
    is_keep_alive,
    parse_headers,
    parse_request_line,
    parse_status_line,
    request_head,
)

__all__ = ["MAX_BODY", "MAX_HEAD", "MAX_TRAILERS", "HttpError", "Request", "RequestParser",
           "Response", "ResponseParser", "encode_request", "encode_response", "request_head"]

_NO_BODY = frozenset({204, 304})
M = TypeVar("M", Request, Response)

_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _TRAILER, _UNTIL_EOF = range(6)
_CHUNKED, _EOF, _INTERIM = -1, -2, -3  # framings other than a length


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
                raise HttpError(f"head longer than {MAX_HEAD} bytes", 431)
            if buf.find(b"\n\n", pos) >= 0:
                raise HttpError("line endings without CR")
            return -1
        if stop - pos > MAX_HEAD:
            raise HttpError(f"head longer than {MAX_HEAD} bytes", 431)
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
            self._length += stop + 2 - pos  # the trailer section's bytes so far
            if self._length > MAX_TRAILERS:
                raise HttpError(f"trailers longer than {MAX_TRAILERS} bytes", 431)
            parse_headers(buf[pos:stop + 2])  # checked, then dropped
            return stop + 2
        size_text = line.partition(b";")[0].strip(b" \t")
        try:
            if not size_text or size_text.translate(None, b"0123456789abcdefABCDEF"):
                raise ValueError
            size = int(size_text, 16)
        except ValueError:
            raise HttpError(f"bad chunk size {line[:40]!r}") from None
        if size == 0:
            self._state, self._length = _TRAILER, 0
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
            if len(values) != 1 or not ascii_digits(length := values.pop()):
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
        version, status, text = parse_status_line(line)
        headers = parse_headers(head[eol + 2:])
        response = Response(status, text, headers, b"", is_keep_alive(version, headers))
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
        method, target, version = parse_request_line(line)
        headers = parse_headers(head[eol + 2:])
        host = headers.get("host")
        if host is None:
            if version == b"HTTP/1.1":
                raise HttpError("HTTP/1.1 request without Host")
        elif "," in host:
            raise HttpError("more than one Host")
        keep_alive = version == b"HTTP/1.1" and is_keep_alive(version, headers)  # 1.0: close
        coding = headers.get("transfer-encoding")
        if coding is None:
            length = self._framing(headers, allow_eof=False)
        else:
            length = _request_coding(coding, version)
            if "content-length" in headers:
                keep_alive = False  # RFC 9112 §6.1: close after answering
        return Request(method, target, headers, b"", keep_alive), length

    @property
    def continue_expected(self) -> bool:
        msg = self._msg
        return (msg is not None and self._state != _HEAD
                and msg.headers.get("expect", "").lower() == "100-continue")


def _request_coding(coding: str, version: bytes) -> int:
    """The framing of a request's ``Transfer-Encoding`` (RFC 9112 §6.1, §6.3): chunked, once,
    last and alone; HttpError otherwise."""
    if version != b"HTTP/1.1":
        raise HttpError("Transfer-Encoding in an HTTP/1.0 request")
    if coding.lower() == "chunked":
        return _CHUNKED
    codings = [c for c in (c.strip(" \t").lower() for c in coding.split(",")) if c]
    if not codings or codings[-1] != "chunked" or "chunked" in codings[:-1]:
        raise HttpError(f"Transfer-Encoding {coding[:60]!r}: chunked must be last, once")
    if len(codings) > 1:
        raise HttpError(f"Transfer-Encoding {coding[:60]!r}: only chunked is implemented", 501)
    return _CHUNKED
