"""The public notice (``/public/notice``): the level in force and what it means, the latest
public message still in force, and the hotline, in Vietnamese, as a small HTML page (no script,
no outside asset: a Wi-Fi splash page can frame it) and as JSON. Pure: no I/O."""

from __future__ import annotations

import datetime as dt
import html

import msgspec

from dispatcher.domain.cap import MsgType, Published
from dispatcher.domain.model import VN, LevelState
from dispatcher.domain.plan import Plan

#: The newest published messages the notice looks at for the one in force.
MESSAGES = 30
NO_LEVEL = "Chưa công bố cấp độ dịch"
LEVEL_ZERO = "Không có ca mắc trên địa bàn tỉnh"


class NoticeMessage(msgspec.Struct, frozen=True):
    identifier: str
    headline: str
    text: str
    instruction: str
    sent: dt.datetime
    areas: list[str]
    url: str  # the CAP message (path under the site)


class Notice(msgspec.Struct, frozen=True):
    """What the public page says."""

    province: str
    level: int | None  # None: never set
    level_name: str
    meaning: str  # what the level means (its trigger in the plan)
    since: dt.datetime | None  # when the level came into force
    message: NoticeMessage | None  # the latest public message in force
    hotline: str
    updated: dt.datetime  # the newest of the level's and the message's times


def in_force(published: list[Published], now: dt.datetime) -> Published | None:
    """The newest Alert or Update of ``published`` (newest first) that is neither cancelled
    nor expired at ``now``."""
    cancelled = {ref.split(",")[1] for p in published if p.alert.msg_type is MsgType.CANCEL
                 for ref in p.alert.references if ref.count(",") == 2}
    for item in published:
        alert = item.alert
        if alert.msg_type is MsgType.CANCEL or alert.identifier in cancelled:
            continue
        expires = alert.infos[0].expires if alert.infos else None
        if expires is None or expires > now:
            return item
    return None


def notice(plan: Plan, province: str, level: LevelState | None, published: list[Published],
           hotline: str, now: dt.datetime) -> Notice:
    current = in_force(published, now)
    message = None
    if current is not None and current.alert.infos:
        alert, info = current.alert, current.alert.infos[0]
        message = NoticeMessage(
            identifier=alert.identifier, headline=info.headline, text=info.description,
            instruction=info.instruction, sent=alert.sent,
            areas=[a.desc for i in alert.infos for a in i.areas],
            url=f"/public/cap/{alert.identifier}.xml")
    if level is None:
        name, meaning, since = NO_LEVEL, "", None
    elif level.level == 0:
        name, meaning, since = "Cấp độ 0", LEVEL_ZERO, level.since or level.at
    else:
        found = plan.levels.get(level.level)
        name = found.name if found else f"Cấp độ {level.level}"
        meaning, since = (found.trigger if found else ""), level.since or level.at
    times = [t for t in (since, message.sent if message else None) if t is not None]
    return Notice(province=province, level=None if level is None else level.level,
                  level_name=name, meaning=meaning, since=since, message=message,
                  hotline=hotline, updated=max(times, default=dt.datetime(1970, 1, 1,
                                                                          tzinfo=dt.UTC)))


def _time(when: dt.datetime) -> str:
    return when.astimezone(VN).strftime("%H:%M ngày %d/%m/%Y")


STYLE = ("body{font:16px/1.45 system-ui,sans-serif;margin:0;padding:12px;color:#111;"
         "background:#fff}h1{font-size:18px;margin:0 0 8px}.lv{border-left:6px solid #b00;"
         "padding:6px 10px;background:#fff4f4;margin:0 0 12px}.lv b{font-size:20px}"
         "p{margin:6px 0}small{color:#555}a{color:#0645ad}")


def page(found: Notice) -> str:
    """The notice as a small HTML page in Vietnamese."""
    e = html.escape
    parts = ['<!doctype html><html lang="vi"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width,initial-scale=1">',
             f"<title>Thông báo phòng, chống dịch — {e(found.province)}</title>",
             f"<style>{STYLE}</style></head><body>",
             f"<h1>Thông báo phòng, chống dịch — tỉnh {e(found.province)}</h1>",
             f'<div class="lv"><b>{e(found.level_name)}</b>']
    if found.meaning:
        parts.append(f"<p>{e(found.meaning)}</p>")
    if found.since is not None:
        parts.append(f"<small>Áp dụng từ {_time(found.since)}</small>")
    parts.append("</div>")
    message = found.message
    if message is not None:
        parts.append(f"<h2 style=\"font-size:17px\">{e(message.headline)}</h2>")
        parts.append(f"<p>{e(message.text)}</p>")
        if message.instruction:
            parts.append(f"<p><b>Khuyến cáo:</b> {e(message.instruction)}</p>")
        parts.append(f"<small>Cập nhật lúc {_time(message.sent)} · "
                     f'<a href="{e(message.url)}">bản tin CAP</a></small>')
    else:
        parts.append("<p>Hiện không có thông báo mới.</p>")
    if found.hotline:
        tel = "".join(ch for ch in found.hotline if ch.isdigit() or ch == "+")
        parts.append(f'<p>Đường dây nóng: <a href="tel:{e(tel)}"><b>{e(found.hotline)}</b>'
                     "</a></p>")
    parts.append("</body></html>")
    return "\n".join(parts)
