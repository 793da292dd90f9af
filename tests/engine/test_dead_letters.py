"""Dead letters through the real engine (memory store, Redis, Redis Cluster): a channel fails
some numbers for good, their dead letters are listed page by page, the channel is fixed, a
replay sends each of them once on the same wave, and nobody twice; counted at the channel."""

from __future__ import annotations

import asyncio
from collections import Counter
from functools import partial
from pathlib import Path

import pytest

from adapters.base import Adapter, Envelope, Results
from adapters.memory import MemoryAdapter
from bench import audiencegen
from dispatcher.domain.audience import Recipient, Validator
from dispatcher.domain.errors import InputError, NotFound, StateError
from dispatcher.domain.model import Channel, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine import deadletters
from dispatcher.engine.campaigns import wave_id
from dispatcher.engine.fallback import fallback_wave_id
from dispatcher.engine.importer import import_audience
from dispatcher.engine.process import Engine, wave_progress
from dispatcher.store import Store
from dispatcher.store.base import DeadLetter
from tests.conftest import run_engine_until
from tests.engine.test_engine_flow import (
    SETTINGS,
    addresses,
    create,
    make_engine,
    progress_of,
    running,
    until,
)
from tests.engine.test_fallback_and_pause import SETTINGS as FALLBACK
from tests.engine.test_fallback_and_pause import RefusedTwoWays
from tests.engine.test_fallback_and_pause import setup as fallback_setup

ROWS = 600


@pytest.fixture(scope="module")
def small_audience_file(tmp_path_factory: pytest.TempPathFactory, numbering: Numbering,
                        province: Province) -> Path:
    path = tmp_path_factory.mktemp("dead") / "audience.csv"
    audiencegen.generate(path, ROWS, seed=19, numbering=numbering, province=province)
    return path


@pytest.fixture
async def people(store: Store, small_audience_file: Path, numbering: Numbering,
                 province: Province) -> list[Recipient]:
    await import_audience(small_audience_file, store, Validator(numbering, province),
                          chunk_size=SETTINGS.engine.chunk_size)
    meta = await store.audiences.meta()
    assert meta is not None and meta.count == ROWS
    numbers = sorted(n for g in meta.groups for n in g.chunks)
    by_id: dict[int, Recipient] = {}
    for chunk in await store.audiences.chunks(meta.version, numbers):
        for offset, r in enumerate(chunk.recipients):
            by_id[chunk.first_id + offset] = r
    return [by_id[i] for i in range(meta.count)]


async def all_letters(store: Store, wave: str, limit: int) -> list[tuple[str, DeadLetter]]:
    """Every dead letter of ``wave``, page by page of ``limit``."""
    found: list[tuple[str, DeadLetter]] = []
    cursor = ""
    while True:
        page, _ = await deadletters.dead_letters(store, wave, cursor=cursor, limit=limit)
        assert len(page.letters) <= limit
        found += page.letters
        if not page.cursor:
            return found
        cursor = page.cursor


async def settled(store: Store, wave: str) -> bool:
    """The wave exists, is completed, and every message has an outcome."""
    state = (await store.waves.states([wave])).get(wave)
    if state is not WaveState.COMPLETED:
        return False
    p = await progress_of(store, wave)
    return p.retrying == 0 and p.queued == 0


