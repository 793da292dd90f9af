"""The portal channel without I/O: the error table, the post's title, HTML and slug, the answer
reader and the settings' checks (each fault one line naming its key)."""

from __future__ import annotations

import pytest

from adapters.portal.answer import refusal, retry_after
from adapters.portal.codes import CODES, Outcome, outcome
from adapters.portal.config import PortalConfig, Site, check
from adapters.portal.post import SLUG_MAX, TITLE_MAX, html_text, slug, title
from dispatcher.domain.errors import ConfigError

Out = Outcome


@pytest.mark.parametrize(("status", "code", "expected"), [
    (201, "", Out.SENT),
    (200, "", Out.SENT),
    (401, "rest_cannot_create", Out.CREDENTIALS),
    (401, "incorrect_password", Out.CREDENTIALS),
    (401, "invalid_username", Out.CREDENTIALS),
    (403, "rest_cannot_publish", Out.CREDENTIALS),
    (401, "", Out.CREDENTIALS),  # a signed JSON CMS refusing the signature
    (403, "", Out.CREDENTIALS),
    (403, "a_plugin_s_own", Out.CREDENTIALS),  # the status decides an unknown code's outcome
    (429, "", Out.THROTTLE),
    (500, "", Out.RETRY),
    (503, "", Out.RETRY),
    (500, "db_insert_error", Out.RETRY),
    (408, "", Out.RETRY),
    (409, "", Out.RETRY),
    (400, "rest_invalid_param", Out.FAIL),
    (400, "empty_content", Out.FAIL),
    (400, "", Out.FAIL),  # a CMS refusing the notice without a code
    (422, "", Out.FAIL),
    (404, "rest_no_route", Out.CONFIGURATION),
    (404, "", Out.CONFIGURATION),  # not even WordPress: an HTML "not found"
    (301, "", Out.CONFIGURATION),  # the site moved
    (400, "a_plugin_s_own", Out.UNKNOWN),
    (418, "i_am_a_teapot", Out.UNKNOWN),
    (102, "", Out.UNKNOWN),
])
def test_the_error_table(status: int, code: str, expected: Outcome) -> None:
    assert outcome(status, code) is expected


def test_every_wordpress_code_has_its_message_and_no_code_says_sent() -> None:
    assert all(c.message and c.outcome is not Out.SENT for c in CODES.values())
    assert CODES["rest_cannot_create"].message == ("Sorry, you are not allowed to create posts "
                                                   "as this user.")


def test_a_refusal_quotes_wordpress_in_one_line_without_markup() -> None:
    body = (b'{"code":"invalid_username","message":"<strong>Error:</strong> Unknown username.'
            b'\\n Check again.","data":{"status":401}}')
    refused = refusal("qn-portal", 401, body, {}, now=0.0)
    assert refused.outcome is Out.CREDENTIALS and not refused.down
    assert refused.reason == ("portal qn-portal answered HTTP 401 invalid_username: Error: "
                              "Unknown username. Check again.")
    html = refusal("x", 502, b"<html><body><h1>502 Bad Gateway</h1>" + b" " * 5000
                   + b"</body></html>", {"retry-after": "30"}, now=0.0)
    assert html.outcome is Out.RETRY and html.down and html.retry_after == 30.0
    assert html.reason == "portal x answered HTTP 502: 502 Bad Gateway"
    assert len(refusal("x", 400, b"y" * 5000, {}, now=0.0).reason) < 260


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after("120", now=0.0) == 120.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert retry_after("soon", now=0.0) is None and retry_after("", now=0.0) is None


def test_the_title_is_the_subject_or_the_first_sentence() -> None:
    text = "KHẨN: dịch Covid-19 lây lan rộng tại Quảng Ninh. Chỉ ra ngoài khi thật cần thiết."
    assert title("Cấp độ IV", text) == "Cấp độ IV"
    assert title("", text) == "KHẨN: dịch Covid-19 lây lan rộng tại Quảng Ninh"
    assert title("", "Có ca mắc mới!\nĐeo khẩu trang.") == "Có ca mắc mới!"
    assert title("", "Đường dây nóng 1900 9095") == "Đường dây nóng 1900 9095"
    long = title("", "Người dân " * 30 + "ở nhà.")
    assert len(long) <= TITLE_MAX and long.endswith("…") and " " not in long[-2:]


