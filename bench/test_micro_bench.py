"""Micro benchmarks of the hot parts, on the real code: SMPP encode and decode, text
segmentation, the Redis dedup batch, one fan-out, the metrics a worker records per batch, and
the rate limiters (a bind's permit per submit_sm, a route's permits per batch).

Each is small; where one call does a batch of items, ``extra_info`` holds the item count and
the per-item cost of the median (filled in after the run, so it is in ``--benchmark-json``).

Run with ``.venv/bin/pytest bench/test_micro_bench.py --benchmark-only -p no:cacheprovider``;
results go to bench/RESULTS.md ("Micro benchmarks (hot parts)").
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
import uvloop
from pytest_benchmark.fixture import BenchmarkFixture

from adapters.smpp import pdu
from adapters.smpp.rate import BindRate
from adapters.smpp.receipt import format_receipt, parse_receipt
from bench import audiencegen, localredis
from dispatcher.domain import repeats
from dispatcher.domain.audience import Validator
from dispatcher.domain.model import Channel, Priority, Selector, Wave
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.province import Province
from dispatcher.domain.smstext import Encoding, encode_parts, segment
from dispatcher.domain.suppression import OPT_OUT, Suppression
from dispatcher.engine import metrics, routing
from dispatcher.engine.fanout import fan_out
from dispatcher.engine.importer import import_audience
from dispatcher.engine.throttle import RouteThrottle
from dispatcher.service.settings import Settings
from dispatcher.store.base import Completion, Entry
from dispatcher.store.memory import MemoryStore
from dispatcher.store.redis import RedisStore

# 150 characters of Vietnamese: three UCS-2 parts, or one GSM-7 part with strip=True
TEXT = ("KHẨN: Covid-19 lây lan rộng tại Quảng Ninh. Ở nhà khi không cần thiết, đeo khẩu trang "
        "nơi công cộng. Sốt, ho, khó thở: gọi ngay y tế xã, phường 24/7!!")
SEGMENTED = segment(TEXT)
PAYLOAD = encode_parts(SEGMENTED, 0x2A)[0]  # UDH + UCS-2: 140 octets
DESTINATION = "84912345678"
BRANDNAME = "LOA"
SEQ = 0x1234
TEMPLATE = pdu.SubmitTemplate(source_addr=BRANDNAME, source_addr_ton=pdu.TON_ALPHANUMERIC,
                              source_addr_npi=0, esm_class=pdu.ESM_UDHI, data_coding=8)
SUBMIT = pdu.ShortMessage(
    destination_addr=DESTINATION, short_message=PAYLOAD, source_addr=BRANDNAME,
    source_addr_ton=pdu.TON_ALPHANUMERIC, source_addr_npi=0, esm_class=pdu.ESM_UDHI,
    registered_delivery=1, data_coding=8)

RESPONSES = 100
RESP_STREAM = b"".join(pdu.encode_submit_sm_resp(seq, f"5F3A9C{seq:04X}")
                       for seq in range(1, RESPONSES + 1))

RECEIPT_BODY = pdu.encode_short_message(pdu.DELIVER_SM, 77, pdu.ShortMessage(
    destination_addr=BRANDNAME, dest_addr_ton=pdu.TON_ALPHANUMERIC, dest_addr_npi=0,
    source_addr=DESTINATION, source_addr_ton=pdu.TON_INTERNATIONAL, source_addr_npi=pdu.NPI_ISDN,
    esm_class=pdu.ESM_RECEIPT,
    short_message=format_receipt("5F3A9C0112", "DELIVRD",
                                 submitted=dt.datetime(2026, 11, 26, 9, 30),
                                 done=dt.datetime(2026, 11, 26, 9, 31), text="KHAN: Covid-19"),
    tlvs={pdu.TLV_RECEIPTED_MESSAGE_ID: b"5F3A9C0112\0", pdu.TLV_MESSAGE_STATE: b"\x02"},
))[pdu.HEADER_SIZE:]

BATCH = 500
IDS = list(range(200_000, 200_000 + BATCH))  # one batch: neighbouring ids (GETRANGE path)
AUDIENCE = 10_000
SETTINGS = Settings()


def per_item(benchmark: BenchmarkFixture, items: int) -> None:
    """Record the batch size and the median's cost per item in ``extra_info``."""
    benchmark.extra_info["items"] = items
    stats: Any = benchmark.stats
    if stats is not None:
        median = stats.stats.median
        benchmark.extra_info["median_us_per_item"] = round(median / items * 1e6, 4)


