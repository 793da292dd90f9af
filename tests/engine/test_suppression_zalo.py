"""The suppression lists on Zalo, against the Zalo simulator over loopback: numbers Zalo refuses
for good by the status table (-108 phone invalid, -141 refused the OA) join the Zalo list and the
next wave skips them; a refused recipient whose phone is on the SMS list gets no fallback SMS."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from dispatcher.domain.model import Channel, Wave, WaveState
from dispatcher.domain.suppression import DEAD_LETTER, Suppression
from tests.engine.test_zalo_engine_codes import (  # noqa: F401 - fixtures
    World,
    settled,
    store,
    until,
    world,
)


async def completed(w: World, wave: Wave) -> bool:
    return (await w.store.waves.states([wave.id])).get(wave.id) is WaveState.COMPLETED


async def test_refused_for_good_joins_the_zalo_list_and_the_next_wave_skips_it(
        world: World, tmp_path: Path) -> None:  # noqa: F811
    await world.audience(tmp_path, oa=False)
    invalid, refused, inactive = world.phones[:3]
    world.sim.set_config(error_phones={invalid: -108, refused: -141, inactive: -227})
    first = await world.wave("w1")
    asked: Counter[int] = Counter()

    async def two_waves() -> None:
        await until(lambda: settled(world, first))
        asked.update(world.sim.answered)
        second = await world.wave("w2")  # made once the first has settled
        await until(lambda: completed(world, second))

    await world.run(two_waves)
    found = await world.store.suppressions.lookup(invalid)
    assert [(e.channel, e.source, e.wave) for e in found] == [(Channel.ZALO, DEAD_LETTER, "w1")]
    assert "zalo -108" in found[0].reason
    assert [e.source for e in await world.store.suppressions.lookup(refused)] == [DEAD_LETTER]
    assert await world.store.suppressions.lookup(inactive) == []  # -227: not for good
    assert asked == Counter({-108: 1, -141: 1, -227: 1})
    p = await world.progress(await world.store.waves.get("w2") or first)
    assert p.suppressed == 2 and p.failed == 1  # -108 and -141 not asked again
    assert Counter(world.sim.answered) - asked == Counter({-227: 1})


async def test_a_refused_recipient_on_the_sms_list_gets_no_fallback_sms(
        world: World, tmp_path: Path) -> None:  # noqa: F811
    await world.audience(tmp_path, oa=False)
    listed, other = world.phones[:2]
    await world.store.suppressions.add([Suppression(Channel.SMS, listed, "asked", 1.0)])
    world.sim.set_config(error_phones={listed: -227, other: -227})
    wave = await world.wave()
    await world.run(lambda: until(lambda: settled(world, wave)))
    p = await world.progress(wave)
    assert p.failed == 2 and p.fallback == 1 and p.fallback_suppressed == 1
    assert world.sms_to(wave) == {other: 1}
