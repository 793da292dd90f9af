"""``loa campaign``: the department's verbs on campaigns. Those that change a campaign go
through the API with a token (:mod:`dispatcher.service.cli.gate`; ``--admin-direct``: Redis
directly, audited); ``show`` and ``list`` read the store (Redis)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec

from dispatcher.domain import numberlist, zns
from dispatcher.domain.errors import InputError
from dispatcher.domain.model import (
    DEFAULT_MAX_PARTS,
    MAX_PARTS_LIMIT,
    Campaign,
    Channel,
    Kind,
    OverQuota,
    Priority,
    Selector,
)
from dispatcher.domain.province import load_province
from dispatcher.domain.textcheck import visible
from dispatcher.engine import numberlists
from dispatcher.engine.campaigns import Campaigns
from dispatcher.engine.numberlists import ListReport
from dispatcher.engine.process import Progress, wave_progress
from dispatcher.service.api.schemas import ActionBody, CampaignCreate, CampaignDetail
from dispatcher.service.cli import gate, lists, storeopts
from dispatcher.service.cli.output import console, print_json
from dispatcher.service.cli.runtime import run_async
from dispatcher.service.settings import load_settings
from dispatcher.store import Store, open_store


def register(sub: Any) -> None:
    parser = sub.add_parser("campaign", help="create, approve, pause, cancel and show campaigns",
                            description="Campaigns. create, approve, pause, resume and cancel "
                                        "go through the API (--api URL, a token in LOA_TOKEN "
                                        "or --token-file) with its roles, approval rules and "
                                        "audit log; --admin-direct writes to Redis directly "
                                        "(audited). show and list read Redis.")
    group = parser.add_subparsers(dest="campaign_command", metavar="COMMAND", required=True)

    create = group.add_parser("create", help="create a campaign (approved at once when small)")
    create.add_argument("--title", required=True)
    create.add_argument("--channels", default="sms", help="comma-separated (default sms)")
    create.add_argument("--text", required=True, help="the message, for every channel")
    create.add_argument("--districts", default="", help="comma-separated district ids "
                                                        "(default: the whole province)")
    create.add_argument("--kinds", default="", help="resident,visitor,official (default: all)")
    create.add_argument("--list", default="", metavar="FILE|ID", dest="audience_list",
                        help="the whole of a list of numbers, not the province's audience: a "
                             "file (.csv with an msisdn column, or a .json array), uploaded "
                             "first as loa list upload does, or the id of one uploaded before")
    create.add_argument("--urgent", action="store_true",
                        help="send at once, outside the sending hours too")
    create.add_argument("--sms-fallback", action="store_true",
                        help="recipients Zalo cannot reach get the text by SMS")
    create.add_argument("--public-safety", action="store_true",
                        help="a public-safety alert: reach the numbers on the suppression "
                             "lists too (every other campaign skips them)")
    create.add_argument("--over-quota", choices=[p.value for p in OverQuota], default=None,
                        help="Zalo recipients beyond the OA's daily quota: sms (at once, needs "
                             "--sms-fallback) or wait for the reset (default: sms when "
                             "--urgent, else wait)")
    create.add_argument("--owner", default="", help="lead unit (đơn vị chủ trì)")
    create.add_argument("--max-parts", type=int, default=DEFAULT_MAX_PARTS, metavar="N",
                        help=f"refuse an SMS text of more than N parts (1-{MAX_PARTS_LIMIT}, "
                             f"default {DEFAULT_MAX_PARTS})")
    create.add_argument("--zns-template", default="", metavar="NAME",
                        help="Zalo ZNS by this typed template of [zalo.templates]")
    create.add_argument("--zns-param", action="append", default=[], metavar="NAME=VALUE",
                        help="a value of the template's parameter (repeatable; {date}: the day "
                             "the wave is made)")
    storeopts.add_record_options(create, changes=True)
    create.set_defaults(func=cmd_create)

    for verb, text in (("approve", "approve a campaign (not its creator)"),
                       ("pause", "pause a running campaign"),
                       ("resume", "resume a paused campaign"),
                       ("cancel", "stop sending a campaign now"),
                       ("show", "a campaign and its progress per channel")):
        p = group.add_parser(verb, help=text)
        p.add_argument("id", metavar="ID")
        if verb in ("pause", "resume", "cancel"):
            p.add_argument("--reason", default="",
                           help="why (kept with the campaign; required to pause or cancel the "
                                "plan's own campaigns)")
        storeopts.add_record_options(p, changes=verb != "show")
        p.set_defaults(func=cmd_verb, verb=verb)
    listing = group.add_parser("list", help="every campaign with its state")
    storeopts.add_record_options(listing)
    listing.set_defaults(func=cmd_list)



def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _open(args: argparse.Namespace) -> tuple[Store, Campaigns]:
    settings = load_settings(args.config)
    url = args.redis or settings.redis.url
    if not url:
        raise InputError("this command needs a Redis: give --redis URL or set LOA_REDIS_URL")
    store = open_store(url)
    return store, Campaigns(store, settings, load_province())


def _zns_params(items: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--zns-param: {item!r} is not NAME=VALUE (area=\"Hạ Long\")")
        params[name.strip()] = value.strip()
    return params


def cmd_create(args: argparse.Namespace) -> int:
    try:
        channels = [Channel(c) for c in _split(args.channels)]
        selector = Selector(districts=_split(args.districts),
                            kinds=[Kind(k) for k in _split(args.kinds)])
    except ValueError as exc:
        raise InputError(f"--channels/--kinds: {exc}") from None

    params = _zns_params(args.zns_param)
    via = gate.gate(args, "loa campaign create")
    priority = Priority.URGENT if args.urgent else Priority.NORMAL
    over_quota = OverQuota(args.over_quota) if args.over_quota else None

    listed: list[ListReport] = []

    async def go() -> Campaign:
        audience_list = args.audience_list
        if audience_list and not audience_list.startswith(numberlists.PREFIX) \
                and Path(audience_list).is_file():
            path = Path(audience_list)
            fmt = numberlist.JSON if path.suffix.lower() == ".json" else numberlist.CSV
            listed.append(await lists.upload(via, args, path, fmt, path.name))
            audience_list = listed[0].id
        if isinstance(via, gate.Api):
            body = CampaignCreate(title=args.title, channels=channels, text=args.text,
                                  selector=selector, priority=priority, owner=args.owner,
                                  sms_fallback=args.sms_fallback, max_parts=args.max_parts,
                                  zns_template=args.zns_template, zns_params=params,
                                  over_quota=over_quota, audience_list=audience_list,
                                  public_safety=args.public_safety)
            _, answer = await gate.call(via, "POST", "/v1/campaigns", body)
            return msgspec.convert(answer, Campaign)
        store, campaigns = _open(args)
        try:
            return await gate.audited(via, "campaign.create", "(new)", campaigns.create(
                title=args.title, channels=channels, texts=dict.fromkeys(channels, args.text),
                created_by=via.user, now=dt.datetime.now(dt.UTC), selector=selector,
                priority=priority, owner=args.owner, sms_fallback=args.sms_fallback,
                max_parts=args.max_parts, zns=zns.message(args.zns_template, params),
                over_quota=over_quota, audience_list=audience_list,
                public_safety=args.public_safety),
                {"title": args.title, "text": args.text,
                 "channels": [c.value for c in channels], "audience_list": audience_list,
                 "public_safety": args.public_safety})
        finally:
            await store.aclose()

    campaign = run_async(go())
    if args.json:
        print_json(campaign)
    else:
        for r in listed:
            console().print(f"list {r.id} ({visible(r.name)}): {r.valid:,} numbers of "
                            f"{r.rows:,} rows ({r.duplicates:,} duplicates, {r.rejected:,} "
                            f"rejected: loa list check FILE lists them)", markup=False)
        console().print(f"campaign {campaign.id}: {campaign.state} "
                        f"({campaign.audience_size:,} recipients)", markup=False)
    return 0


async def _through_api(api: gate.Api, args: argparse.Namespace) -> CampaignDetail:
    """The verb through the API; the campaign as it is then, with its progress."""
    body = None if args.verb == "approve" else ActionBody(reason=args.reason)
    path = f"/v1/campaigns/{quote(args.id, safe='')}"
    await gate.call(api, "POST", f"{path}/{args.verb}", body)
    _, answer = await gate.call(api, "GET", path)
    return msgspec.convert(answer, CampaignDetail)


def _print_detail(args: argparse.Namespace, detail: CampaignDetail) -> int:
    if args.json:
        print_json(detail)
        return 0
    out = console()
    campaign = detail.campaign
    out.print(f"campaign {campaign.id} ({campaign.title}): {campaign.state}", markup=False)
    for channel, p in detail.progress.items():
        out.print(f"  {channel}: {p.sent:,}/{p.total:,} sent, {p.queued:,} queued, "
                  f"{p.retrying:,} retrying, {p.failed:,} failed, "
                  f"{p.delivered:,} delivered", markup=False)
    return 0


def cmd_verb(args: argparse.Namespace) -> int:
    via = gate.gate(args, f"loa campaign {args.verb}") if args.verb != "show" else None
    if isinstance(via, gate.Api):
        return _print_detail(args, run_async(_through_api(via, args)))

    async def go() -> tuple[Campaign, dict[str, Progress]]:
        store, campaigns = _open(args)
        try:
            if isinstance(via, gate.Direct) and args.verb == "approve":
                campaign = await gate.audited(via, "campaign.approve", args.id,
                                              campaigns.approve(args.id, via.user))
            elif isinstance(via, gate.Direct):
                act = {"pause": campaigns.pause, "resume": campaigns.resume,
                       "cancel": campaigns.cancel}[args.verb]
                campaign = await gate.audited(
                    via, f"campaign.{args.verb}", args.id,
                    act(args.id, user=via.user, reason=args.reason), {"reason": args.reason})
            else:
                campaign = await campaigns.get(args.id)
            progress = {w.channel.value: await wave_progress(store, w)
                        for w in await campaigns.waves(campaign.id)}
            return campaign, progress
        finally:
            await store.aclose()

    campaign, progress = run_async(go())
    if args.json:
        print_json({"campaign": campaign, "progress": progress})
        return 0
    out = console()
    out.print(f"campaign {visible(campaign.id)} ({visible(campaign.title)}): {campaign.state}",
              markup=False)
    for channel, p in progress.items():
        out.print(f"  {channel}: {p.sent:,}/{p.total:,} sent, {p.queued:,} queued, "
                  f"{p.retrying:,} retrying, {p.dead_letters:,} dead letters, "
                  f"{p.delivered:,} delivered", markup=False)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    async def go() -> list[Campaign]:
        store, _ = _open(args)
        try:
            return await store.campaigns.all()
        finally:
            await store.aclose()

    found = run_async(go())
    if args.json:
        print_json({"campaigns": found})
        return 0
    out = console()
    for c in found:
        out.print(f"{visible(c.id)}  {c.state:<16} {c.created_at:%Y-%m-%d %H:%M}  "
                  f"{visible(c.title)}", markup=False)
    return 0
