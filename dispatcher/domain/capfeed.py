"""The Atom 1.0 feed of the public alerts (``/public/cap/feed.xml``), as public-alert
aggregators take CAP: one entry per message, newest first, each linking to the message
(``application/cap+xml``) and carrying it whole in its ``content``. Pure: no I/O."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

from dispatcher.domain.cap import (
    MEDIA_TYPE,
    CapSettings,
    Published,
    cap_time,
    element,
    xml_text,
)

ATOM = "http://www.w3.org/2005/Atom"
MEDIA = "application/atom+xml"
FEED_PATH = "/public/cap/feed.xml"
_EMAIL = re.compile(r"^\w+@(\w+\.)+\w+$")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def message_path(identifier: str) -> str:
    return f"/public/cap/{identifier}.xml"


def _add(parent: ET.Element, name: str, text: str = "", **attrs: str) -> ET.Element:
    child = ET.SubElement(parent, name, attrs)  # the document's default namespace: Atom
    if text:
        child.text = xml_text(text)
    return child


def updated(published: list[Published]) -> dt.datetime:
    """When the feed last changed: its newest message's time (the epoch when it has none)."""
    return max((p.alert.sent for p in published), default=EPOCH)


def feed(published: list[Published], settings: CapSettings, *, base_url: str,
         province: str) -> bytes:
    """The feed of ``published`` (newest first); links are absolute, under ``base_url``."""
    base = base_url.rstrip("/")
    root = ET.Element("feed", xmlns=ATOM)
    _add(root, "id", base + FEED_PATH)
    _add(root, "title", f"Cảnh báo công cộng phòng, chống dịch — tỉnh {province}")
    _add(root, "updated", cap_time(updated(published)))
    author = _add(root, "author")
    _add(author, "name", settings.sender_name or settings.sender)
    if _EMAIL.match(settings.sender):
        _add(author, "email", settings.sender)
    _add(root, "link", rel="self", type=MEDIA, href=base + FEED_PATH)
    if settings.web_url():
        _add(root, "link", rel="alternate", type="text/html", href=settings.web_url())
    for item in published:
        alert = item.alert
        info = alert.infos[0] if alert.infos else None
        url = base + message_path(alert.identifier)
        entry = _add(root, "entry")
        _add(entry, "id", url)
        title = info.headline if info and info.headline else (info.event if info else "")
        _add(entry, "title", f"{alert.msg_type.value}: {title}" if title else
             alert.msg_type.value)
        _add(entry, "updated", cap_time(alert.sent))
        _add(entry, "published", cap_time(alert.sent))
        if info is not None and info.description:
            _add(entry, "summary", info.description)
        _add(entry, "category", term=alert.msg_type.value)
        _add(entry, "link", rel="alternate", type=MEDIA_TYPE, href=url)
        content = _add(entry, "content", type=MEDIA_TYPE)
        content.append(element(alert))
    written: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return written