async def test_dead_letters_are_listed_and_replayed_once_to_the_same_wave(
        store: Store, people: list[Recipient], plan: Plan, province: Province,
        numbering: Numbering) -> None:
    sms_addrs = addresses(Channel.SMS, people)
    zalo_addrs = addresses(Channel.ZALO, people)
    refused = frozenset(sms_addrs[::37])  # permanent failures, on every carrier's route
    throttled = frozenset(zalo_addrs[:7])  # retries run out
    sms = MemoryAdapter(fail_addrs=refused)
    zalo = MemoryAdapter(retry_addrs=throttled)
    engine = make_engine(store, plan, province, numbering, {Channel.SMS: sms, Channel.ZALO: zalo})
    campaign = await create(engine.campaigns, [Channel.SMS, Channel.ZALO])
    sms_wave, zalo_wave = wave_id(campaign.id, Channel.SMS), wave_id(campaign.id, Channel.ZALO)

    async with running(engine) as task:
        for wave in (sms_wave, zalo_wave):
            await until(task, partial(settled, store, wave), f"{wave} to complete")

        listed = await all_letters(store, sms_wave, limit=4)
        assert sorted(d.addr for _, d in listed) == sorted(refused)  # each once, none lost
        assert {r for r, _ in listed} == {r for r, _ in listed if r.startswith("sms.")}
        assert len({r for r, _ in listed}) > 1, "the numbers should span carriers"
        assert all(d.reason == "invalid destination" and d.attempts == 1 and not d.expired
                   for _, d in listed)
        assert (await deadletters.dead_letters(store, sms_wave))[1] == len(refused)
        zalo_listed = await all_letters(store, zalo_wave, limit=100)
        assert sorted(d.addr for _, d in zalo_listed) == sorted(throttled)
        assert all(d.expired for _, d in zalo_listed)
        before = await progress_of(store, sms_wave)
        assert (before.failed, before.dead_letters) == (len(refused), len(refused))

        sms.fail_addrs = frozenset()  # the carriers are fixed
        zalo.retry_addrs = frozenset()
        out = await deadletters.replay(store, sms_wave)
        assert (out.requeued, out.skipped) == (len(refused), 0)
        assert out.reopened  # it was completed: it is sending again until they have an outcome
        zout = await deadletters.replay(store, zalo_wave)
        assert (zout.requeued, zout.skipped) == (len(throttled), 0)
        assert (await deadletters.dead_letters(store, sms_wave))[1] == 0

        for wave in (sms_wave, zalo_wave):
            await until(task, partial(settled, store, wave), f"{wave} to complete again")

        again = await deadletters.replay(store, sms_wave)  # nothing left to replay
        assert (again.requeued, again.skipped, again.reopened) == (0, 0, False)
        assert again.state is WaveState.COMPLETED

    # counted at the channel: every number exactly once, the refused ones included
    assert sms.received == Counter({(sms_wave, a): 1 for a in sms_addrs})
    assert zalo.received == Counter({(zalo_wave, a): 1 for a in zalo_addrs})
    for wave, n, total in ((sms_wave, len(refused), len(sms_addrs)),
                           (zalo_wave, len(throttled), len(zalo_addrs))):
        p = await progress_of(store, wave)
        assert (p.total, p.sent, p.failed, p.expired, p.retrying, p.queued, p.dead_letters) == (
            total, total, 0, 0, 0, 0, 0)
        counts = await store.waves.progress(wave)
        assert counts.get("replayed") == n
    for route in {r for r, _ in listed}:
        assert (await store.queue.depth(route))[1:] == (0, 0)  # no retry, no dead letter left


async def test_a_sent_recipient_is_skipped_and_two_replays_at_once_share_the_letters(
        store: Store, people: list[Recipient], plan: Plan, province: Province,
        numbering: Numbering) -> None:
    sms_addrs = addresses(Channel.SMS, people)
    refused = frozenset(sms_addrs[::20])
    sms = MemoryAdapter(fail_addrs=refused)
    engine = make_engine(store, plan, province, numbering, {Channel.SMS: sms})
    campaign = await create(engine.campaigns, [Channel.SMS])
    wave = wave_id(campaign.id, Channel.SMS)

    async with running(engine) as task:
        await until(task, lambda: settled(store, wave), "the wave to complete")
        listed = await all_letters(store, wave, limit=1000)
        assert len(listed) == len(refused)
        # one of them was sent meanwhile (by another of the wave's schedulings, say)
        _, sent_meanwhile = listed[0]
        await store.queue.mark_sent({wave: [sent_meanwhile.id]})
        sms.fail_addrs = frozenset()

        first, second = await asyncio.gather(deadletters.replay(store, wave),
                                             deadletters.replay(store, wave))
        assert first.requeued + second.requeued == len(refused) - 1
        assert first.skipped + second.skipped == 1
        await until(task, lambda: settled(store, wave), "the wave to complete again")

    expected = Counter({(wave, a): 1 for a in sms_addrs if a != sent_meanwhile.addr})
    assert sms.received == expected  # nobody twice, the one already sent not again
    p = await progress_of(store, wave)
    assert (p.sent, p.failed, p.retrying, p.queued, p.dead_letters) == (len(sms_addrs), 0, 0, 0,
                                                                         0)


async def test_a_cancelled_wave_is_refused_with_its_state_and_keeps_its_letters(
        store: Store, people: list[Recipient], plan: Plan, province: Province,
        numbering: Numbering) -> None:
    refused = frozenset(addresses(Channel.SMS, people)[:5])
    sms = MemoryAdapter(fail_addrs=refused)
    engine = make_engine(store, plan, province, numbering, {Channel.SMS: sms})
    campaign = await create(engine.campaigns, [Channel.SMS])
    wave = wave_id(campaign.id, Channel.SMS)
    async with running(engine) as task:
        await until(task, lambda: settled(store, wave), "the wave to complete")
    await store.waves.set_state(wave, WaveState.CANCELLED)  # e.g. its level was left

    with pytest.raises(StateError, match="is cancelled"):
        await deadletters.replay(store, wave)
    page, total = await deadletters.dead_letters(store, wave)
    assert total == len(page.letters) == len(refused)  # nothing taken
    with pytest.raises(NotFound):
        await deadletters.replay(store, "no-such-wave")
    with pytest.raises(NotFound):
        await deadletters.dead_letters(store, "no-such-wave")
    with pytest.raises(InputError, match="cursor"):
        await deadletters.dead_letters(store, wave, cursor="nonsense")


