"""CAP 1.2 messages of the public alerts (dispatcher.domain.cap, capalerts), their Atom feed
(capfeed) and the public notice (notice): every message valid against OASIS's schema, read by
an independent CAP library, with its references, times and texts as the province writes them."""

from __future__ import annotations

import datetime as dt

import pytest
from lxml import etree

from dispatcher.domain import cap, capalerts, capfeed, notice
from dispatcher.domain.cap import CapAlert, CapSettings, MsgType, Published
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.model import (
    Campaign,
    Channel,
    Kind,
    LevelState,
    Priority,
    Selector,
    Wave,
)
from dispatcher.domain.plan import Plan, load_plan, plan_from_dict
from dispatcher.domain.province import Province
from tests.capschema import assert_valid, parsed

NS = {"cap": cap.NAMESPACE}
NOW = dt.datetime(2026, 3, 1, 1, 30, 15, 123456, tzinfo=dt.UTC)
SETTINGS = CapSettings(sender="soyte@quangninh.gov.vn", sender_name="Sở Y tế tỉnh Quảng Ninh",
                       base_url="https://canhbao.quangninh.example")
HOSTILE = "Cảnh báo <khẩn> & \"đặc biệt\" ]]> của 'Sở' \x07"


def context(province: Province, settings: CapSettings = SETTINGS) -> capalerts.Context:
    return capalerts.Context(settings, province.name,
                             {d.id: d.name for d in province.districts.values()}, "1900 9095")


def level(n: int, at: dt.datetime) -> LevelState:
    return LevelState(level=n, at=at, since=at)


def chain(plan: Plan, province: Province) -> list[CapAlert]:
    """Level 2, then 4, then 0 (no case), then 1 again."""
    ctx = context(province)
    made: list[CapAlert] = []
    head: CapAlert | None = None
    for hours, n in enumerate((2, 4, 0, 1)):
        at = NOW + dt.timedelta(hours=hours)
        alert = capalerts.level_alert(ctx, plan, level(n, at), head, at, f"Tin cấp độ {n}")
        assert alert is not None
        made.append(alert)
        head = alert
    return made


def text(root: etree._Element, path: str) -> str:
    found = root.findtext(path, namespaces=NS)
    assert found is not None, path
    return str(found)


def test_a_level_chain_is_alert_update_cancel_then_a_new_alert(plan: Plan,
                                                               province: Province) -> None:
    made = chain(plan, province)
    assert [a.msg_type for a in made] == [MsgType.ALERT, MsgType.UPDATE, MsgType.CANCEL,
                                          MsgType.ALERT]
    roots = [assert_valid(cap.to_xml(a)) for a in made]
    assert roots[0].find("cap:references", NS) is None
    # "sender,identifier,sent" of the message before, as CAP 1.2 writes references
    assert text(roots[1], "cap:references") == (
        f"soyte@quangninh.gov.vn,{made[0].identifier},{text(roots[0], 'cap:sent')}")
    assert text(roots[2], "cap:references") == made[1].reference
    assert roots[3].find("cap:references", NS) is None  # after a Cancel: a new alert
    assert text(roots[1], "cap:info/cap:event") == "Dịch COVID-19 — Cấp độ IV"
    assert [text(roots[1], f"cap:info/cap:{k}") for k in ("urgency", "severity", "certainty")
            ] == ["Immediate", "Extreme", "Observed"]
    assert [text(roots[2], f"cap:info/cap:{k}") for k in ("urgency", "severity")] == [
        "Past", "Minor"]
    assert text(roots[0], "cap:info/cap:language") == "vi-VN"
    assert text(roots[0], "cap:info/cap:category") == "Health"
    assert text(roots[0], "cap:scope") == "Public" and text(roots[0], "cap:status") == "Actual"
    assert text(roots[0], "cap:info/cap:area/cap:areaDesc") == "Tỉnh Quảng Ninh"
    assert text(roots[0], "cap:info/cap:contact") == "Đường dây nóng 1900 9095"
    assert text(roots[0], "cap:info/cap:web") == "https://canhbao.quangninh.example/public/notice"
    # the independent parser reads the same
    read = parsed(cap.to_xml(made[1]))[0]
    assert read["cap_message_type"] == "Update" and read["cap_sender"] == SETTINGS.sender
    assert str(read["cap_references"]) == made[0].reference


