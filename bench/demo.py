"""``loa demo``: a level-4 wave of every channel through the whole engine, in one command.

It generates an audience, imports it, sets the level to 4, and has the reconciler create the
next wave of each channel of the level-4 plan at once (as if its slot were due now). The engine
fans the waves out and its workers send them: SMS over SMPP to the SMSC simulator (or an SMSC
given with ``--smsc``), with delivery receipts matched back; Zalo to its API simulator; the
Facebook wave as one post on each of the demo's pages (the province's, two departments' and
each district's, :data:`DEMO_PAGES`) to the Graph API simulator, whatever ``[facebook]`` the
settings have; the loudspeaker bulletin read aloud and uploaded to two loudspeaker systems of
the simulator (:mod:`adapters.loudspeaker.simulator`, which checks the audio); the portals'
posts to the portal simulator (a WordPress site and a signed JSON CMS, the demo's ``[portal]``
sites); the cell broadcast wave as one CAP alert to each of three carriers' broadcast centres
(:data:`DEMO_CARRIERS`) of the broadcast centre simulator, whatever ``[cell_broadcast]`` the
settings have (each district shaped by a simulator geocode, not survey data); the level change
and the public waves as CAP 1.2 messages (as ``[cap] sender``, :data:`DEMO_CAP_SENDER` when the
settings have none), the newest pushed as the public notice to a Wi-Fi controller simulator
(:mod:`adapters.wifi.simulator`), whatever ``[wifi]`` the settings have; the other
channels to in-process channels that answer like real ones (a small share of transient and
permanent failures), with retries and dead letters.

It runs on its own private redis-server, never on the Redis of the configuration or
``LOA_REDIS_URL`` (see :mod:`bench.demoredis`); a database given explicitly must be empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import msgspec
from aiohttp import web

from adapters.base import Adapter
from adapters.cellbroadcast import Carrier, CellBroadcastAdapter, CellBroadcastConfig
from adapters.cellbroadcast.config import Auth
from adapters.cellbroadcast.simulator import CbcSim, CbcSimConfig
from adapters.facebook import FacebookAdapter, FacebookConfig, Page
from adapters.facebook.simulator import FacebookSim, FacebookSimConfig
from adapters.loudspeaker.adapter import LoudspeakerAdapter
from adapters.loudspeaker.config import LoudspeakerConfig, System
from adapters.loudspeaker.simulator import LoudspeakerSim
from adapters.memory import MemoryAdapter
from adapters.portal import PortalAdapter, PortalConfig, Site
from adapters.portal.simulator import DEFAULT_SIGNED, DEFAULT_WORDPRESS, PortalSim
from adapters.smpp.adapter import DEFAULT_LINK, LinkConfig, SmppAdapter
from adapters.smpp.simulator import Smsc, SmscConfig
from adapters.webhook.adapter import WebhookAdapter, WebhookConfig
from adapters.webhook.simulator import WebhookSim
from adapters.wifi.client import WifiClient
from adapters.wifi.simulator import WifiControllerSim
from adapters.zalo.adapter import ZaloAdapter
from adapters.zalo.config import ZaloConfig
from adapters.zalo.simulator import ZaloSim, ZaloSimConfig
from adapters.zalo.tokens import MemoryTokenStore
from adapters.zalo.webhook import WebhookVerifier
from bench import audiencegen, demoredis
from bench.webhookreceiver import make_app
from dispatcher.domain.audience import Validator
from dispatcher.domain.cap import AreaConfig, Published
from dispatcher.domain.model import WAVE_FINAL, Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.domain.wifi import WifiController, WifiSettings
from dispatcher.engine.fallback import fallback_wave_id
from dispatcher.engine.importer import import_audience
from dispatcher.engine.level import set_level
from dispatcher.engine.process import Engine, Progress, wave_progress
from dispatcher.engine.receipts import ReceiptMatcher
from dispatcher.engine.wifi import WifiPusher
from dispatcher.service import failclosed
from dispatcher.service.channels import Mode
from dispatcher.service.settings import Settings
from dispatcher.service.zalo_receipts import to_matcher
from dispatcher.store import open_store
from dispatcher.store.base import Store

DEMO_LEVEL = 4
RETRY_RATIO = 0.002  # transient failures the demo's in-process channels answer
FAIL_RATIO = 0.0005  # permanent failures (invalid destination)
SMSC_ERROR_RATIO = 0.0005  # the simulated SMSC answers "invalid destination" to these
NOT_ON_ZALO = 0.02  # numbers the simulated Zalo answers -118 for: they get the SMS instead
APP_SECRET = "loa-demo-push-secret"
STAT_MIX = {"DELIVRD": 0.97, "UNDELIV": 0.02, "EXPIRED": 0.01}  # what its receipts say
#: The demo's Facebook pages: (id, name, district); each district's page comes after these.
DEMO_PAGES = [("province", "Trang UBND tỉnh Quảng Ninh", ""),
              ("so-tttt", "Trang Sở Thông tin và Truyền thông", ""),
              ("so-y-te", "Trang Sở Y tế Quảng Ninh", "")]
#: The demo's carriers' cell broadcast centres, and the CAP sender they know it by.
DEMO_CARRIERS = {"viettel": "Viettel CBC", "vinaphone": "VinaPhone CBC",
                 "mobifone": "MobiFone CBC"}
DEMO_CAP_SENDER = "loa-demo@quangninh.gov.vn"
DEMO_WIFI_SECRET = "demo-wifi-secret"  # the Wi-Fi controller simulator's HMAC key
WIFI_WAIT_SECONDS = 10.0  # after the waves, how long the newest notice may take to be pushed
RECEIPT_QUIET_STEPS = 5  # after the waves finish, stop when no receipt matched for 1 s


class DemoResult(msgspec.Struct):
    recipients: int
    messages: dict[str, int]
    sent: int
    duplicates: int
    failed: int
    dead_letters: int
    delivered: int
    sms_fallback: int  # not reachable on Zalo (among the failures): sent by SMS instead
    seconds: float
    msgs_per_s: float
    waves: list[str] = []
    simulated: list[str] = []  # channels sent to the demo's simulators: they reach no one
    published: int = 0  # posts and notices the portal simulator keeps
    cap_messages: int = 0  # CAP 1.2 messages published (the level change, the public waves)
    wifi_notices: int = 0  # public notices the Wi-Fi controller simulator took


ProgressCallback = Callable[[dict[str, Progress]], None]


class SmscTarget(msgspec.Struct, frozen=True):
    """An external SMSC for the demo's SMS (all SMS routes go to this one link)."""

    host: str
    port: int
    system_id: str = "loa"
    password: str = ""