def test_the_html_escapes_the_text_and_keeps_its_paragraphs() -> None:
    assert html_text("A <b> & B\nC\n\n  D  ") == "<p>A &lt;b&gt; &amp; B<br />\nC</p>\n<p>D</p>"


def test_the_slug_is_stable_distinct_and_fits_wordpress() -> None:
    one = slug("L4-portal-20240305T1030", "qn-portal")
    assert one == slug("L4-portal-20240305T1030", "qn-portal")
    assert one.startswith("loa-l4-portal-20240305t1030-qn-portal-")
    assert one != slug("l4-portal-20240305t1030", "qn-portal")  # differs only in case
    assert one != slug("L4-portal-20240305T1030", "qn.portal")
    assert slug("w", "a") != slug("w-a", "")
    huge = slug("c-20240305-" + "x" * 400, "site")
    assert len(huge) <= SLUG_MAX and set(huge) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")


WP = Site(id="qn-portal", profile="wordpress", url="https://quangninh.gov.vn", user="loa",
          password_env="LOA_PORTAL_QN_PASSWORD")
DVC = Site(id="dichvucong", profile="signed_json", url="https://dvc.example/api/notices",
           secret_env="LOA_PORTAL_DVC_SECRET")


@pytest.mark.parametrize(("sites", "key", "words"), [
    ([WP, Site(id="qn-portal", profile="signed_json", url="https://x.example",
               secret_env="S")], "portal.sites[1].id", "is the id of portal.sites[0] too"),
    ([Site(id="Cổng", profile="wordpress", url="https://x.example", user="u",
           password_env="P")], "portal.sites[0].id", "lower-case letters"),
    ([WP, Site(id="x", profile="drupal", url="https://x.example")], "portal.sites[1].profile",
     "'drupal' is not a profile: wordpress or signed_json"),
    ([Site(id="x", profile="signed_json", url="ftp://x.example", secret_env="S")],
     "portal.sites[0].url", "is not an http:// or https:// URL"),
    ([WP, Site(id="x", profile="signed_json", url="https://x.example")],
     "portal.sites[1].secret_env", "must name the environment variable"),
    ([Site(id="x", profile="wordpress", url="https://x.example", password_env="P")],
     "portal.sites[0].user", "the WordPress user"),
    ([Site(id="x", profile="wordpress", url="https://x.example", user="u")],
     "portal.sites[0].password_env", "must name the environment variable"),
    ([Site(id="x", profile="wordpress", url="https://x.example", user="u", password_env="P",
           status="published")], "portal.sites[0].status", "'published' is not one of"),
    ([Site(id="x", profile="signed_json", url="https://x.example", secret_env="S",
           category=3)], "portal.sites[0].category", "is a key of the wordpress profile"),
    ([Site(id="x", profile="wordpress", url="https://x.example", user="u", password_env="P",
           secret_env="S")], "portal.sites[0].secret_env", "key of the signed_json profile"),
])
def test_a_bad_site_is_one_line_naming_its_key(sites: list[Site], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as error:
        check(PortalConfig(sites=sites), "loa.toml")
    assert error.value.key == key and words in str(error.value)
    assert str(error.value).startswith(f"loa.toml: {key}: ") and "\n" not in str(error.value)


def test_the_numbers_and_the_proxy_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"portal\.concurrency: must be more than 0"):
        check(PortalConfig(concurrency=0))
    with pytest.raises(ConfigError, match=r"portal\.throttle_pause: must be at most"):
        check(PortalConfig(throttle_pause=10, throttle_pause_max=5))
    with pytest.raises(ConfigError) as error:
        check(PortalConfig(proxy="socks5://nope"))
    assert error.value.key == "portal.proxy"
    assert check(PortalConfig(sites=[WP, DVC])).targets()[1].id == "dichvucong"