# -- SMPP encode --------------------------------------------------------------------------------


@pytest.mark.benchmark(group="pdu encode")
def test_submit_template_encode(benchmark: BenchmarkFixture) -> None:
    """One submit_sm of a 140-octet UCS-2 part with UDH, from the per-wave template."""
    assert len(PAYLOAD) == 140
    data = benchmark(TEMPLATE.encode, SEQ, DESTINATION, PAYLOAD)
    assert data == pdu.encode_short_message(pdu.SUBMIT_SM, SEQ, SUBMIT)


@pytest.mark.benchmark(group="pdu encode")
def test_encode_short_message(benchmark: BenchmarkFixture) -> None:
    """The same submit_sm through the general encoder (a ShortMessage built beforehand)."""
    data = benchmark(pdu.encode_short_message, pdu.SUBMIT_SM, SEQ, SUBMIT)
    assert data == TEMPLATE.encode(SEQ, DESTINATION, PAYLOAD)


# -- SMPP decode --------------------------------------------------------------------------------


@pytest.mark.benchmark(group="pdu decode")
def test_framer_submit_sm_resps(benchmark: BenchmarkFixture) -> None:
    """100 submit_sm_resp PDUs in one chunk cut by a new Framer (per PDU in extra_info)."""

    def run() -> int:
        return len(pdu.Framer().feed(RESP_STREAM))

    assert benchmark(run) == RESPONSES
    per_item(benchmark, RESPONSES)


@pytest.mark.benchmark(group="pdu decode")
def test_receipt_decode(benchmark: BenchmarkFixture) -> None:
    """A receipt deliver_sm body (text and TLVs): essentials, then the receipt."""

    def run() -> tuple[str, str]:
        esm_class, text, tlvs = pdu.parse_deliver_essentials(RECEIPT_BODY)
        assert esm_class & pdu.ESM_RECEIPT
        receipt = parse_receipt(text, tlvs)
        return receipt.message_id, receipt.state

    assert benchmark(run) == ("5F3A9C0112", "DELIVRD")


# -- segmentation -------------------------------------------------------------------------------


@pytest.mark.benchmark(group="segment")
def test_segment(benchmark: BenchmarkFixture) -> None:
    """150 characters of Vietnamese: UCS-2, three parts."""
    assert len(TEXT) == 150
    seg = benchmark(segment, TEXT)
    assert seg.encoding == Encoding.UCS2 and len(seg.parts) == 3


@pytest.mark.benchmark(group="segment")
def test_segment_strip(benchmark: BenchmarkFixture) -> None:
    """The same text with diacritics stripped: GSM-7, one part."""
    seg = benchmark(segment, TEXT, strip=True)
    assert seg.encoding == Encoding.GSM7 and len(seg.parts) == 1


@pytest.mark.benchmark(group="segment")
def test_encode_parts(benchmark: BenchmarkFixture) -> None:
    """UDH + UTF-16-BE of the three parts (per part in extra_info)."""
    parts = benchmark(encode_parts, SEGMENTED, 0x2A)
    assert [len(p) for p in parts] == [140, 140, 2 * (150 - 134) + 6]
    per_item(benchmark, len(parts))


# -- Redis dedup batch --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    opened = uvloop.new_event_loop()
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="module")
def redis_store(tmp_path_factory: pytest.TempPathFactory,
                loop: asyncio.AbstractEventLoop) -> Iterator[RedisStore]:
    with localredis.running(tmp_path_factory.mktemp("redis")) as server:
        store = RedisStore(server.url)
        try:
            yield store
        finally:
            loop.run_until_complete(store.aclose())