async def run_demo(*, recipients: int, redis_url: str | None, plan: Plan, numbering: Numbering,
                   province: Province, settings: Settings, smsc: SmscTarget | None = None,
                   zalo_url: str | None = None,
                   on_progress: ProgressCallback | None = None) -> DemoResult:
    """The demo on ``redis_url`` (refused unless its database is empty), or on a private
    redis-server started for it and stopped after it."""
    async with contextlib.AsyncExitStack() as stack:
        if redis_url:
            await demoredis.explicit(redis_url)
        else:
            redis_url = await demoredis.private(stack)
        store = open_store(redis_url)
        return await _demo(stack, store, recipients=recipients, plan=plan, numbering=numbering,
                           province=province, settings=settings, smsc=smsc, zalo_url=zalo_url,
                           on_progress=on_progress)
    raise AssertionError("unreachable")


async def _zalo(stack: contextlib.AsyncExitStack, matcher: ReceiptMatcher,
                zalo_url: str | None) -> tuple[ZaloAdapter, ZaloSim | None]:
    """The Zalo channel: to an in-process Zalo simulator (2% of numbers not on Zalo), whose
    signed delivery webhooks come back to an in-process receiver; or to ``zalo_url`` (an
    external ``loa sim zalo``, with its default credentials)."""
    defaults = ZaloSimConfig()
    sim = None
    if zalo_url is None:
        receiver = web.AppRunner(make_app(WebhookVerifier(defaults.app_id, defaults.oa_secret),
                                          to_matcher(matcher.add)), access_log=None)
        await receiver.setup()
        stack.push_async_callback(receiver.cleanup)
        site = web.TCPSite(receiver, "127.0.0.1", 0)
        await site.start()
        port = receiver.addresses[0][1]
        sim = ZaloSim(msgspec.structs.replace(
            defaults, not_zalo_share=NOT_ON_ZALO, webhook_url=f"http://127.0.0.1:{port}/zalo/webhook"))
        await sim.start()
        stack.push_async_callback(sim.stop)
        zalo_url = sim.url
    adapter = ZaloAdapter(ZaloConfig(base_url=zalo_url, oa_url=zalo_url, oauth_url=zalo_url,
                                     app_id=defaults.app_id, secret_key=defaults.secret_key,
                                     template_id="loa-alert", mode="auto",
                                     proxy="direct" if sim is not None else ""),
                          MemoryTokenStore(next(iter(defaults.access_tokens)),
                                           next(iter(defaults.refresh_tokens))))
    stack.push_async_callback(adapter.aclose)
    return adapter, sim


