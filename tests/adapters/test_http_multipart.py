"""multipart/form-data: a form made for an upload reads back as it was, quoting names as
browsers do; a malformed body is refused saying where."""

from __future__ import annotations

import pytest

from adapters.http.multipart import MultipartError, Part, boundary_of, encode, field, parse


def test_a_form_reads_back_as_it_was_made() -> None:
    audio = b"RIFF\r\n--not-the-boundary\r\n\x00\xff" * 100
    parts = [field("id", "L4-loudspeaker-20211207T0700:dongtrieu"), field("text", "Bản tin"),
             field("zones", "xa-a"), field("zones", "xa-b"), field("empty", ""),
             Part("audio", audio, "bulletin.wav", "audio/wav")]
    content_type, body = encode(parts)
    assert content_type.startswith("multipart/form-data; boundary=loa-")
    assert parse(content_type, body) == parts
    assert parse(content_type, body)[1].text == "Bản tin"


def test_a_boundary_found_in_a_value_is_not_used() -> None:
    content_type, body = encode([field("x", "a--b")], boundary="b")
    assert boundary_of(content_type) != "b"
    assert parse(content_type, body) == [field("x", "a--b")]


def test_names_are_quoted_as_browsers_do() -> None:
    content_type, body = encode([Part('a"b\r\n', b"v", 'f"1.wav', "audio/wav")])
    assert b'name="a%22b%0D%0A"; filename="f%221.wav"' in body
    assert parse(content_type, body)[0].name == "a%22b%0D%0A"


@pytest.mark.parametrize(("content_type", "body", "words"), [
    ("application/json", b"{}", "not multipart/form-data"),
    ("multipart/form-data", b"--x\r\n", "without a boundary"),
    ("multipart/form-data; boundary=x", b"junk", "does not start with the boundary"),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"a\"",
     "no end of its header lines"),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; "
     b"name=\"a\"\r\n\r\nvalue", "no boundary after it"),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Type: text/plain\r\n\r\nv\r\n--x--",
     "no Content-Disposition"),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n\r\nv\r\n"
     b"--x--", "no name"),
])
def test_a_malformed_body_is_refused_saying_where(content_type: str, body: bytes,
                                                   words: str) -> None:
    with pytest.raises(MultipartError, match=words):
        parse(content_type, body)


def test_a_field_that_is_not_utf8_is_refused_by_name() -> None:
    with pytest.raises(MultipartError, match="field 'text' is not UTF-8"):
        _ = Part("text", b"\xff\xfe").text
