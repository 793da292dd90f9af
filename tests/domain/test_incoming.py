"""Opt-out keywords: case, diacritics, punctuation and spacing ignored; the whole reply or its
first words."""

from __future__ import annotations

import datetime as dt

import pytest

from dispatcher.domain.errors import InputError
from dispatcher.domain.incoming import FOLLOW, OPT_OUT, REPLY, Incoming, Keywords
from dispatcher.domain.model import Channel

KEYWORDS = Keywords(["TU CHOI", "Hủy", "huy dang ky"])


@pytest.mark.parametrize(("text", "keyword"), [
    ("TU CHOI", "TU CHOI"), ("Từ chối", "TU CHOI"), ("  tu   choi!! ", "TU CHOI"),
    ("TỪ CHỐI nhận tin", "TU CHOI"), ("HUY", "HUY"), ("huỷ", "HUY"), ("Hủy.", "HUY"),
    ("Huỷ đăng ký", "HUY DANG KY"), ("hủy, cảm ơn", "HUY"),
    ("toi tu choi", ""), ("TUCHOI", ""), ("Huyền", ""), ("cảm ơn", ""), ("", ""),
    ("Cho hỏi cách hủy", ""),
])
def test_keywords_match_the_reply_or_its_first_words(text: str, keyword: str) -> None:
    assert KEYWORDS.match(text) == keyword


def test_classify_marks_replies_only() -> None:
    at = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    reply = Incoming(Channel.SMS, "84912345678", at, text="Từ chối")
    flagged = KEYWORDS.classify(reply)
    assert (flagged.kind, flagged.keyword, flagged.opt_out) == (OPT_OUT, "TU CHOI", True)
    plain = Incoming(Channel.SMS, "84912345678", at, text="Cảm ơn")
    assert KEYWORDS.classify(plain).kind == REPLY
    follow = Incoming(Channel.ZALO, "u1", at, kind=FOLLOW, text="huy")
    assert KEYWORDS.classify(follow) is follow


def test_a_keyword_without_letters_is_refused_naming_it() -> None:
    with pytest.raises(InputError, match=r"incoming.opt_out_keywords\[1\]"):
        Keywords(["HUY", " !! "])


def test_a_keyword_is_looked_for_in_the_first_part_of_a_long_sms_only() -> None:
    at = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    first = Incoming(Channel.SMS, "84912345678", at, text="Hủy đăng ký nhận tin", part="1/2#7")
    second = Incoming(Channel.SMS, "84912345678", at, text="Hủy nhé", part="2/2#7")
    assert KEYWORDS.classify(first).kind == OPT_OUT
    assert KEYWORDS.classify(second).kind == REPLY
