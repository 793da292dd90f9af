"""Characters no title or message text may carry: controls and invisible characters.

A control character (C0, DEL, C1: NUL, ESC and the rest) in a title can rewrite an operator's
terminal (``loa campaign list``) or cut a log line; a bidirectional override or isolate
(U+202A–U+202E, U+2066–U+2069, and the marks U+200E, U+200F, U+061C) makes a text read
differently from what it says; a zero-width character (U+200B–U+200D, U+2060, U+FEFF) is unseen
by the person who approves the text, yet one turns a 1-part GSM-7 SMS into a 3-part UCS-2 one.
All are refused, with the field and the character (``U+202E``) named. A message text may break
lines and use tabs (``\\n``, ``\\r``, ``\\t``); a title may not. Pure: no I/O.
"""

from __future__ import annotations

import unicodedata

from dispatcher.errors import InputError

LINE_BREAKS = frozenset("\n\r\t")
BIDI = frozenset(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F,
                           0x061C]))
ZERO_WIDTH = frozenset(map(chr, [0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF]))


def _kind(char: str) -> str:
    if char in BIDI:
        return "a bidirectional control (the text would read other than it says)"
    if char in ZERO_WIDTH:
        return "a zero-width character (unseen, yet it makes an SMS longer: UCS-2, more parts)"
    return "a control character"


def _refused(char: str) -> bool:
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F or char in BIDI or char in ZERO_WIDTH


def find(text: str, *, lines: bool) -> tuple[int, str] | None:
    """The first refused character of ``text`` and its position (0-based), or None; with
    ``lines`` line breaks and tabs are allowed."""
    if text.isprintable():  # the common case: no control, format or separator character
        return None
    for index, char in enumerate(text):
        if _refused(char) and not (lines and char in LINE_BREAKS):
            return index, char
    return None


def describe(found: tuple[int, str]) -> str:
    """``U+202E RIGHT-TO-LEFT OVERRIDE at character 13: ...`` for a refusal."""
    index, char = found
    name = unicodedata.name(char, "")
    return (f"U+{ord(char):04X}{' ' + name if name else ''} at character {index + 1} is "
            f"{_kind(char)}: remove it")


def check(text: str, field: str, *, lines: bool = True) -> None:
    """Raise :class:`InputError` naming ``field`` and the character when ``text`` has one that
    is refused."""
    found = find(text, lines=lines)
    if found is not None:
        raise InputError(describe(found), field=field)


def check_title(text: str, field: str = "title") -> None:
    check(text, field, lines=False)


def visible(text: str) -> str:
    """``text`` for one line of a terminal: every refused character and line break written as
    an escape (``\\x1b``, ``\\u202e``, ``\\n``), so stored text never acts on the terminal."""
    if text.isprintable():
        return text
    return "".join(char.encode("unicode_escape").decode("ascii") if _refused(char) else char
                   for char in text)