def test_times_have_the_province_offset_and_whole_seconds(plan: Plan,
                                                          province: Province) -> None:
    root = assert_valid(cap.to_xml(chain(plan, province)[0]))
    assert text(root, "cap:sent") == "2026-03-01T08:30:15+07:00"
    assert text(root, "cap:info/cap:effective") == "2026-03-01T08:30:15+07:00"


def test_level_zero_with_nothing_in_force_says_nothing(plan: Plan, province: Province) -> None:
    ctx = context(province)
    assert capalerts.level_alert(ctx, plan, level(0, NOW), None, NOW, "") is None
    cancelled = chain(plan, province)[2]
    assert capalerts.level_alert(ctx, plan, level(0, NOW), cancelled, NOW, "") is None


def test_the_same_event_makes_the_same_identifier(plan: Plan, province: Province) -> None:
    ctx = context(province)
    one = capalerts.level_alert(ctx, plan, level(3, NOW), None, NOW, "a")
    two = capalerts.level_alert(ctx, plan, level(3, NOW), None, NOW + dt.timedelta(hours=1), "b")
    other = capalerts.level_alert(ctx, plan, level(3, NOW + dt.timedelta(microseconds=1)),
                                  None, NOW, "a")
    assert one is not None and two is not None and other is not None
    assert one.identifier == two.identifier != other.identifier


def test_texts_are_escaped_and_characters_xml_cannot_hold_are_replaced(
        plan: Plan, province: Province) -> None:
    ctx = context(province)
    campaign = Campaign(id="c-20260301-abcd", title=HOSTILE, channels=[Channel.ZALO],
                        texts={Channel.ZALO: HOSTILE}, created_at=NOW, created_by="olga",
                        priority=Priority.URGENT)
    alert = capalerts.campaign_alert(ctx, campaign, HOSTILE, 3, NOW)
    document = cap.to_xml(alert)
    assert "<khẩn>".encode() not in document and "&lt;khẩn&gt; &amp;".encode() in document
    root = assert_valid(document)
    expected = HOSTILE.replace("\x07", "\ufffd")
    assert text(root, "cap:info/cap:description") == expected
    assert text(root, "cap:info/cap:headline") == expected
    assert text(root, "cap:info/cap:urgency") == "Immediate"  # an urgent notice
    assert parsed(document)[0]["cap_info"][0]["cap_description"] == expected


def test_a_campaign_for_some_districts_names_them_and_its_cancel_references_it(
        plan: Plan, province: Province) -> None:
    settings = CapSettings(sender="soyte@quangninh.gov.vn", status=cap.Status.EXERCISE,
                           expires_hours=6, areas={"co-to": cap.AreaConfig(
                               polygons=["20.97,107.71 21.03,107.71 21.03,107.80 20.97,107.71"],
                               geocodes={"VN-GSO": "207"})})
    ctx = context(province, settings)
    campaign = Campaign(id="c-1", title="Bão và dịch", channels=[Channel.SMS],
                        texts={Channel.SMS: "x"}, created_at=NOW, created_by="olga",
                        priority=Priority.URGENT,
                        selector=Selector(districts=["co-to", "van-don"]))
    alert = capalerts.campaign_alert(ctx, campaign, "Ở nhà", None, NOW)
    root = assert_valid(cap.to_xml(alert))
    assert text(root, "cap:status") == "Exercise"
    areas = root.findall("cap:info/cap:area", NS)
    assert [text(a, "cap:areaDesc") for a in areas] == ["Cô Tô, tỉnh Quảng Ninh",
                                                        "Vân Đồn, tỉnh Quảng Ninh"]
    assert text(areas[0], "cap:geocode/cap:value") == "207"
    assert text(areas[0], "cap:polygon").startswith("20.97,107.71")
    assert text(root, "cap:info/cap:expires") == "2026-03-01T14:30:15+07:00"
    withdrawn = capalerts.cancel(ctx, alert, NOW + dt.timedelta(minutes=5))
    cancelled = assert_valid(cap.to_xml(withdrawn))
    assert withdrawn.msg_type is MsgType.CANCEL and withdrawn.thread == alert.thread
    assert text(cancelled, "cap:references") == alert.reference
    assert text(cancelled, "cap:info/cap:urgency") == "Past"
    assert withdrawn.identifier == f"{alert.identifier}.cancel"


