"""The CAP 1.2 alert a wave makes for a carrier's broadcast centre, and its Cancel.

One wave is one alert (:mod:`dispatcher.domain.cap`), the same for every carrier but for the
carrier's options: its identifier is ``<prefix>.cb.<wave id>``
(:func:`dispatcher.domain.broadcast.identifier`), its ``sent`` the time the wave was made (whole
seconds), so every try of it is the same document and a Cancel made later, in any process,
references it exactly ("sender,identifier,sent"). Its info:

* ``event`` "<[cap] event> — Cấp độ IV" (a campaign's: "— thông báo khẩn" when urgent),
  ``category`` Health, urgency, severity and certainty by the level (:data:`dispatcher.domain.cap.
  LEVELS`; a campaign is rated as level 4 when urgent, level 1 otherwise);
* ``headline`` the text's first sentence, ``description`` the text: what the phones show;
* ``expires`` ``duration_hours`` after ``sent``: the CBC stops repeating it then;
* ``language`` and ``parameter``s by the carrier's options (its repetition period, more
  parameters as the carrier names them);
* ``area``: one per district of the wave (its polygons and geocodes), or the province's; a wave
  whose text names ``{district}`` has one info per district, each with its own words and area.

The Cancel is ``<identifier>.cancel``, msgType Cancel, references the alert, with its first info
(urgency Past). Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from adapters.base import Envelope
from adapters.cellbroadcast.config import Carrier, CellBroadcastConfig
from dispatcher.domain import broadcast, capalerts
from dispatcher.domain.cap import (
    PROVINCE_AREA,
    CapAlert,
    CapArea,
    CapInfo,
    CapSettings,
    MsgType,
    headline_of,
    rating,
    to_xml,
)
from dispatcher.domain.capalerts import Context
from dispatcher.domain.province import Province

ORIGIN = "cell_broadcast"
URGENT_EVENT = "thông báo khẩn"
NOTICE_EVENT = "thông báo"
ROMAN = {0: "0", 1: "I", 2: "II", 3: "III", 4: "IV"}  # the plan's names: "Cấp độ IV"


class Profile:
    """Builds the alerts of ``[cell_broadcast]`` with ``[cap]``'s sender, status and event."""

    def __init__(self, config: CellBroadcastConfig, cap: CapSettings, province: Province) -> None:
        settings = msgspec.structs.replace(
            cap, sender=config.sender or cap.sender, areas=config.areas or cap.areas,
            identifier_prefix=config.identifier_prefix or cap.identifier_prefix)
        self.settings = settings
        self.duration = dt.timedelta(hours=config.duration_hours)
        self.districts = {d.id: d.name for d in province.districts.values()}
        self.ctx = Context(settings, province.name, self.districts)

    @property
    def sender(self) -> str:
        return self.settings.sender

    def identifier(self, envelope: Envelope) -> str:
        return broadcast.identifier(self.settings.identifier_prefix, envelope.wave)

    def sent(self, envelope: Envelope) -> dt.datetime:
        return dt.datetime.fromtimestamp(int(envelope.created_at), dt.UTC)

    def expires(self, envelope: Envelope) -> dt.datetime:
        return self.sent(envelope) + self.duration

    def areas(self, districts: list[str]) -> list[CapArea]:
        """The districts' areas; the whole province's (its own shape, else every district's)
        for none."""
        if districts or PROVINCE_AREA in self.settings.areas:
            return self.ctx.areas(sorted(districts))
        return self.ctx.areas(sorted(self.districts))

    def text(self, envelope: Envelope) -> list[tuple[list[str], str]]:
        """(districts, words) of each info: one per district when the text names
        ``{district}``, else one for all of the wave's districts."""
        if any(envelope.districts.values()):
            return [([d], words or envelope.text)
                    for d, words in sorted(envelope.districts.items())]
        return [(sorted(envelope.districts), envelope.text)]

    def alert(self, envelope: Envelope, carrier: Carrier) -> CapAlert:
        options = carrier.options
        level = envelope.level
        rated = rating(level if level is not None else 4 if envelope.urgent else 1,
                       urgent=envelope.urgent)
        what = (f"Cấp độ {ROMAN.get(level, str(level))}" if level is not None
                else URGENT_EVENT if envelope.urgent else NOTICE_EVENT)
        parameters = dict(options.parameters)
        if options.repetition_seconds:
            parameters[options.repetition_parameter] = str(options.repetition_seconds)
        sent = self.sent(envelope)
        infos = [CapInfo(event=f"{self.settings.event} — {what}", urgency=rated.urgency,
                         severity=rated.severity, certainty=rated.certainty,
                         headline=headline_of(words), description=words,
                         sender_name=self.settings.sender_name, expires=self.expires(envelope),
                         areas=self.areas(districts), language=options.language,
                         parameters=parameters)
                 for districts, words in self.text(envelope)]
        return CapAlert(identifier=self.identifier(envelope), sender=self.sender, sent=sent,
                        status=self.settings.status, msg_type=MsgType.ALERT,
                        thread=f"{broadcast.PART}.{envelope.wave}", origin=ORIGIN,
                        event_at=sent, infos=infos, level=level)

    def cancel(self, envelope: Envelope, carrier: Carrier, now: dt.datetime) -> CapAlert:
        """The Cancel of the wave's alert, made at ``now``."""
        return capalerts.cancel(self.ctx, self.alert(envelope, carrier), now)

    def document(self, alert: CapAlert) -> bytes:
        return to_xml(alert)
