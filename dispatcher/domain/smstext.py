"""SMS text encoding and segmentation, sans I/O.

Decides whether a message text travels as GSM 03.38 7-bit (data_coding 0) or UCS-2 (data_coding
8), counts its cost in septets or UTF-16 code units, splits long texts into concatenated parts
(3GPP TS 23.040 §9.2.3.24.1 and .8) and builds the SMPP ``short_message`` payload of each part.
A part boundary never falls inside a GSM-7 escape sequence or a surrogate pair, and never
separates a base character from its combining marks unless that cluster alone exceeds a part.

Vietnamese text needs UCS-2 (70 characters per SMS); :func:`strip_diacritics` turns it into
GSM-7 (160 characters per SMS) when the plan allows unaccented text.
"""

from __future__ import annotations

import enum
import unicodedata

import msgspec

from dispatcher.domain.errors import TextError

__all__ = [
    "GSM7_BASIC", "GSM7_EXTENSION", "Encoding", "Segmented", "concat_udh", "encode_parts",
    "gsm7_decode", "gsm7_encode", "gsm7_pack", "gsm7_unpack", "is_gsm7", "normalize",
    "parse_concat_udh", "segment", "strip_diacritics", "ucs2_decode", "ucs2_encode", "units",
]  # fmt: skip

GSM7_BASIC: str = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
GSM7_EXTENSION: dict[str, int] = {
    "\x0c": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F,
    "[": 0x3C, "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65,
}  # fmt: skip

_ESC = 0x1B
_EXT = frozenset(GSM7_EXTENSION)
# The escape itself is not a character of the alphabet: it cannot be sent on its own.
_GSM = frozenset(GSM7_BASIC[:_ESC] + GSM7_BASIC[_ESC + 1 :]) | _EXT
_ENCODE: dict[int, str] = {ord(c): chr(i) for i, c in enumerate(GSM7_BASIC) if i != _ESC}
_ENCODE.update({ord(c): f"\x1b{chr(v)}" for c, v in GSM7_EXTENSION.items()})
_DECODE: dict[int, str] = dict(enumerate(GSM7_BASIC))
_DECODE_EXT: dict[int, str] = {v: c for c, v in GSM7_EXTENSION.items()}

_SINGLE_GSM7, _SINGLE_UCS2 = 160, 70
# Blocks without combining marks that cover NFC Vietnamese: segment() skips the mark scan.
_NO_MARKS = frozenset(
    map(chr, [*range(0x300), *range(0x370, 0x483), *range(0x1E00, 0x1F00), *range(0x2000, 0x2070)])
)


class Encoding(enum.StrEnum):
    """How the text of an SMS is encoded."""

    GSM7 = "gsm7"
    UCS2 = "ucs2"


class Segmented(msgspec.Struct, frozen=True):
    """A normalized message text cut into the parts of a (possibly concatenated) SMS."""

    text: str
    encoding: Encoding
    parts: list[str]
    units: int
    ref16: bool = False

    @property
    def summary(self) -> str:
        """What the text costs, for messages: ``4 parts (UCS-2, 245 characters)``."""
        n, chars = len(self.parts), len(self.text)
        name = "GSM-7" if self.encoding == Encoding.GSM7 else "UCS-2"
        return (f"{n} {'part' if n == 1 else 'parts'} ({name}, {chars} "
                f"{'character' if chars == 1 else 'characters'})")

    @property
    def data_coding(self) -> int:
        """The SMPP ``data_coding`` value: 0 (SMSC default, GSM-7) or 8 (UCS-2)."""
        return 0 if self.encoding == Encoding.GSM7 else 8