async def _app(stack: contextlib.AsyncExitStack) -> tuple[WebhookAdapter, WebhookSim]:
    """App push: batches of signed JSON to an in-process push endpoint."""
    sim = WebhookSim(secret=APP_SECRET)
    await sim.start()
    stack.push_async_callback(sim.stop)
    adapter = WebhookAdapter(WebhookConfig(url=sim.url, secret=APP_SECRET, proxy="direct"))
    stack.push_async_callback(adapter.aclose)
    return adapter, sim


def demo_pages(province: Province) -> list[Page]:
    """The demo's pages (the province's, two departments', each district's), with the page ids
    and tokens of its Graph API simulator."""
    named = DEMO_PAGES + [(d.id, f"Trang {d.name}", d.id) for d in province.districts.values()]
    return [Page(id=pid, page_id=str(1_000_000_001 + n), name=name, district=district,
                 token_env="LOA_DEMO_FACEBOOK_TOKEN", token=f"demo-token-{pid}")
            for n, (pid, name, district) in enumerate(named)]


async def _facebook(stack: contextlib.AsyncExitStack, province: Province,
                    settings: Settings) -> tuple[FacebookAdapter, FacebookSim, Settings]:
    """Facebook: the demo's pages on an in-process Graph API simulator; the settings the
    engine makes its waves with (those pages as the channel's targets)."""
    pages = demo_pages(province)
    sim = FacebookSim(FacebookSimConfig(pages={p.page_id: p.token for p in pages}))
    await sim.start()
    stack.push_async_callback(sim.stop)
    config = FacebookConfig(graph_url=sim.url, pages=pages, proxy="direct")
    adapter = FacebookAdapter(config)
    stack.push_async_callback(adapter.aclose)
    return adapter, sim, msgspec.structs.replace(settings, facebook=config)


async def _loudspeaker(stack: contextlib.AsyncExitStack,
                       settings: Settings) -> tuple[Settings, LoudspeakerAdapter, LoudspeakerSim]:
    """Loudspeakers: the simulator's systems (Đông Triều's and Hạ Long's) as the channel's
    targets, bulletins read aloud by espeak-ng and uploaded to them."""
    sim = LoudspeakerSim()
    await sim.start()
    stack.push_async_callback(sim.stop)
    districts = {"dongtrieu": "dong-trieu", "halong": "ha-long"}
    systems = [System(id=system, url=sim.system_url(system), token_env="LOA_DEMO_SPEAKER_TOKEN",
                      token=token, district=districts.get(system, ""))
               for system, token in sim.config.systems.items()]
    config = LoudspeakerConfig(systems=systems, proxy="direct")
    adapter = LoudspeakerAdapter(config)
    stack.push_async_callback(adapter.aclose)
    return msgspec.structs.replace(settings, loudspeaker=config), adapter, sim


