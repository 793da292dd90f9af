"""The lookup reads the waves of its window only (memory store, Redis, Redis Cluster): a number
targeted by many waves older than the window and by one within it is found, with that one wave,
and neither every wave nor every campaign is read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bench import audiencegen
from dispatcher.domain.model import Campaign, Channel, Selector, Wave, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.recipients import look_up
from dispatcher.store import Store
from tests.conftest import imported


async def test_a_lookup_reads_the_window_and_still_finds_the_number(
        store: Store, tmp_path: Path, numbering: Numbering, province: Province,
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audience.csv"
    audiencegen.generate(path, 300, seed=3, numbering=numbering, province=province)
    meta = await imported(store, path, numbering, province)
    [chunk] = await store.audiences.chunks(meta.version, [meta.groups[0].chunks[0]])
    person = chunk.recipients[0]
    now = dt.datetime.now(dt.UTC)

    def sms(wave_id: str, campaign: str, days: float) -> Wave:
        at = now - dt.timedelta(days=days)
        return Wave(id=wave_id, campaign_id=campaign, channel=Channel.SMS, text=wave_id,
                    created_at=at, audience_version=meta.version,
                    total=routing.reach(meta, Selector(), Channel.SMS), start_now=True)

    old = [sms(f"old-{d}", f"c-old-{d}", 30 + d) for d in range(1, 41)]
    recent = sms("recent", "c-recent", 2)
    for w in [*old, recent]:
        assert await store.waves.create(w, WaveState.COMPLETED)
        assert await store.campaigns.create(Campaign(
            id=w.campaign_id, title=f"title of {w.campaign_id}", channels=[Channel.SMS],
            texts={Channel.SMS: w.text}, created_at=w.created_at, created_by="cdc"))
    await store.queue.mark_sent({w.id: [chunk.first_id] for w in [*old, recent]})

    async def refused() -> list[object]:
        raise AssertionError("a lookup reads the waves and campaigns it shows, not all")

    monkeypatch.setattr(store.waves, "all", refused)
    monkeypatch.setattr(store.campaigns, "all", refused)
    view = await look_up(store, person.msisdn, days=30, now=now)
    assert view is not None and view.number == person.msisdn
    assert (view.row.id, view.row.district) == (chunk.first_id, person.district)
    assert [(w.wave, w.outcome, w.campaign_title, w.state) for w in view.waves] == [
        ("recent", "sent", "title of c-recent", WaveState.COMPLETED)]
    longer = await look_up(store, person.msisdn, days=35, now=now)
    assert longer is not None
    assert [w.wave for w in longer.waves] == ["recent", "old-1", "old-2", "old-3", "old-4",
                                              "old-5"]  # made 35 days before: in it