@pytest.mark.benchmark(group="dedup batch")
def test_sent_mask(benchmark: BenchmarkFixture, redis_store: RedisStore,
                   loop: asyncio.AbstractEventLoop) -> None:
    """The dedup read of a 500-id batch, every other id already sent (one GETRANGE)."""
    loop.run_until_complete(redis_store.client.flushdb())
    loop.run_until_complete(redis_store.queue.complete(
        "sms.bench", Entry("0-1"), Completion(sent={"w-mask": IDS[::2]})))

    def run() -> list[bool]:
        return loop.run_until_complete(redis_store.queue.sent_mask("w-mask", IDS))

    mask = benchmark(run)
    assert mask == [i % 2 == 0 for i in range(BATCH)]
    per_item(benchmark, BATCH)


@pytest.mark.benchmark(group="dedup batch")
def test_complete_sent_bits(benchmark: BenchmarkFixture, redis_store: RedisStore,
                            loop: asyncio.AbstractEventLoop) -> None:
    """The completion of a 500-id batch: the packed ids to the SETBIT script, XACK, XDEL (one
    MULTI round trip; the entry acknowledged is not pending, as the script's cost is the point)."""
    loop.run_until_complete(redis_store.client.flushdb())
    done = Completion(sent={"w-complete": IDS})

    def run() -> None:
        loop.run_until_complete(redis_store.queue.complete("sms.bench", Entry("0-1"), done))

    benchmark(run)
    mask = loop.run_until_complete(redis_store.queue.sent_mask("w-complete", IDS))
    assert all(mask)
    per_item(benchmark, BATCH)


@pytest.mark.benchmark(group="dedup batch")
def test_ledger_claim(benchmark: BenchmarkFixture, redis_store: RedisStore,
                      loop: asyncio.AbstractEventLoop) -> None:
    """The no-repeats claim of a 500-id batch (one script: a BITFIELD GET and SET of (minute,
    tag) pairs), every id already claimed by the same wave: the cost a retried batch pays."""
    loop.run_until_complete(redis_store.client.flushdb())
    tag = repeats.tag("w-ledger")

    def run() -> list[bool]:
        return loop.run_until_complete(redis_store.ledger.claim(
            "bench", IDS, now=1_000, window=1_296, tag=tag, ttl=3600))

    assert all(benchmark(run))
    per_item(benchmark, BATCH)


# -- fan-out ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def memory_audience(tmp_path_factory: pytest.TempPathFactory, numbering: Numbering,
                    province: Province,
                    loop: asyncio.AbstractEventLoop) -> tuple[MemoryStore, Wave]:
    """A MemoryStore holding an imported 10,000-recipient audience, and an SMS wave to all."""
    path = tmp_path_factory.mktemp("audience") / "audience.csv"
    audiencegen.generate(path, AUDIENCE, seed=7, numbering=numbering, province=province)
    store = MemoryStore()

    async def load() -> Wave:
        await import_audience(path, store, Validator(numbering, province),
                              chunk_size=SETTINGS.engine.chunk_size)
        meta = await store.audiences.meta()
        assert meta is not None
        return Wave(id="w-fan", campaign_id="c-bench", channel=Channel.SMS,
                    text="Đeo khẩu trang nơi công cộng", created_at=dt.datetime.now(dt.UTC),
                    audience_version=meta.version, total=routing.reach(meta, Selector(),
                                                                       Channel.SMS))

    return store, loop.run_until_complete(load())


async def go_on() -> bool:
    return True