async def _portal(stack: contextlib.AsyncExitStack) -> tuple[PortalAdapter, PortalSim]:
    """The portals: a WordPress site and a signed JSON CMS of an in-process portal simulator,
    as the demo's ``[portal]`` sites."""
    sim = PortalSim()
    await sim.start()
    stack.push_async_callback(sim.stop)
    account = sim.config.wordpress[DEFAULT_WORDPRESS]
    adapter = PortalAdapter(PortalConfig(proxy="direct", sites=[
        Site(id=DEFAULT_WORDPRESS, name="Cổng thông tin điện tử tỉnh – chuyên mục Covid-19",
             profile="wordpress", url=sim.site_url(), user=account.user,
             password=account.password, category=min(account.categories)),
        Site(id=DEFAULT_SIGNED, name="Cổng dịch vụ công tỉnh Quảng Ninh", profile="signed_json",
             url=sim.endpoint(), secret=sim.config.signed[DEFAULT_SIGNED])]))
    stack.push_async_callback(adapter.aclose)
    return adapter, sim


async def _cell_broadcast(stack: contextlib.AsyncExitStack, province: Province,
                          settings: Settings,
                          ) -> tuple[CellBroadcastAdapter, CbcSim, Settings]:
    """Cell broadcast: the demo's carriers on an in-process broadcast centre simulator, every
    district shaped by a geocode the simulator takes (``loa-sim``: the district's id); the
    settings the engine makes its waves with (those carriers as the channel's targets)."""
    sim = CbcSim(CbcSimConfig(carriers={c: f"demo-token-{c}" for c in DEMO_CARRIERS}))
    await sim.start()
    stack.push_async_callback(sim.stop)
    config = CellBroadcastConfig(
        carriers=[Carrier(id=c, name=name, url=sim.url_of(c), auth=Auth.BEARER,
                          token_env="LOA_DEMO_CBC_TOKEN", token=f"demo-token-{c}")
                  for c, name in DEMO_CARRIERS.items()],
        sender=settings.cap.sender or DEMO_CAP_SENDER, proxy="direct",
        areas={d: AreaConfig(geocodes={"loa-sim": d}) for d in province.districts})
    adapter = CellBroadcastAdapter(config, settings.cap, province)
    stack.push_async_callback(adapter.aclose)
    return adapter, sim, msgspec.structs.replace(settings, cell_broadcast=config)


async def _prepare(store: Store, recipients: int, plan: Plan, numbering: Numbering,
                   province: Province, settings: Settings, now: dt.datetime) -> None:
    """Generate and import the audience (a no-op when unchanged), set level 4 if it is not."""
    with tempfile.TemporaryDirectory(prefix="loa-demo-") as tmp:
        path = Path(tmp) / "audience.csv"
        audiencegen.generate(path, recipients, seed=1, numbering=numbering, province=province)
        await import_audience(path, store, Validator(numbering, province),
                              chunk_size=settings.engine.chunk_size)
    current = await store.level.get()
    if current is None or current.level != DEMO_LEVEL:
        await set_level(store, plan, now=now, level=DEMO_LEVEL, reason="loa demo", user="demo")


async def _sms(stack: contextlib.AsyncExitStack, matcher: ReceiptMatcher,
               smsc: SmscTarget | None) -> tuple[SmppAdapter, Smsc | None]:
    """SMS over SMPP: to an in-process SMSC simulator, or to ``smsc``."""
    simulator = None
    if smsc is None:
        simulator = Smsc(SmscConfig(stat_mix=STAT_MIX, error_ratio=SMSC_ERROR_RATIO,
                                    error_status=0x0B, seed=1))
        await simulator.start()
        stack.push_async_callback(simulator.stop)
        smsc = SmscTarget("127.0.0.1", simulator.port)
    adapter = SmppAdapter({DEFAULT_LINK: LinkConfig(
        host=smsc.host, port=smsc.port, system_id=smsc.system_id, password=smsc.password,
        binds=2, window=128)}, on_receipt=matcher.add)
    stack.push_async_callback(adapter.aclose)
    return adapter, simulator


def _cap(settings: Settings) -> Settings:
    """Public alerts published as :data:`DEMO_CAP_SENDER` when the settings name no sender."""
    if settings.cap.enabled:
        return settings
    return msgspec.structs.replace(
        settings, cap=msgspec.structs.replace(settings.cap, sender=DEMO_CAP_SENDER))