def wave(plan: Plan, n: int, at: dt.datetime, **extra: object) -> Wave:
    return Wave(id=f"L{n}-zalo-{at:%Y%m%dT%H%M}", campaign_id=f"plan-L{n}-zalo",
                channel=Channel.ZALO, text=plan.level(n).rules[Channel.ZALO].row.template,
                created_at=at, audience_version="v1", level=n, slot_at=at,
                **extra)  # type: ignore[arg-type]


def test_plan_waves_of_a_row_update_the_one_before_one_info_per_district(
        plan: Plan, province: Province) -> None:
    ctx = context(province)
    first = capalerts.wave_alert(ctx, plan, wave(plan, 4, NOW), None, NOW)
    later = NOW + dt.timedelta(hours=3)
    texts = {"ha-long": "Hạ Long: ở nhà", "co-to": "Cô Tô: ở nhà"}
    second = capalerts.wave_alert(ctx, plan, wave(plan, 4, later, district_texts=texts,
                                                  selector=Selector(districts=list(texts))),
                                  first, later)
    assert first.msg_type is MsgType.ALERT and second.msg_type is MsgType.UPDATE
    assert second.references == [first.reference] and first.thread == second.thread
    root = assert_valid(cap.to_xml(second))
    infos = root.findall("cap:info", NS)
    assert [text(i, "cap:description") for i in infos] == list(texts.values())
    assert [text(i, "cap:area/cap:areaDesc") for i in infos] == [
        "Hạ Long, tỉnh Quảng Ninh", "Cô Tô, tỉnh Quảng Ninh"]
    assert text(infos[0], "cap:headline") == "Hạ Long: ở nhà"
    assert_valid(cap.to_xml(first))


def test_the_feed_is_atom_newest_first_each_entry_the_whole_message(
        plan: Plan, province: Province) -> None:
    made = chain(plan, province)
    published = [Published(i + 1, a) for i, a in enumerate(made)][::-1]
    document = capfeed.feed(published, SETTINGS, base_url="https://canhbao.quangninh.example/",
                            province=province.name)
    root = etree.fromstring(document)
    atom = {"a": capfeed.ATOM}
    entries = root.findall("a:entry", atom)
    assert [e.findtext("a:id", namespaces=atom) for e in entries] == [
        f"https://canhbao.quangninh.example/public/cap/{a.identifier}.xml" for a in made[::-1]]
    assert root.findtext("a:updated", namespaces=atom) == cap.cap_time(made[-1].sent)
    links = entries[0].findall("a:link", atom)
    assert links[0].get("type") == cap.MEDIA_TYPE
    for entry in entries:  # each entry carries a valid CAP message
        alert = entry.find("a:content/cap:alert", {**atom, **NS})
        assert alert is not None
        assert_valid(etree.tostring(alert))
    read = parsed(document)
    assert [r["cap_message_type"] for r in read] == ["Alert", "Cancel", "Update", "Alert"]
    empty = capfeed.feed([], SETTINGS, base_url="http://x", province=province.name)
    assert etree.fromstring(empty).findall("a:entry", atom) == []


