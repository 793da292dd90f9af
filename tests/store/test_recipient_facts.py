"""What the store knows of recipients on waves (RecipientIndex.facts), on every store: the sent
and delivered bits, the dead letter and the wave's state, for many waves and recipients in one
call (one command on one Redis server), answered in the order asked."""

from __future__ import annotations

from datetime import timedelta

import redis

from dispatcher.domain.model import Channel, WaveState
from dispatcher.store import RedisStore, Store
from dispatcher.store.base import Completion, DeadLetter, WaveFacts
from tests.store.test_store import ROUTE, T0, addr, batch, taken, wave


async def test_facts_answer_bits_letters_and_states_in_the_order_asked(store: Store) -> None:
    for name, state in (("w1", WaveState.SENDING), ("w2", WaveState.COMPLETED),
                        ("w1.sms", WaveState.CANCELLED)):
        assert await store.waves.create(wave(name), state)
    await store.queue.mark_sent({"w1": [1, 2], "w2": [3], "w1.sms": [9]})
    await store.receipts.count({}, delivered={"w1": [2]})
    (entry,) = await taken(store, [batch("w2", [4, 5])])
    letter = DeadLetter("w2", Channel.SMS, 4, addr(4), 3, "rejected by carrier", expired=True)
    await store.queue.complete(ROUTE, entry.entry, Completion(dead=[letter]))
    await store.waves.set_state("w1", WaveState.PAUSED)

    asked = [("w1", 1), ("w2", 3), ("w1", 2), ("w2", 4), ("ghost", 1), ("w1.sms", 9),
             ("w2", 1), ("w2", 5), ("w1.sms", 4)]
    assert await store.recipients.facts(asked) == [
        WaveFacts(sent=True, state=WaveState.PAUSED),
        WaveFacts(sent=True, state=WaveState.COMPLETED),
        WaveFacts(sent=True, delivered=True, state=WaveState.PAUSED),
        WaveFacts(dead=letter, state=WaveState.COMPLETED),
        WaveFacts(),  # no such wave
        WaveFacts(sent=True, state=WaveState.CANCELLED),
        WaveFacts(state=WaveState.COMPLETED),
        WaveFacts(state=WaveState.COMPLETED),
        WaveFacts(state=WaveState.CANCELLED)]
    assert await store.recipients.facts([]) == []


async def test_facts_of_hundreds_of_waves_for_a_few_recipients(store: Store) -> None:
    names = [f"plan-4-sms-{i:04d}" for i in range(300)]
    for i, name in enumerate(names):
        await store.waves.create(wave(name, created_at=T0 + timedelta(hours=i)),
                                 WaveState.COMPLETED if i % 2 else WaveState.SENDING)
    await store.queue.mark_sent({name: [7] for name in names[::3]})
    asked = [(name, rid) for name in names for rid in (7, 8)]
    found = await store.recipients.facts(asked)
    assert found == [WaveFacts(sent=rid == 7 and i % 3 == 0,
                               state=WaveState.COMPLETED if i % 2 else WaveState.SENDING)
                     for i, _ in enumerate(names) for rid in (7, 8)]


async def test_redis_answers_the_facts_of_many_waves_with_one_command(redis_url: str) -> None:
    store = RedisStore(redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        names = [f"w{i}" for i in range(200)]
        for name in names:
            await store.waves.create(wave(name), WaveState.COMPLETED)
        asked = [(name, rid) for name in names for rid in (1, 2, 3)]
        await store.recipients.facts(asked[:1])  # the script is loaded
        client.config_resetstat()
        found = await store.recipients.facts(asked)
        stats = client.info("commandstats")
    finally:
        client.close()
        await store.aclose()
    assert found == [WaveFacts(state=WaveState.COMPLETED)] * len(asked)
    calls = {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()
             if "resetstat" not in k}
    assert calls.pop("evalsha") == 1
    assert set(calls) <= {"getbit", "hget", "smembers"}  # the script's own
