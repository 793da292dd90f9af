"""The store of the carriers' cell broadcasts (dispatcher.store.broadcasts): the contract, on
memory, Redis and Redis Cluster alike."""

from __future__ import annotations

import asyncio

import msgspec

from dispatcher.domain.broadcast import Broadcast, Reason, Request, State, Withdrawal
from dispatcher.store import Store


def made(wave: str, carrier: str, seen_at: float = 100.0, **fields: object) -> Broadcast:
    return Broadcast(wave=wave, carrier=carrier, identifier=f"loa.cb.{wave}", seen_at=seen_at,
                     **fields)  # type: ignore[arg-type]


async def test_a_broadcast_is_kept_once_per_wave_and_carrier(store: Store) -> None:
    assert await store.broadcasts.add([made("w-1", "viettel"), made("w-1", "vinaphone")]) == 2
    # another process records the same acceptance: the first record stays
    assert await store.broadcasts.add([made("w-1", "viettel", reference="other"),
                                       made("w-2", "viettel", seen_at=200.0)]) == 1
    first, second, none = await store.broadcasts.get(
        [("w-1", "viettel"), ("w-2", "viettel"), ("w-3", "viettel")])
    assert first is not None and first.reference == "" and first.state is State.ACCEPTED
    assert second is not None and second.seen_at == 200.0
    assert none is None
    assert await store.broadcasts.get([]) == []
    assert await store.broadcasts.add([]) == 0


async def test_a_state_is_written_over_and_a_cancel_is_kept_once(store: Store) -> None:
    record = made("w-1", "viettel")
    await store.broadcasts.add([record])
    await store.broadcasts.put(msgspec.structs.replace(
        record, state=State.BROADCASTING, reads=1, reference="vt-1"))
    cancel = Withdrawal(at=150.0, reason=Reason.STOP, detail="HTTP 201")
    assert await store.broadcasts.withdrawn("w-1", "viettel", cancel)
    later = Withdrawal(at=160.0, reason=Reason.CANCELLED)
    assert not await store.broadcasts.withdrawn("w-1", "viettel", later)  # the first stays
    # a state read written after the Cancel does not take it away
    await store.broadcasts.put(msgspec.structs.replace(record, state=State.CANCELLED, reads=2))
    found, = await store.broadcasts.get([("w-1", "viettel")])
    assert found is not None
    assert found.state is State.CANCELLED and found.reads == 2
    assert found.withdrawal == cancel and found.cancelled_at == 150.0
    assert found.over(0.0)


async def test_the_latest_come_newest_first_and_by_wave(store: Store) -> None:
    await store.broadcasts.add([made("w-1", "viettel", 100.0), made("w-2", "viettel", 300.0),
                                made("w-1", "vinaphone", 200.0)])
    await store.broadcasts.withdrawn("w-1", "vinaphone", Withdrawal(at=1.0,
                                                                    reason=Reason.CANCELLED))
    latest = await store.broadcasts.latest()
    assert [(b.wave, b.carrier) for b in latest] == [("w-2", "viettel"), ("w-1", "vinaphone"),
                                                     ("w-1", "viettel")]
    assert latest[1].withdrawal is not None
    assert [(b.wave, b.carrier) for b in await store.broadcasts.latest(1)] == [("w-2",
                                                                                "viettel")]
    assert [(b.wave, b.carrier) for b in await store.broadcasts.latest(wave="w-1")] == [
        ("w-1", "vinaphone"), ("w-1", "viettel")]
    assert await store.broadcasts.latest(wave="w-9") == []


async def test_processes_at_once_record_a_cancel_once(store: Store) -> None:
    await store.broadcasts.add([made("w-1", "viettel")])
    results = await asyncio.gather(*(store.broadcasts.withdrawn(
        "w-1", "viettel", Withdrawal(at=float(i), reason=Reason.STOP)) for i in range(8)))
    assert sum(results) == 1


async def test_a_request_to_withdraw_a_wave_is_kept_once(store: Store) -> None:
    assert await store.broadcasts.requests() == {}
    assert await store.broadcasts.request("w-1", Request(at=1.0, by="olga", reason="sai"))
    assert not await store.broadcasts.request("w-1", Request(at=2.0, by="dave", reason="x"))
    await store.broadcasts.request("w-2", Request(at=3.0, by="dave", reason="lại sai"))
    assert await store.broadcasts.requests() == {
        "w-1": Request(at=1.0, by="olga", reason="sai"),
        "w-2": Request(at=3.0, by="dave", reason="lại sai")}