def test_the_notice_shows_the_newest_message_in_force(plan: Plan, province: Province) -> None:
    ctx = context(province, CapSettings(sender="s@x.vn", expires_hours=1))
    old = capalerts.campaign_alert(ctx, Campaign(
        id="c-old", title="Cũ", channels=[Channel.SMS], texts={}, created_at=NOW,
        created_by="o", priority=Priority.URGENT), "cũ", 3, NOW)
    new = capalerts.campaign_alert(ctx, Campaign(
        id="c-new", title="Mới <b>", channels=[Channel.SMS], texts={}, created_at=NOW,
        created_by="o", priority=Priority.URGENT), "mới & khẩn", 3, NOW)
    withdrawn = capalerts.cancel(ctx, new, NOW)
    feed = [Published(3, withdrawn), Published(2, new), Published(1, old)]
    found = notice.in_force(feed, NOW + dt.timedelta(minutes=1))
    assert found is not None and found.alert.identifier == old.identifier
    assert notice.in_force(feed, NOW + dt.timedelta(hours=2)) is None  # expired
    page = notice.notice(plan, province.name, level(3, NOW), feed[1:],
                         "1900 9095", NOW + dt.timedelta(minutes=1))
    assert page.level == 3 and page.level_name == "Cấp độ III"
    assert page.message is not None and page.message.text == "mới & khẩn"
    html = notice.page(page)
    assert "Mới &lt;b&gt;" in html and "mới &amp; khẩn" in html and "<script" not in html
    assert 'href="tel:19009095"' in html and len(html.encode()) < 4096
    nothing = notice.notice(plan, province.name, None, [], "", NOW)
    assert nothing.level is None and nothing.message is None
    assert "Hiện không có thông báo mới" in notice.page(nothing)


@pytest.mark.parametrize(("settings", "key"), [
    (CapSettings(sender="so yte@x.vn"), "cap.sender"),
    (CapSettings(sender="a,b"), "cap.sender"),
    (CapSettings(identifier_prefix="a b"), "cap.identifier_prefix"),
    (CapSettings(web="ftp://x"), "cap.web"),
    (CapSettings(base_url="quangninh.gov.vn"), "cap.base_url"),
    (CapSettings(expires_hours=-1), "cap.expires_hours"),
    (CapSettings(feed_entries=0), "cap.feed_entries"),
    (CapSettings(areas={"ha-long": cap.AreaConfig(polygons=["20,107 21,107 20,107"])}),
     "cap.areas.ha-long.polygons[0]"),
])
def test_a_wrong_cap_table_is_refused_naming_the_key(settings: CapSettings, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        cap.check_settings(settings, "loa.toml")
    assert caught.value.key == key and str(caught.value).startswith(f"loa.toml: {key}: ")


def test_areas_name_districts_of_the_province(province: Province) -> None:
    settings = CapSettings(areas={"hoanh-bo": cap.AreaConfig()})
    with pytest.raises(ConfigError, match=r"cap\.areas\.hoanh-bo"):
        cap.check_areas(settings, set(province.districts), "loa.toml")
    cap.check_areas(CapSettings(areas={"province": cap.AreaConfig()}), set(province.districts),
                    "loa.toml")


def test_the_shipped_plan_marks_the_zalo_rows_public_and_no_other() -> None:
    plan = load_plan()
    public = {(n, c) for n, lv in plan.levels.items() for c, r in lv.rules.items()
              if r.row.public}
    assert public == {(n, Channel.ZALO) for n in plan.levels}


def test_a_public_row_for_officials_only_is_refused(plan: Plan) -> None:
    import tomllib  # noqa: PLC0415

    from dispatcher.domain.config import default_path  # noqa: PLC0415
    data = tomllib.loads(default_path("plan.toml").read_text(encoding="utf-8"))
    data["levels"][0]["channels"]["email"]["public"] = True
    assert data["levels"][0]["channels"]["email"]["kinds"] == [Kind.OFFICIAL.value]
    with pytest.raises(ConfigError, match=r"levels\[0\]\.channels\.email\.public"):
        plan_from_dict(data)
