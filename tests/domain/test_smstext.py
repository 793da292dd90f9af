"""Tests of dispatcher.domain.smstext: encoding choice, segmentation, GSM-7/UCS-2 codecs and
UDHs."""

from __future__ import annotations

import unicodedata

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.domain.errors import TextError
from dispatcher.domain.smstext import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    Encoding,
    Segmented,
    concat_udh,
    encode_parts,
    gsm7_decode,
    gsm7_encode,
    gsm7_pack,
    gsm7_unpack,
    is_gsm7,
    normalize,
    parse_concat_udh,
    segment,
    strip_diacritics,
    ucs2_decode,
    ucs2_encode,
    units,
)

VI_LOWER = (
    "àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ"
)
VI_ALPHABET = (
    VI_LOWER
    + VI_LOWER.upper()
    + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    + " .,;:!?-()/\n“”–…"
)
GSM_CHARS = GSM7_BASIC.replace("\x1b", "") + "".join(GSM7_EXTENSION)
VI_SENTENCE = "Cảnh báo dịch Covid-19"


def _limits(seg: Segmented) -> tuple[int, int]:
    """(single-part limit, multi-part limit) for a segmentation."""
    if seg.encoding == Encoding.GSM7:
        return 160, 152 if seg.ref16 else 153
    return 70, 66 if seg.ref16 else 67


# --- alphabet and counting ----------------------------------------------------------------


def test_gsm7_tables() -> None:
    assert len(GSM7_BASIC) == 128
    assert GSM7_BASIC[0] == "@"
    assert GSM7_BASIC[0x1B] == "\x1b"
    assert GSM7_BASIC[0x41] == "A"
    assert GSM7_BASIC[0x7F] == "à"
    assert GSM7_EXTENSION["€"] == 0x65
    assert GSM7_EXTENSION["{"] == 0x28
    assert len(GSM7_EXTENSION) == 10


def test_is_gsm7() -> None:
    assert is_gsm7("Hello @ £ ¥ è [x] {y} €")
    assert not is_gsm7(VI_SENTENCE)
    assert not is_gsm7("`")
    assert not is_gsm7("\x1b")  # the escape alone is not a character
    assert is_gsm7("")


def test_units() -> None:
    assert units("Hello", Encoding.GSM7) == 5
    assert units("a€{", Encoding.GSM7) == 5
    assert units("ả😀", Encoding.UCS2) == 3
    with pytest.raises(ValueError):
        units("ả", Encoding.GSM7)


def test_normalize_composes() -> None:
    nfd = unicodedata.normalize("NFD", VI_SENTENCE)
    assert normalize(nfd) == VI_SENTENCE
    assert len(normalize(nfd)) < len(nfd)


# --- segmentation -------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "strip", "summary"), [
    ("á", False, "1 part (UCS-2, 1 character)"),
    ("a" * 161, False, "2 parts (GSM-7, 161 characters)"),
    ("Đeo khẩu trang. " * 16, False, "4 parts (UCS-2, 256 characters)"),
    ("Đeo khẩu trang. " * 16, True, "2 parts (GSM-7, 256 characters)"),
])
def test_summary_names_parts_encoding_and_characters(text: str, strip: bool,
                                                     summary: str) -> None:
    assert segment(text, strip=strip).summary == summary


def test_hello_single_gsm7_part() -> None:
    seg = segment("Hello")
    assert seg.encoding == Encoding.GSM7
    assert str(seg.encoding) == "gsm7"
    assert seg.parts == ["Hello"]
    assert seg.units == 5
    assert seg.data_coding == 0


def test_160_and_161_plain_chars() -> None:
    assert segment("x" * 160).parts == ["x" * 160]
    seg = segment("x" * 161)
    assert [len(p) for p in seg.parts] == [153, 8]
    assert seg.units == 161


def test_ref16_uses_smaller_parts() -> None:
    seg = segment("x" * 161, ref16=True)
    assert [len(p) for p in seg.parts] == [152, 9]
    assert seg.ref16
    seg = segment("ả" * 71, ref16=True)
    assert [len(p) for p in seg.parts] == [66, 5]


def test_extension_chars_count_two_septets() -> None:
    seg = segment("€" * 80)
    assert seg.encoding == Encoding.GSM7
    assert seg.units == 160
    assert len(seg.parts) == 1
    seg = segment("{" * 81)
    assert seg.units == 162
    assert len(seg.parts) == 2
    for part in seg.parts:
        septets = gsm7_encode(part)
        assert len(septets) <= 153
        assert not septets.endswith(b"\x1b")
    assert [len(gsm7_encode(p)) for p in seg.parts] == [152, 10]


def test_escape_sequence_not_split_at_boundary() -> None:
    seg = segment("a" * 152 + "€" + "b" * 10)
    assert seg.parts == ["a" * 152, "€" + "b" * 10]


