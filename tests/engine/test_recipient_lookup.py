""""Did this citizen get it?" through the real engine (memory store, Redis, Redis Cluster): a
Zalo wave with an SMS fallback where some numbers are sent, some delivered (receipts matched by
the receipt matcher), some refused for good and some refused and sent by SMS instead; the lookup
of each number says exactly that."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from adapters.base import Adapter, Envelope, Receipt, Results
from adapters.memory import MemoryAdapter
from dispatcher.domain.audience import Recipient
from dispatcher.domain.model import Channel, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine.fallback import fallback_wave_id
from dispatcher.engine.process import Engine, wave_progress
from dispatcher.engine.receipts import ReceiptMatcher
from dispatcher.engine.recipients import look_up
from dispatcher.store import Store
from tests.conftest import run_engine_until
from tests.engine.test_fallback_and_pause import SETTINGS, RefusedTwoWays, setup


class Remembering(RefusedTwoWays):
    """A channel that confirms delivery later (its message ids are recorded for receipts),
    remembering the id of each address it took."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, str] = {}

    async def send(self, envelope: Envelope) -> Results:
        results = await super().send(envelope)
        results.receipts = True
        results.remote_ids = [f"zalo-{r}" for r in results.remote_ids]
        for i, remote in zip(results.sent, results.remote_ids, strict=True):
            self.ids[envelope.addrs[i]] = remote
        return results


async def rows(store: Store, version: str) -> list[Recipient]:
    meta = await store.audiences.meta(version)
    assert meta is not None
    chunks = await store.audiences.chunks(version, [n for g in meta.groups for n in g.chunks])
    return [r for c in chunks for r in c.recipients]


async def test_the_lookup_says_what_each_number_got(
        store: Store, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    wave = await setup(store, tmp_path, numbering, province, fallback=True)
    zalo, sms = Remembering(), MemoryAdapter()
    adapters: dict[Channel, Adapter] = {Channel.ZALO: zalo, Channel.SMS: sms}
    engine = Engine(store, plan, SETTINGS, province, adapters, numbering.carriers,
                    reconcile=False, numbering=numbering)
    companion = fallback_wave_id(wave.id)

    async def done() -> bool:
        z = await wave_progress(store, wave)
        other = await store.waves.get(companion)
        if z.queued or z.retrying or other is None:
            return False
        if (await store.waves.states([wave.id])).get(wave.id) is not WaveState.COMPLETED:
            return False
        s = await wave_progress(store, other)
        return s.total == z.fallback and s.queued == 0 and s.retrying == 0

    await run_engine_until(engine, done)
    people = [r for r in await rows(store, wave.audience_version)]
    on_zalo = [r for r in people if r.zalo]
    addr = {r.msisdn: r.zalo_uid or r.msisdn for r in on_zalo}
    taken = [r for r in on_zalo if addr[r.msisdn] in zalo.ids]
    delivered, sent = taken[::2], taken[1::2]
    failed = [r for r in on_zalo if addr[r.msisdn].endswith("3")]
    fell_back = [r for r in on_zalo if addr[r.msisdn].endswith("7")]
    not_on_zalo = [r for r in people if not r.zalo]
    assert delivered and sent and failed and fell_back and not_on_zalo

    matcher = ReceiptMatcher(store)  # receipts for half of those Zalo took, in one pass
    matcher.add([Receipt(zalo.ids[addr[r.msisdn]], "DELIVRD") for r in delivered])
    await matcher.match_now()
    assert matcher.stats.matched == len(delivered)

    async def outcomes(r: Recipient) -> list[tuple[str, str, str, str]]:
        view = await look_up(store, r.msisdn)
        assert view is not None and view.number == r.msisdn
        assert (view.row.district, view.row.kind, view.row.zalo) == (r.district, r.kind, r.zalo)
        return [(w.wave, w.outcome, w.reason, w.fallback) for w in view.waves]

    for r in delivered:
        assert await outcomes(r) == [(wave.id, "delivered", "", "")]
    for r in sent:
        assert await outcomes(r) == [(wave.id, "sent", "", "")]
    for r in failed:
        assert await outcomes(r) == [(wave.id, "failed", "fallback: of no use, a plain failure",
                                      "")]
    for r in fell_back:
        [(name, outcome, reason, fallback)] = await outcomes(r)
        assert (name, outcome, fallback) == (wave.id, "failed", "sent")
        assert "not a Zalo account" in reason
    for r in not_on_zalo[:20]:  # the Zalo wave did not target them
        assert await outcomes(r) == []
    view = await look_up(store, delivered[0].msisdn)
    assert view is not None
    [w] = view.waves
    assert (w.campaign, w.campaign_title, w.channel, w.text, w.state) == (
        "c", "t", Channel.ZALO, "Zalo", WaveState.COMPLETED)
    # older than the window asked: not shown
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    old = await look_up(store, delivered[0].msisdn, days=1, now=later)
    assert old is not None and old.waves == []
    assert await look_up(store, "84999999999") is None  # in no audience
