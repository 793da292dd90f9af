"""What a campaign costs, and whether it needs approval by another user.

The cost is counted twice, and either count over its threshold needs approval:

- **recipients**: the most people any one of its channels reaches with the audience in force
  (``[engine] approval_threshold``);
- **SMS PDUs**: every part of a long SMS is one ``submit_sm`` a carrier bills, so the SMS wave
  costs its recipients × the parts of its text as sent, and an SMS fallback of a Zalo wave at
  most the Zalo recipients × the parts of the fallback text (``[engine]
  approval_threshold_pdus``).

Both thresholds are the server's settings (the process that creates and starts campaigns), never
a client's. Counted at creation, and again when the engine starts a campaign that was approved
at creation for being small: the audience may have grown meanwhile.
"""

from __future__ import annotations

import msgspec

from dispatcher.domain import smstext
from dispatcher.domain.model import Campaign, Channel, Selector
from dispatcher.engine import routing
from dispatcher.engine.settings import EngineSettings
from dispatcher.store.base import AudienceMeta


class Cost(msgspec.Struct, frozen=True):
    recipients: int  # the most any one channel reaches
    pdus: int  # SMS parts sent at most: SMS recipients x parts (+ the fallback's)


def parts(text: str, strip: bool) -> int:
    """The parts of ``text`` as sent by SMS (raises TextError for a text SMS cannot carry)."""
    return len(smstext.segment(text, strip=strip).parts)


def cost(meta: AudienceMeta, *, selector: Selector, channels: list[Channel],
         texts: dict[Channel, str], strip: bool, sms_fallback: bool) -> Cost:
    """What a campaign with these channels and texts costs on the audience ``meta``."""
    # an outlet (a public page, a portal, loudspeakers, an area broadcast) speaks to everyone
    # in the districts it selects: counted as the people of the audience there, not its targets
    reach = {c: routing.reach(meta, selector, Channel.SMS if c.outlet else c) for c in channels}
    pdus = 0
    if Channel.SMS in channels:
        pdus += reach[Channel.SMS] * parts(texts[Channel.SMS], strip)
    if sms_fallback and Channel.ZALO in channels:
        fallback = texts.get(Channel.SMS) or texts.get(Channel.ZALO, "")
        pdus += reach[Channel.ZALO] * parts(fallback, strip)
    return Cost(recipients=max(reach.values(), default=0), pdus=pdus)


def of_campaign(meta: AudienceMeta, campaign: Campaign) -> Cost:
    return cost(meta, selector=campaign.selector, channels=campaign.channels,
                texts=campaign.texts, strip=campaign.strip_diacritics,
                sms_fallback=campaign.sms_fallback)


def over(price: Cost, engine: EngineSettings) -> str:
    """Why a campaign of this cost needs approval by another user ("" when it does not)."""
    why = []
    if price.recipients > engine.approval_threshold:
        why.append(f"{price.recipients:,} recipients, more than approval_threshold "
                   f"{engine.approval_threshold:,}")
    if price.pdus > engine.approval_threshold_pdus:
        why.append(f"{price.pdus:,} SMS parts (PDUs), more than approval_threshold_pdus "
                   f"{engine.approval_threshold_pdus:,}")
    return "; ".join(why)