def test_vietnamese_is_ucs2() -> None:
    seg = segment(VI_SENTENCE)
    assert seg.encoding == Encoding.UCS2
    assert seg.data_coding == 8
    assert seg.parts == [VI_SENTENCE]
    assert seg.units == len(VI_SENTENCE)


def test_70_and_71_vietnamese_chars() -> None:
    assert len(segment("ệ" * 70).parts) == 1
    seg = segment("ệ" * 71)
    assert len(seg.parts) == 2
    assert all(units(p, Encoding.UCS2) <= 67 for p in seg.parts)
    assert "".join(seg.parts) == "ệ" * 71


def test_nfd_input_is_normalized() -> None:
    nfd = unicodedata.normalize("NFD", VI_SENTENCE * 3)
    seg = segment(nfd)
    assert seg.text == VI_SENTENCE * 3
    assert len(seg.text) < len(nfd)
    assert seg.units == 66
    assert len(seg.parts) == 1  # as NFD it would need 2 parts


def test_emoji_at_boundary_not_split() -> None:
    text = "a" * 66 + "😀" + "b" * 10
    seg = segment(text)
    assert seg.encoding == Encoding.UCS2
    assert seg.units == 78
    assert seg.parts == ["a" * 66, "😀" + "b" * 10]


def test_combining_cluster_kept_whole() -> None:
    # q has no precomposed form with these marks, so the cluster survives NFC.
    text = "a" * 66 + "q\u0323\u0301" + "b" * 5
    seg = segment(text)
    assert seg.parts == ["a" * 66, "q\u0323\u0301" + "b" * 5]


def test_oversized_cluster_split_by_code_points() -> None:
    text = "q" + "\u0301" * 100
    seg = segment(text)
    assert "".join(seg.parts) == text
    assert [len(p) for p in seg.parts] == [67, 34]


def test_strip_segment_uses_gsm7() -> None:
    seg = segment("Cảnh báo: “khẩn” – " + "ệ" * 100, strip=True)
    assert seg.encoding == Encoding.GSM7
    assert seg.text == 'Canh bao: "khan" - ' + "e" * 100
    assert len(seg.parts) == 1


@pytest.mark.parametrize("text", ["", unicodedata.normalize("NFD", "")])
def test_empty_text(text: str) -> None:
    with pytest.raises(TextError, match="message text is empty"):
        segment(text)


def test_text_empty_after_strip() -> None:
    assert segment("\u0301").encoding == Encoding.UCS2
    with pytest.raises(TextError, match="empty"):
        segment("\u0301", strip=True)


def test_too_many_parts() -> None:
    with pytest.raises(TextError, match=r"3 SMS parts.*limit of 2"):
        segment("x" * 307, max_parts=2)
    assert len(segment("x" * 306, max_parts=2).parts) == 2
    with pytest.raises(TextError, match=r"256 SMS parts.*limit of 255"):
        segment("x" * (153 * 255 + 1))
    # a lower bound can fit while the real cut does not (escapes at part ends)
    with pytest.raises(TextError, match=r"limit of 2"):
        segment(("a" * 152 + "€") * 2, max_parts=2)
    with pytest.raises(ValueError):
        segment("x", max_parts=0)


def test_segmented_is_a_frozen_struct() -> None:
    seg = segment("Hello")
    with pytest.raises(AttributeError):
        seg.text = "other"  # type: ignore[misc]
    decoded = msgspec.json.decode(msgspec.json.encode(seg), type=Segmented)
    assert decoded == seg
    assert msgspec.json.encode(seg) == (
        b'{"text":"Hello","encoding":"gsm7","parts":["Hello"],"units":5,"ref16":false}'
    )


# --- diacritics ---------------------------------------------------------------------------


def test_strip_vietnamese() -> None:
    assert strip_diacritics("Đồng Quảng Ninh, cảnh báo khẩn") == "Dong Quang Ninh, canh bao khan"
    assert strip_diacritics(unicodedata.normalize("NFD", "Thừa Thiên Huế")) == "Thua Thien Hue"
    assert strip_diacritics("ƯỚC ĐỊNH") == "UOC DINH"


def test_strip_typography() -> None:
    assert strip_diacritics("“Khẩn” ‘cấp’ „x‚ – y — z…") == "\"Khan\" 'cap' \"x' - y - z..."
    assert strip_diacritics("a\u00a0b\tc") == "a b c"
    assert strip_diacritics("a\tb") == "a b"


def test_strip_keeps_unmapped_chars() -> None:
    assert strip_diacritics("Ø ß 漢字 😀") == "Ø ß 漢字 😀"


# --- codecs -------------------------------------------------------------------------------