@pytest.mark.benchmark(group="fan-out")
def test_fan_out_10k(benchmark: BenchmarkFixture, memory_audience: tuple[MemoryStore, Wave],
                     numbering: Numbering, loop: asyncio.AbstractEventLoop) -> None:
    """One whole fan-out of the 10,000-recipient audience to a new wave (per recipient enqueued
    in extra_info)."""
    store, template = memory_audience
    waves = itertools.count()

    def setup() -> tuple[tuple[Wave], dict[str, Any]]:
        wave = Wave(id=f"w-fan-{next(waves)}", campaign_id=template.campaign_id,
                    channel=template.channel, text=template.text,
                    created_at=template.created_at, audience_version=template.audience_version,
                    total=template.total)
        return (wave,), {}

    # no worker reads the routes: a routine fan-out would wait for room once they hold
    # ahead_batches unread batches (the waves of earlier rounds), so the lead is unbounded here
    settings = msgspec.structs.replace(SETTINGS, engine=msgspec.structs.replace(
        SETTINGS.engine, ahead_batches=10**9))

    def run(wave: Wave) -> int:
        return loop.run_until_complete(
            fan_out(store, wave, settings, numbering.carriers, proceed=go_on))

    enqueued = benchmark.pedantic(  # type: ignore[no-untyped-call]
        run, setup=setup, rounds=15, iterations=1, warmup_rounds=1)
    assert enqueued == template.total > 9_000
    per_item(benchmark, enqueued)


# -- metrics ------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="metrics")
def test_messages_inc(benchmark: BenchmarkFixture) -> None:
    """A worker's per-batch count: MESSAGES.labels(...).inc(500)."""

    def run() -> None:
        metrics.MESSAGES.labels(channel="sms", route="sms.bench", result="sent").inc(BATCH)

    benchmark(run)


@pytest.mark.benchmark(group="metrics")
def test_batch_seconds_observe(benchmark: BenchmarkFixture) -> None:
    """A worker's per-batch time: BATCH_SECONDS.labels(...).observe(0.01)."""

    def run() -> None:
        metrics.BATCH_SECONDS.labels(channel="sms", route="sms.bench").observe(0.01)

    benchmark(run)


# -- rates: the bind's per-submit permit and the route's per-batch permits ------------------------

@pytest.mark.benchmark(group="rates")
def test_bind_rate_acquire(benchmark: BenchmarkFixture) -> None:
    """500 ``BindRate.acquire()`` at a rate never reached (what each submit_sm pays; per submit
    in extra_info)."""
    loop = uvloop.new_event_loop()
    rate = BindRate(1e9)

    async def many() -> None:
        acquire = rate.acquire
        for _ in range(BATCH):
            await acquire()

    try:
        benchmark(lambda: loop.run_until_complete(many()))
    finally:
        loop.close()
    per_item(benchmark, BATCH)


@pytest.mark.benchmark(group="rates")
def test_route_throttle_batch(benchmark: BenchmarkFixture) -> None:
    """A route's permits for one 500-message batch, ``RouteThrottle.acquire(500)``, at a rate
    never reached (per message in extra_info)."""
    loop = uvloop.new_event_loop()
    throttle = RouteThrottle(1e9)
    try:
        benchmark(lambda: loop.run_until_complete(throttle.acquire(BATCH)))
    finally:
        loop.close()
    per_item(benchmark, BATCH)


# -- fan-out on Redis, with the suppression list ------------------------------------------------

REDIS_AUDIENCE = 100_000
LISTED = 5_000  # 5 % of the audience on the SMS suppression list


@pytest.fixture(scope="module")
def redis_audience(tmp_path_factory: pytest.TempPathFactory, numbering: Numbering,
                   province: Province, redis_store: RedisStore,
                   loop: asyncio.AbstractEventLoop) -> tuple[Wave, list[str]]:
    """The module's Redis holding an imported 100,000-recipient audience; an urgent SMS wave to
    all (urgent: fan-out does not wait for workers) and the audience's numbers."""
    path = tmp_path_factory.mktemp("audience") / "audience.csv"
    audiencegen.generate(path, REDIS_AUDIENCE, seed=8, numbering=numbering, province=province)

    async def load() -> tuple[Wave, list[str]]:
        await redis_store.client.flushdb()
        await import_audience(path, redis_store, Validator(numbering, province),
                              chunk_size=SETTINGS.engine.chunk_size)
        meta = await redis_store.audiences.meta()
        assert meta is not None
        chunks = await redis_store.audiences.chunks(
            meta.version, sorted(n for g in meta.groups for n in g.chunks))
        wave = Wave(id="w-fan", campaign_id="c-bench", channel=Channel.SMS,
                    text="Đeo khẩu trang nơi công cộng", created_at=dt.datetime.now(dt.UTC),
                    audience_version=meta.version, priority=Priority.URGENT,
                    total=routing.reach(meta, Selector(), Channel.SMS))
        return wave, [r.msisdn for c in chunks for r in c.recipients]

    return loop.run_until_complete(load())