def normalize(text: str) -> str:
    """Return ``text`` in Unicode NFC (composed) form, the shortest form of Vietnamese text."""
    return unicodedata.normalize("NFC", text)


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` is in the GSM-7 basic or extension table."""
    return _GSM.issuperset(text)


def units(text: str, encoding: Encoding) -> int:
    """Cost of ``text``: septets for GSM-7 (extension characters count 2), UTF-16 code units
    for UCS-2 (characters outside the BMP count 2). ValueError if GSM-7 cannot encode it."""
    if encoding == Encoding.GSM7:
        if not _GSM.issuperset(text):
            raise ValueError("text is not in the GSM-7 alphabet")
        return _gsm7_units(text)
    return len(text.encode("utf-16-le", "surrogatepass")) >> 1


def _gsm7_units(text: str) -> int:
    if _EXT.isdisjoint(text):
        return len(text)
    return len(text) + sum(map(text.count, _EXT.intersection(text)))


class _StripTable(dict[int, int | str | None]):
    """str.translate table: fixed replacements, combining marks deleted, the rest kept."""

    def __missing__(self, key: int) -> int | None:
        value = None if unicodedata.combining(chr(key)) else key
        if len(self) < 8192:  # bounded cache of verdicts
            self[key] = value
        return value


_STRIP = _StripTable(
    {ord(c): r for chars, r in (
        ("đ", "d"), ("Đ", "D"), ("Ð", "D"), ("“”„", '"'), ("‘’‚", "'"), ("–—", "-"),
        ("…", "..."), ("\xa0\t", " "),
    ) for c in chars}
)  # fmt: skip


def strip_diacritics(text: str) -> str:
    """Remove Vietnamese (and other) diacritics and map typographic punctuation to GSM-7.

    đ/Đ (and the look-alike Ð) become d/D and every combining mark is dropped after canonical
    decomposition; curly quotes, dashes, the ellipsis, no-break space and tab become their ASCII
    equivalents. Other characters are kept. Idempotent: the decomposed, mark-free intermediate
    is already in NFD and free of mapped characters, so a second pass changes nothing.
    """
    if text.isascii():
        return text.replace("\t", " ")
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).translate(_STRIP))


def segment(
    text: str, *, strip: bool = False, ref16: bool = False, max_parts: int = 255
) -> Segmented:
    """Normalize ``text`` (and strip diacritics if ``strip``), choose the encoding, cut it.

    A text fits one SMS up to 160 septets (GSM-7) or 70 UTF-16 units (UCS-2); longer texts are
    cut greedily into parts of 153/67 (8-bit reference) or 152/66 (16-bit reference).
    Raises TextError if the text is empty or needs more than ``max_parts`` parts.
    """
    if not 1 <= max_parts <= 255:
        raise ValueError(f"max_parts must be 1..255, not {max_parts}")
    body = unicodedata.normalize("NFC", text)
    if strip:
        body = strip_diacritics(body)
    if not body:
        raise TextError("message text is empty")
    doubles: set[str] | frozenset[str]
    marks: set[str] = set()
    if _GSM.issuperset(body):
        encoding, count = Encoding.GSM7, _gsm7_units(body)
        if count <= _SINGLE_GSM7:
            return Segmented(body, encoding, [body], count, ref16)
        limit = 152 if ref16 else 153
        doubles = _EXT.intersection(body)
    else:
        encoding = Encoding.UCS2
        count = len(body.encode("utf-16-le", "surrogatepass")) >> 1
        if count <= _SINGLE_UCS2:
            return Segmented(body, encoding, [body], count, ref16)
        limit = 66 if ref16 else 67
        doubles = {c for c in set(body) if c > "\uffff"} if count != len(body) else set()
        if not _NO_MARKS.issuperset(body):
            marks = {c for c in set(body) if unicodedata.category(c)[0] == "M"}
    if -(-count // limit) > max_parts:
        _too_many(-(-count // limit), max_parts, count, encoding, "at least ")
    if doubles or marks:
        parts = _split(body, limit, doubles, marks)
    else:
        parts = [body[i : i + limit] for i in range(0, len(body), limit)]
    if len(parts) > max_parts:
        _too_many(len(parts), max_parts, count, encoding, "")
    return Segmented(body, encoding, parts, count, ref16)


def _too_many(n: int, max_parts: int, count: int, encoding: Encoding, qualifier: str) -> None:
    unit = "septets" if encoding == Encoding.GSM7 else "UCS-2 units"
    raise TextError(
        f"message text is too long: {count} {unit} need {qualifier}{n} SMS parts,"
        f" more than the limit of {max_parts}"
    )


def _split(text: str, limit: int, doubles: set[str] | frozenset[str], marks: set[str]) -> list[str]:
    """Greedy cut by clusters (a character and its following marks); an oversized cluster is
    cut by code points. Characters in ``doubles`` cost 2 units, all others 1."""
    starts: list[int] = []
    costs: list[int] = []
    for i, ch in enumerate(text):
        cost = 2 if ch in doubles else 1
        if costs and ch in marks:
            costs[-1] += cost
        else:
            starts.append(i)
            costs.append(cost)
    starts.append(len(text))
    parts: list[str] = []
    begin = used = 0
    for k, cost in enumerate(costs):
        if used + cost <= limit:
            used += cost
        elif cost <= limit:
            parts.append(text[begin : starts[k]])
            begin, used = starts[k], cost
        else:
            for i in range(starts[k], starts[k + 1]):
                c = 2 if text[i] in doubles else 1
                if used + c > limit:
                    parts.append(text[begin:i])
                    begin, used = i, 0
                used += c
    parts.append(text[begin:])
    return parts


def gsm7_encode(text: str) -> bytes:
    """Encode as unpacked GSM-7 (one septet per octet, extension characters as 0x1B + code)."""
    if not _GSM.issuperset(text):
        bad = next(c for c in text if c not in _GSM)
        raise ValueError(f"character {bad!r} (U+{ord(bad):04X}) is not in the GSM-7 alphabet")
    return text.translate(_ENCODE).encode("latin-1")


def gsm7_decode(data: bytes) -> str:
    """Decode unpacked GSM-7. An escape before an undefined code decodes as that code's basic
    character (3GPP 23.038 §6.2.1.1); ValueError on octets above 0x7F or a trailing escape."""
    if data and max(data) > 0x7F:
        raise ValueError("GSM-7 septets must be below 0x80")
    out: list[str] = []
    pos, end = 0, len(data)
    while pos < end:
        esc = data.find(_ESC, pos)
        if esc < 0:
            esc = end
        out.append(data[pos:esc].decode("latin-1").translate(_DECODE))
        if esc == end:
            break
        if esc + 1 == end:
            raise ValueError("GSM-7 data ends with a lone escape")
        code = data[esc + 1]
        out.append(_DECODE_EXT.get(code) or (" " if code == _ESC else GSM7_BASIC[code]))
        pos = esc + 2
    return "".join(out)


def gsm7_pack(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack septets into octets, least significant bit first (3GPP 23.038 §6.1.2.1), after
    ``fill_bits`` (0..6) zero padding bits that align the first septet after a UDH."""
    if not 0 <= fill_bits <= 6:
        raise ValueError(f"fill_bits must be 0..6, not {fill_bits}")
    if septets and max(septets) > 0x7F:
        raise ValueError("GSM-7 septets must be below 0x80")
    acc = 0
    for i, septet in enumerate(septets):
        acc |= septet << (7 * i)
    return (acc << fill_bits).to_bytes((fill_bits + 7 * len(septets) + 7) // 8, "little")


def gsm7_unpack(data: bytes, count: int, fill_bits: int = 0) -> bytes:
    """Unpack ``count`` septets from packed ``data`` after ``fill_bits`` padding bits."""
    if not 0 <= fill_bits <= 6:
        raise ValueError(f"fill_bits must be 0..6, not {fill_bits}")
    if count < 0 or fill_bits + 7 * count > 8 * len(data):
        raise ValueError(f"{len(data)} octets do not hold {count} septets")
    acc = int.from_bytes(data, "little") >> fill_bits
    return bytes((acc >> (7 * i)) & 0x7F for i in range(count))


def ucs2_encode(text: str) -> bytes:
    """Encode as UTF-16-BE, the UCS-2 of SMS (characters outside the BMP as surrogate pairs)."""
    return text.encode("utf-16-be", "surrogatepass")


def ucs2_decode(data: bytes) -> str:
    """Decode UTF-16-BE."""
    return data.decode("utf-16-be", "surrogatepass")


def concat_udh(ref: int, total: int, seq: int, *, ref16: bool = False) -> bytes:
    """User data header holding one concatenation element (8- or 16-bit reference)."""
    max_ref = 0xFFFF if ref16 else 0xFF
    if not 0 <= ref <= max_ref:
        raise ValueError(f"concatenation reference {ref} is out of range 0..{max_ref}")
    if not 1 <= total <= 255:
        raise ValueError(f"part count {total} is out of range 1..255")
    if not 1 <= seq <= total:
        raise ValueError(f"part number {seq} is out of range 1..{total}")
    if ref16:
        return bytes((6, 0x08, 4, ref >> 8, ref & 0xFF, total, seq))
    return bytes((5, 0x00, 3, ref, total, seq))


def encode_parts(seg: Segmented, ref: int) -> list[bytes]:
    """The SMPP ``short_message`` of each part: the encoded text alone for a single part, else
    UDH (esm_class UDHI) + unpacked GSM-7 septets or UTF-16-BE octets."""
    encode = gsm7_encode if seg.encoding == Encoding.GSM7 else ucs2_encode
    total = len(seg.parts)
    if total == 1:
        return [encode(seg.parts[0])]
    return [
        concat_udh(ref, total, seq, ref16=seg.ref16) + encode(part)
        for seq, part in enumerate(seg.parts, 1)
    ]


def parse_concat_udh(payload: bytes) -> tuple[int, int, int, bytes] | None:
    """(ref, total, seq, body) of a payload starting with a UDH holding a concatenation element,
    else None. The last valid element wins (3GPP 23.040 §9.2.3.24); never raises."""
    if not payload or len(payload) < 1 + payload[0]:
        return None
    end = 1 + payload[0]
    pos = 1
    found: tuple[int, int, int] | None = None
    while pos + 2 <= end:
        iei, iel = payload[pos], payload[pos + 1]
        data = payload[pos + 2 : pos + 2 + iel]
        pos += 2 + iel
        if pos > end:
            return None
        if iei == 0x00 and iel == 3:
            ref, total, seq = data[0], data[1], data[2]
        elif iei == 0x08 and iel == 4:
            ref, total, seq = data[0] << 8 | data[1], data[2], data[3]
        else:
            continue
        if 1 <= seq <= total:
            found = (ref, total, seq)
    if pos != end or found is None:
        return None
    return (*found, payload[end:])