def test_gsm7_encode_decode() -> None:
    assert gsm7_encode("@A€") == b"\x00\x41\x1b\x65"
    assert gsm7_decode(b"\x00\x41\x1b\x65") == "@A€"
    with pytest.raises(ValueError, match="GSM-7"):
        gsm7_encode("ả")
    with pytest.raises(ValueError):
        gsm7_decode(b"\x80")
    with pytest.raises(ValueError):
        gsm7_decode(b"a\x1b")
    assert gsm7_decode(b"\x1b\x41") == "A"  # undefined extension code: basic character


def test_gsm7_pack_known_vector() -> None:
    assert gsm7_pack(gsm7_encode("hellohello")) == bytes.fromhex("E8329BFD4697D9EC37")
    assert gsm7_unpack(bytes.fromhex("E8329BFD4697D9EC37"), 10) == gsm7_encode("hellohello")


def test_gsm7_pack_with_fill_bits() -> None:
    packed = gsm7_pack(b"\x7f", fill_bits=1)
    assert packed == b"\xfe"
    assert gsm7_unpack(packed, 1, fill_bits=1) == b"\x7f"
    with pytest.raises(ValueError):
        gsm7_pack(b"\x80")
    with pytest.raises(ValueError):
        gsm7_pack(b"a", fill_bits=7)
    with pytest.raises(ValueError):
        gsm7_unpack(b"\x00", 2)


def test_ucs2_codec() -> None:
    assert ucs2_encode("Đ😀") == b"\x01\x10\xd8\x3d\xde\x00"
    assert ucs2_decode(b"\x01\x10\xd8\x3d\xde\x00") == "Đ😀"


# --- UDH and payloads ---------------------------------------------------------------------


def test_concat_udh_bytes() -> None:
    assert concat_udh(0x2A, 3, 1) == bytes.fromhex("0500032A0301")
    assert concat_udh(0x1234, 3, 2, ref16=True) == bytes.fromhex("06080412340302")
    for args in [(256, 2, 1), (-1, 2, 1), (1, 0, 1), (1, 2, 3), (1, 2, 0), (1, 256, 1)]:
        with pytest.raises(ValueError):
            concat_udh(*args)
    with pytest.raises(ValueError):
        concat_udh(0x10000, 2, 1, ref16=True)


def test_encode_parts_single() -> None:
    assert encode_parts(segment("Hello"), 7) == [b"Hello"]
    assert encode_parts(segment("Đ"), 7) == [b"\x01\x10"]


def test_encode_parts_two_part_ucs2() -> None:
    seg = segment("ệ" * 100)
    payloads = encode_parts(seg, 0x42)
    assert len(payloads) == 2
    for seq, (payload, part) in enumerate(zip(payloads, seg.parts, strict=True), 1):
        assert payload.startswith(concat_udh(0x42, 2, seq))
        assert len(payload) <= 140
        parsed = parse_concat_udh(payload)
        assert parsed is not None
        ref, total, got_seq, body = parsed
        assert (ref, total, got_seq) == (0x42, 2, seq)
        assert ucs2_decode(body) == part
    assert len(payloads[0]) == 140


def test_encode_parts_gsm7_ref16() -> None:
    seg = segment("x" * 200 + "€", ref16=True)
    payloads = encode_parts(seg, 0xBEEF)
    parsed = [parse_concat_udh(p) for p in payloads]
    assert [x[:3] if x else None for x in parsed] == [(0xBEEF, 2, 1), (0xBEEF, 2, 2)]
    assert gsm7_decode(payloads[1][7:]) == seg.parts[1]


def test_parse_concat_udh_rejects() -> None:
    assert parse_concat_udh(b"") is None
    assert parse_concat_udh(b"Hello") is None  # UDHL 0x48 beyond the payload
    assert parse_concat_udh(bytes.fromhex("050003")) is None  # truncated
    assert parse_concat_udh(bytes.fromhex("0500032A0300")) is None  # seq 0
    assert parse_concat_udh(bytes.fromhex("0500032A0304")) is None  # seq > total
    assert parse_concat_udh(bytes.fromhex("03240100")) is None  # other IE only
    # another IE before the concatenation element is skipped
    assert parse_concat_udh(bytes.fromhex("08240100000303020141")) == (3, 2, 1, b"\x41")


# --- properties ---------------------------------------------------------------------------


def _check_fits(seg: Segmented) -> None:
    single, limit = _limits(seg)
    cost = [units(p, seg.encoding) for p in seg.parts]
    assert sum(cost) == seg.units
    if len(seg.parts) == 1:
        assert seg.units <= single
        return
    assert seg.units > single
    for payload in encode_parts(seg, 1):
        udh_len = payload[0] + 1
        body = payload[udh_len:]
        if seg.encoding == Encoding.GSM7:
            fill = (7 - udh_len * 8 % 7) % 7
            assert udh_len * 8 + fill + len(body) * 7 <= 1120
            assert len(gsm7_pack(body, fill)) + udh_len <= 140
        else:
            assert udh_len + len(body) <= 140
    assert all(c <= limit for c in cost)


