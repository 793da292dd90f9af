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

import re
import unicodedata

from dispatcher.domain.errors import InputError

# The refused characters as regex character classes that read the same in Python, ECMA-262 and
# Rust (the API's schema carries them: dispatcher.service.api.schemas).
_INVISIBLE = r"\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff"
IN_TEXT = rf"[\u0000-\u0008\u000b\u000c\u000e-\u001f{_INVISIBLE}]"  # line breaks, tabs allowed
IN_LINE = rf"[\u0000-\u001f{_INVISIBLE}]"
BIDI = frozenset(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F,
                           0x061C]))
ZERO_WIDTH = frozenset(map(chr, [0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF]))
_TEXT, _LINE = re.compile(IN_TEXT), re.compile(IN_LINE)


def _kind(char: str) -> str:
    if char in BIDI:
        return "a bidirectional control (the text would read other than it says)"
    if char in ZERO_WIDTH:
        return "a zero-width character (unseen, yet it makes an SMS longer: UCS-2, more parts)"
    return "a control character"


def find(text: str, *, lines: bool) -> tuple[int, str] | None:
    """The first refused character of ``text`` and its position (0-based), or None; with
    ``lines`` line breaks and tabs are allowed."""
    found = (_TEXT if lines else _LINE).search(text)
    return (found.start(), found.group()) if found else None


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
    return _LINE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
