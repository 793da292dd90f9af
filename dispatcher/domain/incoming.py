"""Messages and events from citizens (sans I/O): what is kept of each, and opt-out keywords.

An :class:`Incoming` is one SMS reply (deliver_sm or data_sm that is not a receipt), one Zalo
message or one follow/unfollow. Its ``kind`` says what it is; a reply whose words are an
opt-out keyword is kept with ``kind`` :data:`OPT_OUT` and the keyword.

Keywords match when the reply, with case, diacritics, punctuation and spacing ignored, *is* the
keyword or *starts with* it as whole words: with the keyword ``TU CHOI``, "Từ chối", "tu choi!"
and "TỪ CHỐI nhận tin" opt out; "toi tu choi" and "TUCHOI" do not (a keyword in the middle of
a sentence is too often a question about it).
"""

from __future__ import annotations

import datetime as dt
import re

import msgspec

from dispatcher.domain.errors import InputError
from dispatcher.domain.model import Channel
from dispatcher.domain.smstext import strip_diacritics

REPLY = "reply"  # an SMS or Zalo text with no opt-out keyword
OPT_OUT = "opt_out"  # an SMS or Zalo text whose first words are an opt-out keyword
FOLLOW = "follow"  # a Zalo user followed the OA
UNFOLLOW = "unfollow"  # a Zalo user unfollowed the OA (an opt-out)
UNREADABLE = "unreadable"  # an SMS whose text could not be decoded (kept as hex)
BINARY = "binary"  # an SMS of 8-bit data (kept as hex)
DATA_SM_RECEIPT = "data_sm_receipt"  # a delivery receipt sent as data_sm (counted only)
KINDS = (REPLY, OPT_OUT, FOLLOW, UNFOLLOW, UNREADABLE, BINARY)

TEXT_KEPT = 2000  # characters of a text kept (a concatenated SMS is at most ~1,500)
DEFAULT_KEYWORDS = ("TU CHOI", "HUY", "STOP")
DEFAULT_RETENTION_DAYS = 30


class Incoming(msgspec.Struct, frozen=True, omit_defaults=True):
    """One message or event from a citizen. ``number`` is the sender's number (digits as the
    carrier gave them) or Zalo user id; ``encoding`` how an SMS was written (gsm7, ucs2,
    latin1, binary, ...); ``keyword`` the opt-out keyword matched. ``id`` is given by the store
    (its order: newer ids sort after older)."""

    channel: Channel
    number: str
    at: dt.datetime
    kind: str = REPLY
    text: str = ""
    encoding: str = ""
    keyword: str = ""
    part: str = ""  # of a concatenated SMS: "2/3#7", the second of three, reference 7
    id: str = ""

    @property
    def opt_out(self) -> bool:
        return self.kind in (OPT_OUT, UNFOLLOW)


class IncomingSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``[incoming]`` of the deployment settings."""

    retention_days: float = DEFAULT_RETENTION_DAYS  # how long incoming items are kept
    max_items: int = 1_000_000  # at most this many are kept (a flood costs bounded memory)
    opt_out_keywords: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_KEYWORDS))


class IncomingPage(msgspec.Struct, frozen=True):
    """Newest first; ``cursor`` asks for the next (older) page, empty when there is none."""

    items: list[Incoming]
    cursor: str = ""


_WORDS = re.compile(r"[^\W_]+")


def normalize_words(text: str) -> str:
    """Upper case, no diacritics, words separated by one space, punctuation dropped."""
    return " ".join(_WORDS.findall(strip_diacritics(text).upper()))


class Keywords:
    """Opt-out keywords, matched as the module says."""

    def __init__(self, keywords: list[str] | tuple[str, ...]) -> None:
        normalized: list[str] = []
        for n, keyword in enumerate(keywords):
            words = normalize_words(keyword)
            if not words:
                raise InputError(f"{keyword!r} has no letters or digits",
                                 field=f"incoming.opt_out_keywords[{n}]")
            normalized.append(words)
        # longest first: "HUY DANG KY" is named rather than "HUY"
        self.words = sorted(set(normalized), key=len, reverse=True)

    def match(self, text: str) -> str:
        """The keyword ``text`` opts out with, or ""."""
        if not self.words or not text:
            return ""
        words = normalize_words(text[:200])
        for keyword in self.words:
            if words == keyword or words.startswith(keyword + " "):
                return keyword
        return ""

    def classify(self, item: Incoming) -> Incoming:
        """``item`` as an opt-out if its text is one (only replies are looked at)."""
        if item.kind != REPLY or (item.part and not item.part.startswith("1/")):
            return item  # a keyword starts a message: the first part of a long one
        keyword = self.match(item.text)
        if not keyword:
            return item
        return msgspec.structs.replace(item, kind=OPT_OUT, keyword=keyword)


def clip(text: str) -> str:
    return text if len(text) <= TEXT_KEPT else text[:TEXT_KEPT] + "…"