async def _wifi(stack: contextlib.AsyncExitStack, store: Store, plan: Plan,
                province: Province) -> tuple[WifiPusher, WifiControllerSim]:
    """One Wi-Fi controller simulator and the pusher of the public notices to it."""
    sim = WifiControllerSim(secret=DEMO_WIFI_SECRET)
    await sim.start()
    stack.push_async_callback(sim.stop)
    config = WifiSettings(controllers=[WifiController(
        id="demo-park", url=sim.url, name="Wi-Fi công viên (mô phỏng)",
        secret_env="LOA_DEMO_WIFI_SECRET", secret=DEMO_WIFI_SECRET)], proxy="direct",
        retry_base_seconds=0.2, retry_max_seconds=1.0)
    client = WifiClient(config)
    stack.push_async_callback(client.aclose)
    return WifiPusher(store, plan, province.name, config, client, name="demo",
                      interval=0.2), sim


async def _until_pushed(sim: WifiControllerSim, published: list[Published]) -> None:
    """Until the Wi-Fi controller has the newest public notice (at most
    :data:`WIFI_WAIT_SECONDS`: a demo is not held back by it)."""
    if not published:
        return
    newest = max(published, key=lambda p: p.seq).alert.identifier
    deadline = time.monotonic() + WIFI_WAIT_SECONDS
    while newest not in sim.identifiers and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


async def _snapshot(store: Store, wave_ids: list[str]) -> dict[str, Progress]:
    """Progress of the waves and of their SMS fallback waves."""
    ids = wave_ids + [fallback_wave_id(w) for w in wave_ids]
    return {w: await _progress(store, w) for w in ids}