@settings(max_examples=300)
@given(st.text(max_size=2000), st.booleans())
def test_segment_parts_concatenate(text: str, ref16: bool) -> None:
    if not normalize(text):
        return
    seg = segment(text, ref16=ref16)
    assert seg.text == normalize(text)
    assert "".join(seg.parts) == seg.text
    assert all(seg.parts)
    assert seg.encoding == (Encoding.GSM7 if is_gsm7(seg.text) else Encoding.UCS2)
    _check_fits(seg)


@settings(max_examples=200)
@given(st.text(alphabet=GSM_CHARS, min_size=1, max_size=1200), st.booleans())
def test_gsm7_segment_greedy(text: str, ref16: bool) -> None:
    seg = segment(text, ref16=ref16)
    assert seg.encoding == Encoding.GSM7
    _check_fits(seg)
    _, limit = _limits(seg)
    # greedy: the next part's first character would not have fitted
    for part, nxt in zip(seg.parts, seg.parts[1:], strict=False):
        assert units(part, Encoding.GSM7) + units(nxt[0], Encoding.GSM7) > limit


@settings(max_examples=200)
@given(st.text(alphabet=VI_ALPHABET + "😀\u0301\u0323", min_size=1, max_size=600))
def test_ucs2_segment_fits(text: str) -> None:
    seg = segment(text)
    assert "".join(seg.parts) == seg.text
    _check_fits(seg)


@settings(max_examples=500)
@given(st.text())
def test_strip_idempotent(text: str) -> None:
    once = strip_diacritics(text)
    assert strip_diacritics(once) == once


# Characters whose decomposition / recomposition interacts with mark removal: combining marks,
# Hangul jamo (compose without marks), Indic two-part vowels, singletons (Ohm, Angstrom sign,
# composition exclusions), and the replacement characters themselves.
TRICKY = (
    VI_ALPHABET
    + "".join(map(chr, range(0x300, 0x370)))
    + "".join(map(chr, [*range(0x1100, 0x1113), *range(0x1161, 0x1176), *range(0x11A8, 0x11C3)]))
    + "\u09be\u09c7\u09cb\u09d7\u0b3e\u0b47\u0b56\u0b57\u0b4c\u0958\u0915\u093c"
    + "\u2126\u212b\u0344\u0f73\u1e9b\u01c5\u00a0\t‘’‚„—gaÅ가각"
)


@settings(max_examples=1000)
@given(st.text(alphabet=TRICKY, max_size=12))
def test_strip_idempotent_tricky(text: str) -> None:
    once = strip_diacritics(text)
    assert strip_diacritics(once) == once
    assert not any(unicodedata.combining(c) for c in once)


@given(st.text(alphabet=VI_ALPHABET, min_size=1))
def test_strip_vietnamese_is_gsm7(text: str) -> None:
    stripped = strip_diacritics(text)
    assert is_gsm7(stripped)
    assert stripped.isascii()
    seg = segment(text, strip=True)
    assert seg.encoding == "gsm7"
    assert seg.text == stripped


@given(st.text(alphabet=GSM_CHARS))
def test_gsm7_round_trip(text: str) -> None:
    septets = gsm7_encode(text)
    assert len(septets) == units(text, Encoding.GSM7)
    assert gsm7_decode(septets) == text


@given(st.binary(max_size=300).map(lambda b: bytes(x & 0x7F for x in b)), st.integers(0, 6))
def test_pack_round_trip(septets: bytes, fill: int) -> None:
    packed = gsm7_pack(septets, fill)
    assert len(packed) == (fill + 7 * len(septets) + 7) // 8
    assert gsm7_unpack(packed, len(septets), fill) == septets


@given(st.text())
def test_ucs2_round_trip(text: str) -> None:
    assert ucs2_decode(ucs2_encode(text)) == text
    assert len(ucs2_encode(text)) == 2 * units(text, Encoding.UCS2)


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_parse_concat_udh_never_raises(payload: bytes) -> None:
    parsed = parse_concat_udh(payload)
    if parsed is not None:
        _ref, total, seq, body = parsed
        assert 1 <= seq <= total
        assert payload.endswith(body)


@given(
    st.integers(0, 0xFFFF), st.integers(1, 255), st.data(), st.booleans(), st.binary(max_size=20)
)
def test_udh_round_trip(
    ref: int, total: int, data: st.DataObject, ref16: bool, body: bytes
) -> None:
    seq = data.draw(st.integers(1, total))
    ref = ref if ref16 else ref & 0xFF
    assert parse_concat_udh(concat_udh(ref, total, seq, ref16=ref16) + body) == (
        ref,
        total,
        seq,
        body,
    )
