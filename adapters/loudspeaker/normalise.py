"""What a text-to-speech engine reads badly in a Vietnamese bulletin, rewritten as it is said.

espeak-ng's Vietnamese voice reads numbers in Vietnamese by itself, with the dot as the
thousands separator ("1.234" is "một nghìn hai trăm ba mươi tư") and the comma as the decimal
one; what it gets wrong is what people do not read as a quantity, and the abbreviations:

* telephone numbers, read as one large number ("1900 9095": "một nghìn chín trăm, chín nghìn
  không trăm chín mươi lăm"): said digit by digit, a pause between the groups as written;
* "Covid-19" (read as an English word), and the abbreviations of administration and health
  ("UBND" spelt in English): their words, from :data:`ABBREVIATIONS`;
* times and dates ("06:30", "7/12/2021": "sáu, ba mươi", "bảy, mười hai, ..."): "6 giờ 30",
  "ngày 7 tháng 12 năm 2021";
* leading zeros ("02 lần": "không hai lần"), "02-04 lần/ngày" ("2 đến 4 lần mỗi ngày"), and
  marks it names aloud ("*": "ngôi sao").

Each rule is one row of :data:`RULES`, applied in order: telephone numbers before the times and
the dates that their digits could look like. The text sent to the loudspeaker system for its
display stays as written; only the audio is rendered from the rewritten text.
"""

from __future__ import annotations

import re
from collections.abc import Callable

#: The digits as read one by one.
DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")

#: Abbreviations (matched whole, case as written) and what is said instead.
ABBREVIATIONS: dict[str, str] = {
    "UBND": "Ủy ban nhân dân",
    "HĐND": "Hội đồng nhân dân",
    "BCĐ": "Ban Chỉ đạo",
    "BYT": "Bộ Y tế",
    "SYT": "Sở Y tế",
    "TTYT": "Trung tâm Y tế",
    "TYT": "Trạm Y tế",
    "CDC": "xê đê xê",
    "PCR": "pê xê e rờ",
    "SĐT": "số điện thoại",
    "TP": "thành phố",
    "TX": "thị xã",
    "COVID": "Cô vít",
    "Covid": "Cô vít",
    "covid": "cô vít",
}

_ABBREVIATION = re.compile(
    r"(?<!\w)(" + "|".join(sorted(map(re.escape, ABBREVIATIONS), key=len, reverse=True))
    + r")(?:(\.)(?=\s*\w)|(?!\w))")
#: Abbreviations written with a dot before the name they go with ("TP. Hạ Long"): the dot is
#: theirs, not the end of a sentence.
TITLES = frozenset({"TP", "TX"})
# a telephone number: a mobile or landline from 0, or a 1800/1900 service number, in digit
# groups that may be set apart by a space, a dot or a dash
_PHONE = re.compile(r"(?<![\w.,])(?:0\d{2,4}|1[89]00)(?:[ .-]?\d{2,4}){1,3}(?![\w]|[.,]\d)")
_COVID_19 = re.compile(r"(?<!\w)(?:COVID|Covid|covid)[ -]?19(?!\w)")
_DATE = re.compile(r"(?<![\w/])(ngày\s+)?(\d{1,2})/(\d{1,2})(?:/(\d{4}))?(?![\w/])")
_TIME = re.compile(r"(?<![\w:])([01]?\d|2[0-3])(?::|h)([0-5]\d)(?![\w:])")
_HOUR = re.compile(r"(?<![\w:])([01]?\d|2[0-3])h(?!\w)")
_RANGE = re.compile(r"(?<![\w.,])(\d{1,3})\s*-\s*(\d{1,3})(?![\w.,])")
_PER = re.compile(r"/(ngày|tuần|tháng|năm|người|ca)(?!\w)")
_LEADING_ZEROS = re.compile(r"(?<![\w.,])0+(?=[1-9]\d{0,2}(?![\w]|[.,]\d))")
_MARKS = re.compile(r"[*#•_~|<>\[\]{}]+")
_SPACES = re.compile(r"[ \t]+")


def digits(number: str) -> str:
    """A telephone number said digit by digit, a comma between its groups as written (a
    number written in one piece: groups of 4, 3, 3 for 10 digits, 4 and 4 for 8, else 3)."""
    groups = re.findall(r"\d+", number)
    if len(groups) == 1:
        run = groups[0]
        sizes = {10: (4, 3, 3), 8: (4, 4), 11: (4, 3, 4)}.get(len(run))
        if sizes is None:
            sizes = tuple([3] * (len(run) // 3) + ([len(run) % 3] if len(run) % 3 else []))
        groups, start = [], 0
        for size in sizes:
            groups.append(run[start:start + size])
            start += size
    return ", ".join(" ".join(DIGITS[int(d)] for d in group) for group in groups)


def _date(match: re.Match[str]) -> str:
    day, month, year = int(match[2]), int(match[3]), match[4]
    if not (1 <= day <= 31 and 1 <= month <= 12):
        return match[0]
    said = f"ngày {day} tháng {month}"
    return f"{said} năm {int(year)}" if year else said


def _abbreviation(match: re.Match[str]) -> str:
    said = ABBREVIATIONS[match[1]]
    if not match[2]:
        return said
    return f"{said} " if match[1] in TITLES else f"{said}. "


def _time(match: re.Match[str]) -> str:
    hour, minutes = int(match[1]), int(match[2])
    return f"{hour} giờ" if minutes == 0 else f"{hour} giờ {minutes}"


Rule = tuple[str, re.Pattern[str], Callable[[re.Match[str]], str]]

#: (what it is for, pattern, what replaces a match), in the order they apply.
RULES: list[Rule] = [
    ("telephone numbers, digit by digit", _PHONE, lambda m: digits(m[0])),
    ("Covid-19", _COVID_19, lambda m: "Cô vít mười chín"),
    ("dates dd/mm[/yyyy]", _DATE, _date),
    ("times HH:MM, HHhMM", _TIME, _time),
    ("hours HHh", _HOUR, lambda m: f"{int(m[1])} giờ"),
    ("ranges 2-4", _RANGE, lambda m: f"{int(m[1])} đến {int(m[2])}"),
    ("per day, week ...", _PER, lambda m: f" mỗi {m[1]}"),
    ("abbreviations", _ABBREVIATION, _abbreviation),
    ("leading zeros", _LEADING_ZEROS, lambda m: ""),
    ("marks read aloud", _MARKS, lambda m: " "),
]


def normalise(text: str) -> str:
    """``text`` as it is to be said (see the module's documentation)."""
    for _, pattern, replace in RULES:
        text = pattern.sub(replace, text)
    return _SPACES.sub(" ", text).strip()