async def _demo(stack: contextlib.AsyncExitStack, store: Store, *, recipients: int, plan: Plan,
                numbering: Numbering, province: Province, settings: Settings,
                smsc: SmscTarget | None, zalo_url: str | None,
                on_progress: ProgressCallback | None) -> DemoResult:
    stack.push_async_callback(store.aclose)
    now = dt.datetime.now(dt.UTC)
    settings = _cap(settings)
    await _prepare(store, recipients, plan, numbering, province, settings, now)
    matcher = ReceiptMatcher(store)
    sms, simulator = await _sms(stack, matcher, smsc)
    zalo, zalo_sim = await _zalo(stack, matcher, zalo_url)
    app, app_sim = await _app(stack)
    facebook, facebook_sim, settings = await _facebook(stack, province, settings)
    settings, speaker, speaker_sim = await _loudspeaker(stack, settings)
    portal, portal_sim = await _portal(stack)
    settings = msgspec.structs.replace(settings, portal=portal.config)  # the waves' targets
    cbc, cbc_sim, settings = await _cell_broadcast(stack, province, settings)
    pusher, wifi_sim = await _wifi(stack, store, plan, province)
    email = MemoryAdapter(retry_ratio=RETRY_RATIO, fail_ratio=FAIL_RATIO)
    adapters: dict[Channel, Adapter] = {Channel.SMS: sms, Channel.ZALO: zalo, Channel.APP: app,
                                        Channel.EMAIL: email, Channel.FACEBOOK: facebook,
                                        Channel.PORTAL: portal, Channel.LOUDSPEAKER: speaker,
                                        Channel.CELL_BROADCAST: cbc}
    # declared as what they are: the embedded simulators (an SMSC or Zalo given is configured)
    modes = {c: Mode.SIMULATED if c in adapters else Mode.MISSING for c in Channel}
    if smsc is not None:
        modes[Channel.SMS] = Mode.CONFIGURED
    if zalo_url is not None:
        modes[Channel.ZALO] = Mode.CONFIGURED
    failclosed.record(modes)
    engine = Engine(store, plan, settings, province, adapters, numbering.carriers,
                    reconcile=False, receipts=matcher, numbering=numbering)
    wave_ids = await engine.reconciler.trigger_now(now)
    published = await engine.cap.tick(now)  # the level change
    before = await _snapshot(store, wave_ids)
    started = time.perf_counter()
    stop = asyncio.Event()
    runner = asyncio.create_task(engine.run(stop))
    pushing = asyncio.create_task(pusher.run(stop))
    try:
        await _until_done(store, wave_ids, runner, matcher, on_progress)
        published += await engine.cap.tick(dt.datetime.now(dt.UTC))  # the public waves sent
        await _until_pushed(wifi_sim, published)
    finally:
        stop.set()
        await runner
        await pushing
    seconds = time.perf_counter() - started
    after = await _snapshot(store, wave_ids)

    def delta(field: str, ids: list[str]) -> int:
        return sum(getattr(after[w], field) - getattr(before[w], field) for w in ids)

    sent_by = {c.value: 0 for c in Channel}
    for w in wave_ids:
        sent_by[_wave_channel(w)] += delta("sent", [w])
    # SMS to recipients Zalo could not reach (the Zalo waves' companion SMS waves)
    sent_by[Channel.SMS.value] += delta("sent", [fallback_wave_id(w) for w in wave_ids])
    sent = sum(sent_by.values())
    # counted at the far end: a phone that got a text it already had (SMSC: by number and
    # text; the Zalo and push simulators: a recipient's second message of one run)
    duplicates = email.duplicates + sum(n - 1 for n in app_sim.received.values() if n > 1)
    # a page with the same post twice
    duplicates += sum(n - 1 for posts in facebook_sim.posts.values()
                      for n in Counter(p.message for p in posts).values() if n > 1)
    # a carrier that took one wave's alert twice (its centre answers 409 to a second try)
    duplicates += sum(n - 1 for c in cbc_sim.broadcasts
                      for n in Counter(b.identifier for b in cbc_sim.alerts(c)).values() if n > 1)
    # a system that took one wave's broadcast twice (the simulator keeps one per id: never)
    duplicates += sum(len(taken) - len({b.key for b in taken})
                      for taken in speaker_sim.broadcasts.values())
    # a wave published twice on a portal: two posts asked with its slug, two notices of it
    duplicates += sum(n - 1 for n in portal_sim.slugs().values() if n > 1)
    duplicates += sum(n - 1 for n in portal_sim.waves().values() if n > 1)
    if simulator is not None:
        duplicates += simulator.stats.duplicates
    if zalo_sim is not None:
        duplicates += zalo_sim.duplicates
    return DemoResult(
        recipients=recipients, messages=sent_by, sent=sent, duplicates=duplicates,
        failed=delta("failed", wave_ids), dead_letters=delta("dead_letters", wave_ids),
        delivered=delta("delivered", wave_ids), sms_fallback=delta("fallback", wave_ids),
        seconds=round(seconds, 3),
        msgs_per_s=round(sent / seconds, 1) if seconds > 0 else 0.0, waves=wave_ids,
        simulated=[c.value for c, m in modes.items() if m is Mode.SIMULATED],
        published=portal_sim.stats.created + portal_sim.stats.notices,
        cap_messages=len(published), wifi_notices=len(wifi_sim.notices))


async def _until_done(store: Store, wave_ids: list[str], runner: asyncio.Task[None],
                      matcher: ReceiptMatcher, on_progress: ProgressCallback | None) -> None:
    """Until every wave is finished and receipts stop coming in (a receipt can stay unmatched:
    a part accepted of a message whose other part was refused)."""
    quiet, matched = 0, -1
    while not runner.done():  # an engine that stopped on an error raises it to the caller
        states = await store.waves.states(wave_ids)
        if on_progress is not None:
            on_progress({w: await _progress(store, w) for w in wave_ids})
        if all(states.get(w) in WAVE_FINAL for w in wave_ids):
            quiet = quiet + 1 if matcher.stats.matched == matched else 0
            matched = matcher.stats.matched
            if matcher.pending == 0 or quiet >= RECEIPT_QUIET_STEPS:
                return
        await asyncio.sleep(0.2)


def _wave_channel(wave_id: str) -> str:
    return wave_id.split("-")[1]  # plan wave ids are L<level>-<channel>-<slot>


async def _progress(store: Store, wave_id: str) -> Progress:
    wave = await store.waves.get(wave_id)
    return await wave_progress(store, wave) if wave is not None else Progress()