class Mended(RefusedTwoWays):
    """Zalo refusing numbers ending in 7 (the SMS fallback may cure them) and 3 (for good)
    until ``fixed``."""

    fixed = False

    async def send(self, envelope: Envelope) -> Results:
        if self.fixed:
            return await MemoryAdapter.send(self, envelope)
        return await super().send(envelope)


async def test_a_zalo_letter_its_sms_fallback_reached_is_not_sent_again(
        store: Store, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    wave = await fallback_setup(store, tmp_path, numbering, province, fallback=True)
    zalo, sms = Mended(), MemoryAdapter()
    adapters: dict[Channel, Adapter] = {Channel.ZALO: zalo, Channel.SMS: sms}
    companion = fallback_wave_id(wave.id)

    async def done() -> bool:
        if not await settled(store, wave.id):
            return False
        found = await store.waves.get(companion)
        return found is not None and (await wave_progress(store, found)).retrying == 0

    await run_engine_until(Engine(store, plan, FALLBACK, province, adapters, numbering.carriers,
                                  reconcile=False, numbering=numbering), done)
    refused = {a for (_, a), n in zalo.received.items() if n == 0}
    by_sms = {a for a in refused if a.endswith("7")}
    for_good = refused - by_sms
    assert by_sms and for_good
    sms_before = sms.received.copy()

    zalo.fixed = True
    out = await deadletters.replay(store, wave.id)
    assert (out.requeued, out.skipped, out.covered) == (len(for_good), 0, len(by_sms))
    await run_engine_until(Engine(store, plan, FALLBACK, province, adapters, numbering.carriers,
                                  reconcile=False, numbering=numbering), done)

    assert {a for (_, a), n in zalo.received.items() if n == 1} >= for_good
    assert all(zalo.received[(wave.id, a)] == 0 for a in by_sms)  # never on Zalo
    assert all(n == 1 for (_, a), n in zalo.received.items() if a not in by_sms)
    assert sms.received == sms_before  # and no second SMS
    page, total = await deadletters.dead_letters(store, wave.id, limit=1000)
    assert total == len(by_sms) == len(page.letters)  # Zalo did fail them: still listed
    p = await wave_progress(store, wave)
    assert (p.failed, p.sent, p.queued, p.retrying) == (len(by_sms), wave.total - len(by_sms),
                                                        0, 0)


async def test_a_replay_landing_as_the_runner_completes_the_wave_reopens_it(
        store: Store, people: list[Recipient], plan: Plan, province: Province,
        numbering: Numbering) -> None:
    """The runner saw the wave settled; the replay lands before it moves the wave to completed:
    the wave is sending again at once, not completed with messages still to send."""
    refused = frozenset(addresses(Channel.SMS, people)[::50])
    sms = MemoryAdapter(fail_addrs=refused)
    engine = make_engine(store, plan, province, numbering, {Channel.SMS: sms})
    campaign = await create(engine.campaigns, [Channel.SMS])
    wave = wave_id(campaign.id, Channel.SMS)
    inner = store.waves.transition
    moves: list[tuple[WaveState, bool]] = []
    replays: list[deadletters.Replay] = []

    async def transition(wave_id: str, allowed: frozenset[WaveState],
                         state: WaveState) -> bool:
        if wave_id == wave and state is WaveState.COMPLETED and not replays:
            sms.fail_addrs = frozenset()  # the channel is fixed, and a replay lands now
            replays.append(await deadletters.replay(store, wave))
        moved = await inner(wave_id, allowed, state)
        if wave_id == wave:
            moves.append((state, moved))
        return moved

    store.waves.transition = transition  # type: ignore[method-assign]
    async with running(engine) as task:
        async def resent() -> bool:
            return bool(replays) and await settled(store, wave)

        await until(task, resent, "the replayed letters to be sent and the wave completed")
    (replay,) = replays
    assert (replay.requeued, replay.reopened) == (len(refused), False)  # it was still sending
    assert (WaveState.SENDING, True) in moves[moves.index((WaveState.COMPLETED, True)) + 1:]
    assert sms.received == Counter({(wave, a): 1 for a in addresses(Channel.SMS, people)})