@pytest.mark.benchmark(group="fan-out redis")
@pytest.mark.parametrize("listing", ["public_safety", "empty_list", "listed_5pct"])
def test_fan_out_redis_100k(benchmark: BenchmarkFixture, redis_store: RedisStore,
                            redis_audience: tuple[Wave, list[str]], numbering: Numbering,
                            loop: asyncio.AbstractEventLoop, listing: str) -> None:
    """One whole fan-out of the 100,000-recipient audience on Redis to a new wave: without the
    suppression check (a public-safety wave), with an empty SMS list (one HMGET per step, every
    answer nil), and with 5,000 of its numbers listed."""
    template, numbers = redis_audience
    client = redis_store.client

    async def reset() -> None:
        for pattern in ("loa:{r:*", "loa:{w:*", "loa:{supp:*"):
            found = [k async for k in client.scan_iter(match=pattern, count=1000)]
            if found:
                await client.delete(*found)
        if listing == "listed_5pct":
            await redis_store.suppressions.add([
                Suppression(Channel.SMS, n, "opt-out", 1.0, source=OPT_OUT)
                for n in numbers[::REDIS_AUDIENCE // LISTED]])

    waves = itertools.count()

    def setup() -> tuple[tuple[Wave], dict[str, Any]]:
        loop.run_until_complete(reset())
        wave = msgspec.structs.replace(template, id=f"w-fan-{next(waves)}",
                                       public_safety=listing == "public_safety")
        return (wave,), {}

    def run(wave: Wave) -> int:
        return loop.run_until_complete(
            fan_out(redis_store, wave, SETTINGS, numbering.carriers, proceed=go_on))

    enqueued = benchmark.pedantic(  # type: ignore[no-untyped-call]
        run, setup=setup, rounds=5, iterations=1, warmup_rounds=1)
    skipped = LISTED if listing == "listed_5pct" else 0
    assert enqueued == template.total - skipped
    per_item(benchmark, template.total)


STEP = 16 * 512  # a fan-out step's recipients (chunks_per_step x chunk_size)


@pytest.mark.benchmark(group="suppression mask")
@pytest.mark.parametrize("listed", [0, 100_000])
def test_suppression_mask_step(benchmark: BenchmarkFixture, redis_store: RedisStore,
                               loop: asyncio.AbstractEventLoop, listed: int) -> None:
    """The fan-out's one question per step: 8,192 numbers asked with one HMGET, against an
    empty SMS list and a list of 100,000 (5 % of the step's numbers on it)."""
    client = redis_store.client

    async def fill() -> None:
        found = [k async for k in client.scan_iter(match="loa:{supp:*", count=1000)]
        if found:
            await client.delete(*found)
        for start in range(0, listed, 5_000):
            await redis_store.suppressions.add([
                Suppression(Channel.SMS, f"8497{i:07d}", "opt-out", 1.0, source=OPT_OUT)
                for i in range(start, start + 5_000)])

    loop.run_until_complete(fill())
    numbers = [f"8497{i // 20 if i % 20 == 0 and listed else 5_000_000 + i:07d}"
               for i in range(STEP)]

    def run() -> list[bool]:
        return loop.run_until_complete(redis_store.suppressions.mask(Channel.SMS, numbers))

    mask = benchmark(run)
    assert mask.count(True) == (len(range(0, STEP, 20)) if listed else 0)
    per_item(benchmark, STEP)
