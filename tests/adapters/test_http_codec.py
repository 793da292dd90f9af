"""Loa's HTTP/1.1 codec from bytes: every split of a message, chunked bodies, several messages in
one read, Connection: close, interim responses, and malformed input."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.http.codec import (
    MAX_HEAD,
    HttpError,
    Request,
    RequestParser,
    Response,
    ResponseParser,
    encode_request,
    encode_response,
    request_head,
)

ZNS_BODY = (b'{"phone":"84912345678","template_id":"loa-alert","template_data":{"content":'
            b'"Th\xc3\xb4ng b\xc3\xa1o"},"tracking_id":"w1:84912345678"}')
ANSWER = b'{"error":0,"message":"Success","data":{"msg_id":"a1","sent_time":"1700000000000"}}'


def request_bytes(body: bytes = ZNS_BODY, target: str = "/message/template") -> bytes:
    return encode_request("POST", target, "business.openapi.zalo.me",
                          {"access_token": "tok", "Content-Type": "application/json"}, body)


def feed_split(parser: RequestParser | ResponseParser, data: bytes, at: int) -> list[Any]:
    return [*parser.feed(data[:at]), *parser.feed(data[at:])]


# -- building ------------------------------------------------------------------------------------


def test_request_bytes() -> None:
    assert request_bytes(b"{}") == (
        b"POST /message/template HTTP/1.1\r\nHost: business.openapi.zalo.me\r\n"
        b"access_token: tok\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    assert request_head("GET", "/", "h", {"Host": "other"}) == (
        b"GET / HTTP/1.1\r\nHost: other\r\nContent-Length: ")  # the caller's Host wins


@pytest.mark.parametrize("headers", [
    {"X-A": "1\r\nX-Injected: 1"}, {"X A": "1"}, {"": "1"}, {"X-A": "l\u1ed7i"},
    {"Content-Length": "5"}, {"transfer-encoding": "chunked"},
])
def test_request_head_refuses_headers_it_cannot_send(headers: dict[str, str]) -> None:
    with pytest.raises(HttpError):
        request_head("POST", "/", "h", headers)


def test_request_head_refuses_a_target_with_spaces() -> None:
    with pytest.raises(HttpError):
        request_head("POST", "/a b", "h", {})


def test_response_bytes() -> None:
    assert encode_response(200, b"{}") == (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    closing = encode_response(503, b"x", "text/plain", keep_alive=False, headers={"Allow": "GET"})
    assert closing == (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                       b"Allow: GET\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx")


# -- responses -----------------------------------------------------------------------------------


def test_response_split_at_every_byte() -> None:
    data = encode_response(200, ANSWER)
    for at in range(len(data) + 1):
        parser = ResponseParser()
        got = feed_split(parser, data, at)
        assert len(got) == 1, at
        response = got[0]
        assert isinstance(response, Response)
        assert (response.status, response.body, response.keep_alive) == (200, ANSWER, True)
        assert response.headers["content-type"] == "application/json"
        assert parser.idle


def test_response_fed_one_byte_at_a_time() -> None:
    data = encode_response(200, ANSWER) * 2
    parser = ResponseParser()
    got = [r for i in range(len(data)) for r in parser.feed(data[i:i + 1])]
    assert [r.body for r in got] == [ANSWER, ANSWER]


CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n"
           b"\r\n7\r\n{\"error\r\n18;ext=\"1\"\r\n\":0,\"message\":\"Success\"}\r\n0\r\n"
           b"X-Trailer: yes\r\n\r\n")


def test_chunked_response_split_at_every_byte() -> None:
    for at in range(len(CHUNKED) + 1):
        parser = ResponseParser()
        got = feed_split(parser, CHUNKED, at)
        assert [r.body for r in got] == [b'{"error":0,"message":"Success"}'], at
        assert parser.idle


def test_chunked_split_at_every_pair_of_points() -> None:
    data = CHUNKED + encode_response(200, b"next")
    for a in range(0, len(data), 3):
        for b in range(a, len(data), 5):
            parser = ResponseParser()
            got = [*parser.feed(data[:a]), *parser.feed(data[a:b]), *parser.feed(data[b:])]
            assert [r.body for r in got] == [b'{"error":0,"message":"Success"}', b"next"]


def test_several_responses_in_one_read_stay_in_order() -> None:
    data = (encode_response(200, b"first") + CHUNKED + encode_response(404, b"")
            + encode_response(500, b"last", keep_alive=False))
    for at in (0, 10, len(data) // 2, len(data)):
        got = feed_split(ResponseParser(), data, at)
        assert [(r.status, r.body) for r in got] == [
            (200, b"first"), (200, b'{"error":0,"message":"Success"}'), (404, b""),
            (500, b"last")]
        assert [r.keep_alive for r in got] == [True, True, True, False]


def test_connection_close_and_http_1_0() -> None:
    parser = ResponseParser()
    close = parser.feed(b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n")
    assert not close[0].keep_alive
    old = parser.feed(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert not old[0].keep_alive
    kept = parser.feed(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
    assert kept[0].keep_alive


def test_body_until_the_connection_ends() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello ") == []
    assert parser.feed(b"world") == []
    response = parser.feed_eof()
    assert response is not None and response.body == b"hello world"
    assert not response.keep_alive
    assert ResponseParser().feed_eof() is None


def test_a_response_cut_short_is_an_error_at_eof() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
    with pytest.raises(HttpError, match="middle of a response"):
        parser.feed_eof()


def test_interim_responses_are_skipped_and_101_refused() -> None:
    data = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
            + encode_response(200, b"ok"))
    assert [(r.status, r.body) for r in ResponseParser().feed(data)] == [(200, b"ok")]
    with pytest.raises(HttpError, match="101"):
        ResponseParser().feed(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n")


def test_no_body_for_204_and_304() -> None:
    data = (b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n"
            b"\r\n" + encode_response(200, b"x"))
    assert [(r.status, r.body) for r in ResponseParser().feed(data)] == [
        (204, b""), (304, b""), (200, b"x")]


def test_repeated_headers_are_joined_and_names_lower_cased() -> None:
    got = ResponseParser().feed(
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\nx-a:2  \r\nContent-Length: 0\r\n\r\n")
    assert got[0].headers == {"x-a": "1, 2", "content-length": "0"}


def test_same_content_length_twice_is_accepted() -> None:
    got = ResponseParser().feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok")
    assert got[0].body == b"ok"


@pytest.mark.parametrize("data", [
    b"HTTP/1.1 2000 OK\r\n\r\n",
    b"HTTP/2 200 OK\r\n\r\n",
    b"ICY 200 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-A: 1\nX-B: 2\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
    b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    b"HTTP/1.1 200 OK\r\n" + b"X-A: " + b"a" * MAX_HEAD,
])
def test_malformed_responses_raise_http_error(data: bytes) -> None:
    with pytest.raises(HttpError):
        ResponseParser().feed(data)


def test_malformed_bytes_split_anywhere_raise_http_error() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nBad Header\r\n\r\nhello"
    for at in range(len(data) + 1):
        parser = ResponseParser()
        with pytest.raises(HttpError):
            feed_split(parser, data, at)


# -- requests ------------------------------------------------------------------------------------


def test_request_split_at_every_byte() -> None:
    data = request_bytes(target="/message/template?lang=vi&x=%C3%A1")
    for at in range(len(data) + 1):
        got = feed_split(RequestParser(), data, at)
        assert len(got) == 1, at
        request = got[0]
        assert isinstance(request, Request)
        assert (request.method, request.path, request.body) == (
            "POST", "/message/template", ZNS_BODY)
        assert request.query == {"lang": "vi", "x": "á"}
        assert request.headers["access_token"] == "tok" and request.keep_alive


def test_pipelined_requests_and_a_chunked_request_body() -> None:
    chunked = (b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n0\r\n\r\n")
    closing = b"GET /b%20c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    data = request_bytes(b"one") + chunked + closing
    for at in range(len(data) + 1):
        got = feed_split(RequestParser(), data, at)
        assert [(r.path, r.body, r.keep_alive) for r in got] == [
            ("/message/template", b"one", True), ("/a", b"abc", True), ("/b c", b"", False)]


def test_request_forms_and_targets() -> None:
    form = (b"POST http://oauth.zaloapp.com/v4/oa/access_token?x=1 HTTP/1.1\r\nHost: h\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 27\r\n\r\n"
            b"app_id=a&refresh_token=r%2B")
    request = RequestParser().feed(form)[0]
    assert request.path == "/v4/oa/access_token" and request.query == {"x": "1"}
    assert request.form() == {"app_id": "a", "refresh_token": "r+"}
    old = RequestParser().feed(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")[0]
    assert not old.keep_alive  # HTTP/1.0: the server closes after its answer


def test_a_request_that_expects_100_continue() -> None:
    parser = RequestParser()
    head = b"POST /a HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
    assert parser.feed(head) == [] and parser.continue_expected
    assert parser.feed(b"abc")[0].body == b"abc" and not parser.continue_expected


@pytest.mark.parametrize("data", [
    b"POST /a HTTP/1.1\r\n\r\n",  # no Host
    b"POST /a HTTP/1.1 extra\r\nHost: h\r\n\r\n",
    b"POST a HTTP/1.1\r\nHost: h\r\n\r\n",
    b"P(ST /a HTTP/1.1\r\nHost: h\r\n\r\n",
    b"POST /a HTTP/3\r\nHost: h\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n",
    b"POST /\xff HTTP/1.1\r\nHost: h\r\n\r\n",
    b"\r\n\r\n",
])
def test_malformed_requests_raise_http_error(data: bytes) -> None:
    with pytest.raises(HttpError):
        RequestParser().feed(data)


def test_trailers_are_read_and_dropped_split_anywhere() -> None:
    data = (b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n"
            b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
    for at in range(len(data) + 1):
        got = feed_split(RequestParser(), data, at)
        assert [(r.path, r.body, r.keep_alive) for r in got] == [
            ("/a", b"abc", True), ("/b", b"", True)], at


def test_request_framing_by_rfc_9112() -> None:
    both = (b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\nTransfer-Encoding: chunked"
            b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    request = RequestParser().feed(both)[0]
    assert request.body == b"abc" and not request.keep_alive  # answered, then closed
    statuses = {}
    for coding in (b"gzip, chunked", b"chunked, chunked", b"chunked, gzip", b"gzip"):
        with pytest.raises(HttpError) as caught:
            RequestParser().feed(b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: " + coding
                                 + b"\r\n\r\n0\r\n\r\n")
        statuses[coding] = caught.value.status
    assert statuses == {b"gzip, chunked": 501, b"chunked, chunked": 400,
                        b"chunked, gzip": 400, b"gzip": 400}
    with pytest.raises(HttpError) as caught:
        RequestParser().feed(b"POST /a HTTP/1.1\r\nHost: h\r\nX-A: " + b"a" * MAX_HEAD)
    assert caught.value.status == 431
