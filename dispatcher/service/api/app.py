"""The HTTP API (ASGI, Litestar): the level, the plan, campaigns, previews, the Zalo webhook,
health, the operator console's pages (:mod:`dispatcher.service.console`, at ``/console/``) and
the public routes (:mod:`dispatcher.service.api.public`: the CAP feed and the public notice,
under ``/public``, with no token).

Everything the department does goes through :func:`create_app`'s routes under ``/v1``, each
behind a bearer token whose role must allow it (:mod:`dispatcher.service.auth`); every
state-changing call is written to the audit log (:mod:`dispatcher.service.audit`). The OpenAPI
schema is served at ``/schema/openapi.json`` (and ``/schema``) as JSON only, no renderer page.
Errors are RFC 9457 problem details
(:mod:`dispatcher.service.api.problems`); anything unexpected is logged and answered 500 with the
detail ``internal error`` and nothing more.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from litestar import Litestar, Request, Response, Router, delete, get, post, put
from litestar.datastructures import ResponseHeader, State
from litestar.exceptions import (
    HTTPException,
    ValidationException,
)
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from adapters.base import QuotaReader
from dispatcher import __version__
from dispatcher.domain import smstext, textcheck, zns
from dispatcher.domain.errors import (
    InputError,
    LoaError,
    NotFound,
    StateError,
    StoreUnavailable,
    TextError,
)
from dispatcher.domain.model import (
    OUTLETS,
    VN,
    Campaign,
    Channel,
    LevelState,
    OverQuota,
    PendingLevel,
    Selector,
    StopState,
    Wave,
    over_quota_default,
)
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine import approval, campaigntext, numberlists, opening, routing, textedits
from dispatcher.engine.campaigns import new_campaign_id
from dispatcher.engine.capacity import Capacity, capacity
from dispatcher.engine.level import confirm_level, pending_level, propose_level
from dispatcher.engine.opening import OpeningStatus
from dispatcher.engine.process import Progress, wave_progress
from dispatcher.engine.stop import lift, stop_all
from dispatcher.service import console, failclosed, zns_check
from dispatcher.service.api import (
    broadcasts,
    checklist,
    deadletters,
    incoming,
    lists,
    plantexts,
    public,
    recipients,
    situation,
    suppressions,
)
from dispatcher.service.api.config import ApiConfig
from dispatcher.service.api.context import (
    ADMIN,
    APPROVER,
    AUTH,
    BEARER,
    MISSING_FIELD,
    OPERATOR,
    VIEWER,
    Clock,
    Services,
    audited_call,
    caller,
    errors,
    optional_body,
    services_of,
    strict_body,
    webhook_for,
)
from dispatcher.service.api.openapi import StructDefaultsPlugin, exact_components, use_components
from dispatcher.service.api.planview import plan_view
from dispatcher.service.api.problems import (
    BODY_TOO_LARGE,
    INTERNAL,
    PROBLEM_BASE,
    UNAVAILABLE,
    Problem,
    ProblemType,
    problem,
    problem_for,
)
from dispatcher.service.api.problems import MEDIA_TYPE as PROBLEM_JSON
from dispatcher.service.api.schemas import (
    LEVEL_SET_ONE_OF,
    ActionBody,
    CampaignCreate,
    CampaignDetail,
    ChannelPreview,
    ChannelProgress,
    Health,
    LevelConfirm,
    LevelSet,
    LiftBody,
    Me,
    PlanView,
    Preview,
    PreviewRequest,
    Ready,
    RoutePreview,
    SmsPreview,
    StopBody,
    WebhookAck,
    ZaloCapacity,
)
from dispatcher.service.api.webhook import OnZaloEvents, zalo_webhook
from dispatcher.service.audit import AuditLog, AuditRecord, read_tail
from dispatcher.service.channels import Mode
from dispatcher.service.settings import Settings
from dispatcher.store.base import AudienceMeta, Store

log = logging.getLogger(__name__)

SCAN_CHUNKS = 64  # audience chunks read per round trip when counting carriers
READY_TIMEOUT = 2.0


# -- errors: RFC 9457 problem details (dispatcher.service.api.problems) ------------------------


def _problem(request: Request[Any, Any, Any], kind: ProblemType, detail: str,
             field: str | None = None, headers: dict[str, str] | None = None) -> Response[Any]:
    body = problem(kind, detail, quote(request.url.path, safe="/:@!$&'()*+,;="), field)
    return Response(msgspec.json.encode(body), status_code=kind.status, headers=headers,
                    media_type=PROBLEM_JSON)


def _loa_error(request: Request[Any, Any, Any], exc: LoaError) -> Response[Any]:
    kind = problem_for(exc)
    if kind is INTERNAL:
        log.error("API: %s: %s", type(exc).__name__, exc)  # e.g. ConfigError: ours, not theirs
        return _problem(request, INTERNAL, "internal error")
    return _problem(request, kind, str(exc), exc.field if isinstance(exc, InputError) else None)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    kind = problem_for(exc)
    message, field = exc.detail or kind.title, None
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        keyed = [(item.get("key"), str(item.get("message", ""))) for item in exc.extra
                 if isinstance(item, dict)]
        keyed = [(key if key and key != "data" else None, text) for key, text in keyed]
        field = next((key for key, _ in keyed if key), None)
        if field is None and len(keyed) == 1 and (missing := MISSING_FIELD.search(keyed[0][1])):
            field = missing.group("key")  # a required field left out names that field
        if len(keyed) == 1 and field:
            message = f"{field}: {keyed[0][1]}"
        elif keyed:
            message = "invalid request: " + "; ".join(
                f"{key}: {text}" if key else text for key, text in keyed)
    if kind is BODY_TOO_LARGE:
        limit = services_of(request.app.state).api.request_max_body_size
        message = f"request body too large (the limit is {limit} bytes)"
    if kind.status >= 500:
        log.error("API: HTTP %s: %s", exc.status_code, exc.detail)
        message = "internal error"
    return _problem(request, kind, message, field, exc.headers)


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("API: %s %s failed", request.method, request.url.path, exc_info=exc)
    return _problem(request, INTERNAL, "internal error")


# -- who, and the plan ----------------------------------------------------------------------------


@get("/v1/me", guards=VIEWER, tags=["users"],
     summary="Who the bearer token belongs to, and its role", security=BEARER,
     responses=errors(400, *AUTH))
async def me(request: Request[Any, Any, Any]) -> Me:
    user = caller(request)
    return Me(user.name, user.role)


@get("/v1/plan", guards=VIEWER, tags=["level"],
     summary="The plan: per level and channel the cadence, the next send, the lead unit and the "
             "message; the province's districts",
     security=BEARER, responses=errors(400, *AUTH))
async def get_plan(state: State) -> PlanView:
    s = services_of(state)
    current = await s.store.situation.get()  # the texts as a wave made now would send them
    # the approved texts in force, and those the plan refuses (the file's text goes)
    plan, versions, refused = await textedits.effective_plan(s.store, s.plan)
    return plan_view(plan, s.province, s.clock(),
                     situation=current.situation if current else None, versions=versions,
                     refused=refused, targets={c: s.settings.targets(c) for c in OUTLETS})


# -- level ----------------------------------------------------------------------------------------


@get("/v1/level", guards=VIEWER, tags=["level"], summary="The current epidemic level",
     security=BEARER, responses=errors(*AUTH, 404))
async def get_level(state: State) -> LevelState:
    current = await services_of(state).store.level.get()
    if current is None:
        raise NotFound("no level has been set yet")
    return current


@put("/v1/level", guards=OPERATOR, tags=["level"], status_code=200,
     summary="Set the level, by confirmed cases or directly, with a `reason`; a change that "
             "raises it answers 202 `{\"pending\": true, ...}` and waits for an approver's "
             "confirmation (`POST /v1/level/confirm`), the level in force unchanged",
     security=BEARER, responses={
         202: ResponseSpec(PendingLevel, description="the change waits for its confirmation",
                           generate_examples=False),
         **errors(400, *AUTH, 413)})
async def put_level(request: Request[Any, Any, Any], state: State,
                    data: JSONBody[LevelSet]) -> Response[LevelState | PendingLevel]:
    s = services_of(state)
    data = await strict_body(request, LevelSet)
    before = await s.store.level.get()
    detail = {**msgspec.to_builtins(data), "before": _level_of(before)}

    async def propose() -> LevelState | PendingLevel:
        outcome = await propose_level(
            s.store, s.plan, now=s.clock(), cases=data.cases, level=data.level,
            reason=data.reason, user=caller(request).name,
            confirm_seconds=s.api.level_confirm_seconds, single_person=s.api.level_single_person)
        if isinstance(outcome, PendingLevel):  # the record says it waits, and for which change
            detail.update(pending=outcome.id, proposed=outcome.level)
        return outcome

    def after(outcome: LevelState | PendingLevel) -> dict[str, Any]:
        if isinstance(outcome, PendingLevel):
            return {"pending": outcome.id, "proposed": outcome.level,
                    "after": _level_of(before)}  # in force until confirmed
        return {"after": _level_of(outcome)}

    outcome = await audited_call(request, "level.set", "level", propose(), detail, after=after)
    return Response(outcome, status_code=202 if isinstance(outcome, PendingLevel) else 200)


def _level_of(state: LevelState | None) -> dict[str, Any] | None:
    """A level for the audit log: the level and the cases it was set by (None: never set)."""
    return None if state is None else {"level": state.level, "cases": state.cases}


@get("/v1/level/pending", guards=VIEWER, tags=["level"],
     summary="The level change waiting for its confirmation: who proposed it, why, and until when",
     security=BEARER, responses=errors(400, *AUTH, 404))
async def get_pending_level(state: State) -> PendingLevel:
    s = services_of(state)
    pending = await pending_level(s.store, s.clock())
    if pending is None:
        raise NotFound("no level change waits for a confirmation")
    return pending


@post("/v1/level/confirm", guards=APPROVER, tags=["level"], status_code=200,
      summary="Confirm the level change waiting (an approver, not its proposer, with a "
              "`reason`): it takes effect",
      security=BEARER, responses=errors(400, *AUTH, 409, 413))
async def confirm_level_change(request: Request[Any, Any, Any], state: State,
                               data: JSONBody[LevelConfirm]) -> LevelState:
    s = services_of(state)
    body = await strict_body(request, LevelConfirm)
    pending = await s.store.level.pending()
    before = await s.store.level.get()
    detail: dict[str, Any] = {"reason": body.reason, "id": body.id, "before": _level_of(before)}
    if pending is not None:
        detail["pending"] = msgspec.to_builtins(pending)
    return await audited_call(request, "level.confirm", "level", confirm_level(
        s.store, s.plan, now=s.clock(), user=caller(request).name, reason=body.reason,
        pending_id=body.id), detail, after=lambda now: {"after": _level_of(now)})


@get("/v1/level/history", guards=VIEWER, tags=["level"], summary="Level history, newest first",
     opt={"query": ["limit"]}, security=BEARER, responses=errors(400, *AUTH))
async def level_history(state: State,
                        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
                        ) -> list[LevelState]:
    return await services_of(state).store.level.history(limit)


@get("/v1/level/openings", guards=VIEWER, tags=["level"],
     summary="The opening messages of the level in force: per channel, sent (its wave, state "
             "and count), damped or missed, and when",
     security=BEARER, responses=errors(*AUTH))
async def level_openings(state: State) -> list[OpeningStatus]:
    store = services_of(state).store
    return await opening.statuses(store, await store.level.get())


# -- campaigns ------------------------------------------------------------------------------------


def _idempotent_id(user: str, key: str) -> str:
    digest = hashlib.sha256(f"{user}\0{key}".encode()).hexdigest()[:16]
    return f"c-k{digest}"


def _same(campaign: Campaign, data: CampaignCreate) -> bool:
    return (campaign.title == data.title.strip() and campaign.channels == data.channels
            and campaign.texts == data.resolved_texts() and campaign.selector == data.selector
            and campaign.priority == data.priority
            and campaign.audience_list == data.audience_list
            and campaign.public_safety == data.public_safety)


async def _replay(s: Services, campaign_id: str, data: CampaignCreate) -> Campaign | None:
    existing = await s.store.campaigns.get(campaign_id)
    if existing is None:
        return None
    if not _same(existing, data):
        raise StateError("this Idempotency-Key was used for a different campaign")
    return existing


@post("/v1/campaigns", guards=OPERATOR, tags=["campaigns"], status_code=201,
      summary="Create a campaign (Idempotency-Key: the same key again answers the same one)",
      security=BEARER, responses=errors(400, *AUTH, 409, 413, 422))
async def create_campaign(
    request: Request[Any, Any, Any], state: State, data: JSONBody[CampaignCreate],
    idempotency_key: Annotated[str | None, HeaderParameter(
        name="Idempotency-Key", min_length=1, max_length=200)] = None,
) -> Campaign:
    s = services_of(state)
    data = await strict_body(request, CampaignCreate)
    user = caller(request)
    key_id = _idempotent_id(user.name, idempotency_key) if idempotency_key else None
    if key_id is not None:
        replayed = await _replay(s, key_id, data)
        if replayed is not None:
            return replayed
    failclosed.require(s.modes, data.channels, data.sms_fallback)
    textcheck.check(data.text, "text")  # also where no channel uses it
    for name, written in data.texts.items():
        textcheck.check(written, f"texts.{name}")
    campaign_id = key_id or new_campaign_id(s.clock())

    async def create() -> Campaign:
        try:
            return await s.campaigns.create(
                title=data.title, channels=data.channels, texts=data.resolved_texts(),
                created_by=user.name, now=s.clock(), selector=data.selector,
                priority=data.priority, owner=data.owner, coordinating=data.coordinating,
                subject=data.subject, strip_diacritics=data.strip_diacritics,
                campaign_id=campaign_id, start_at=data.start_at, sms_fallback=data.sms_fallback,
                max_parts=data.max_parts, zns=zns.message(data.zns_template, data.zns_params),
                over_quota=data.over_quota, audience_list=data.audience_list,
                public_safety=data.public_safety)
        except StateError:
            if key_id is not None:  # the same key, at the same moment
                replayed = await _replay(s, key_id, data)
                if replayed is not None:
                    return replayed
            raise

    detail = {"title": data.title, "channels": list(data.channels),
              "texts": msgspec.to_builtins(data.resolved_texts()),
              "selector": msgspec.to_builtins(data.selector), "priority": data.priority,
              "start_at": msgspec.to_builtins(data.start_at),
              "sms_fallback": data.sms_fallback, "over_quota": data.over_quota,
              "audience_list": data.audience_list, "public_safety": data.public_safety,
              "idempotency_key": idempotency_key}
    campaign = await audited_call(request, "campaign.create", campaign_id, create(), detail,
                              after=lambda c: {"state": c.state, "audience_size": c.audience_size})
    return campaign


@get("/v1/campaigns", guards=VIEWER, tags=["campaigns"], summary="Every campaign, newest first",
     security=BEARER, responses=errors(*AUTH))
async def list_campaigns(state: State) -> list[Campaign]:
    campaigns = await services_of(state).store.campaigns.all()
    return sorted(campaigns, key=lambda c: c.created_at, reverse=True)


@get("/v1/campaigns/{campaign_id:str}", guards=VIEWER, tags=["campaigns"],
     summary="A campaign and its progress per channel",
     security=BEARER, responses=errors(400, *AUTH, 404))
async def get_campaign(state: State, campaign_id: FromPath[str]) -> CampaignDetail:
    s = services_of(state)
    campaign = await s.campaigns.get(campaign_id)
    waves = await s.campaigns.waves(campaign.id)
    states = await s.store.waves.states([w.id for w in waves]) if waves else {}
    now = s.clock()
    progress: dict[Channel, ChannelProgress] = {}
    for wave in waves:
        p = await wave_progress(s.store, wave)
        done = p.sent + p.failed + p.expired + p.cancelled
        elapsed = max((now - wave.created_at).total_seconds(), 0.0)
        rate = done / elapsed if elapsed > 0 else 0.0
        left = p.queued + p.retrying
        eta = 0.0 if left == 0 else (left / rate if rate > 0 else None)
        state_ = states.get(wave.id)
        progress[wave.channel] = ChannelProgress(
            wave=wave.id, state=str(state_) if state_ is not None else "unknown", total=p.total,
            queued=p.queued, sent=p.sent, delivered=p.delivered, failed=p.failed,
            retrying=p.retrying, dead_lettered=p.dead_letters, cancelled=p.cancelled,
            fallback=p.fallback, suppressed=p.suppressed, rate=round(rate, 3),
            eta_seconds=round(eta, 1) if eta is not None else None,
            **_quota_progress(wave, p))
    return CampaignDetail(campaign=campaign, progress=progress)


def _quota_progress(wave: Wave, p: Progress) -> dict[str, Any]:
    """A Zalo wave's quota counters (nothing for another channel)."""
    if wave.channel is not Channel.ZALO:
        return {}
    return {"over_quota": p.over_quota, "quota_unknown": p.quota_unknown > 0}


@post("/v1/campaigns/{campaign_id:str}/approve", guards=APPROVER, tags=["campaigns"],
      status_code=200, summary="Approve (by another user than the creator)",
      security=BEARER, responses=errors(400, *AUTH, 404, 409))
async def approve_campaign(request: Request[Any, Any, Any], state: State,
                           campaign_id: FromPath[str]) -> Campaign:
    s = services_of(state)
    return await audited_call(request, "campaign.approve", campaign_id,
                          s.campaigns.approve(campaign_id, caller(request).name),
                          after=lambda c: {"state": c.state, "created_by": c.created_by})


async def _act(request: Request[Any, Any, Any], state: State, campaign_id: str,
               verb: str) -> Campaign:
    """Pause, resume or cancel ``campaign_id``, with the reason the body gives."""
    body = await optional_body(request, ActionBody) or ActionBody()
    campaigns = services_of(state).campaigns
    action = {"pause": campaigns.pause, "resume": campaigns.resume,
              "cancel": campaigns.cancel}[verb]
    return await audited_call(request, f"campaign.{verb}", campaign_id,
                          action(campaign_id, user=caller(request).name, reason=body.reason),
                          {"reason": body.reason})


PLAN_REASON = ("; a plan campaign (level set) needs a `reason`: pausing it holds its current wave "
               "and its next slots until resumed")


@post("/v1/campaigns/{campaign_id:str}/pause", guards=OPERATOR, tags=["campaigns"],
      status_code=200, summary="Pause a running campaign" + PLAN_REASON,
      security=BEARER, responses=errors(400, *AUTH, 404, 409, 413))
async def pause_campaign(request: Request[Any, Any, Any], state: State,
                         campaign_id: FromPath[str],
                         data: JSONBody[ActionBody | None] = None) -> Campaign:
    return await _act(request, state, campaign_id, "pause")


@post("/v1/campaigns/{campaign_id:str}/resume", guards=OPERATOR, tags=["campaigns"],
      status_code=200, summary="Resume a paused campaign (only a paused one)",
      security=BEARER, responses=errors(400, *AUTH, 404, 409, 413))
async def resume_campaign(request: Request[Any, Any, Any], state: State,
                          campaign_id: FromPath[str],
                          data: JSONBody[ActionBody | None] = None) -> Campaign:
    return await _act(request, state, campaign_id, "resume")


@post("/v1/campaigns/{campaign_id:str}/cancel", guards=OPERATOR, tags=["campaigns"],
      status_code=200,
      summary="Cancel a campaign (stops its waves at once); a plan campaign (level set) needs a "
              "`reason`, and runs again at its next slot",
      security=BEARER, responses=errors(400, *AUTH, 404, 409, 413))
async def cancel_campaign(request: Request[Any, Any, Any], state: State,
                          campaign_id: FromPath[str],
                          data: JSONBody[ActionBody | None] = None) -> Campaign:
    return await _act(request, state, campaign_id, "cancel")


# -- the emergency stop ---------------------------------------------------------------------------


@get("/v1/stop", guards=VIEWER, tags=["stop"],
     summary="The emergency stop: whether it is on, since when, by whom and why",
     security=BEARER, responses=errors(400, *AUTH))
async def get_stop(state: State) -> StopState:
    current = await services_of(state).store.stop.get()
    return current or StopState(active=False, at=dt.datetime(1970, 1, 1, tzinfo=dt.UTC))


@post("/v1/stop", guards=OPERATOR, tags=["stop"], status_code=200,
      summary="Stop everything now: every worker sends nothing more until it is lifted "
              "(a `reason` is required)",
      security=BEARER, responses=errors(400, *AUTH, 413))
async def post_stop(request: Request[Any, Any, Any], state: State,
                    data: JSONBody[StopBody]) -> StopState:
    s = services_of(state)
    body = await strict_body(request, StopBody)
    return await audited_call(request, "stop", "everything", stop_all(
        s.store, now=s.clock(), user=caller(request).name, reason=body.reason),
        {"reason": body.reason})


@delete("/v1/stop", guards=OPERATOR, tags=["stop"], status_code=200,
        summary="Lift the emergency stop: sending goes on where it was",
        security=BEARER, responses=errors(400, *AUTH, 413))
async def delete_stop(request: Request[Any, Any, Any], state: State,
                      data: JSONBody[LiftBody | None] = None) -> StopState:
    s = services_of(state)
    body = await optional_body(request, LiftBody) or LiftBody()
    return await audited_call(request, "stop.lift", "everything", lift(
        s.store, now=s.clock(), user=caller(request).name, reason=body.reason),
        {"reason": body.reason})


# -- the audit log -------------------------------------------------------------------------------


@get("/v1/audit", guards=ADMIN, tags=["audit"],
     summary="The newest records of the audit log, newest first (admins only)",
     opt={"query": ["limit"]}, security=BEARER, responses=errors(400, *AUTH))
async def get_audit(state: State,
                    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
                    ) -> list[AuditRecord]:
    audit = services_of(state).audit
    return await asyncio.to_thread(read_tail, audit.path, limit)


# -- preview --------------------------------------------------------------------------------------


def sms_route_tps(settings: Settings, route: str) -> float:
    """Messages per second the route ``sms.<group>`` may send (0: no limit): the lower of its
    ``[rates]`` entry and its SMPP link's ``tps x binds`` (``[smpp.<group>]`` or
    ``[smpp.default]``)."""
    limits = []
    if settings.rate(route) > 0:
        limits.append(settings.rate(route))
    group = route.split(".", 1)[1] if "." in route else route
    link = settings.smpp.get(group) or settings.smpp.get("default")
    if link is not None and link.tps > 0:
        limits.append(link.tps * link.binds)
    return min(limits) if limits else 0.0


async def _carriers(s: Services, meta: AudienceMeta, selector: Selector) -> dict[str, int]:
    key = (meta.version, msgspec.json.encode(selector))
    cached = s.carrier_counts.get(key)
    if cached is not None:
        return cached
    numbers = [n for g in meta.groups if selector.matches(g.district, g.kind) for n in g.chunks]
    counts: dict[str, int] = {}
    for i in range(0, len(numbers), SCAN_CHUNKS):
        for chunk in await s.store.audiences.chunks(meta.version, numbers[i:i + SCAN_CHUNKS]):
            for r in chunk.recipients:
                counts[r.carrier] = counts.get(r.carrier, 0) + 1
    if len(s.carrier_counts) > 100:
        s.carrier_counts.clear()
    s.carrier_counts[key] = counts = dict(sorted(counts.items()))
    return counts


def _seconds(n: int, tps: float) -> float | None:
    return round(n / tps, 1) if tps > 0 else (0.0 if n == 0 else None)


@post("/v1/preview", guards=VIEWER, tags=["campaigns"], status_code=200,
      summary="Recipients, SMS parts, PDUs and sending time of a text, before sending",
      security=BEARER, responses=errors(400, *AUTH, 409, 413))
async def preview(request: Request[Any, Any, Any], state: State,
                  data: JSONBody[PreviewRequest]) -> Preview:
    s = services_of(state)
    data = await strict_body(request, PreviewRequest)
    meta = (await numberlists.list_meta(s.store, data.audience_list) if data.audience_list
            else await s.store.audiences.meta())
    if meta is None:
        raise StateError("no audience is imported: run `loa audience import` first")
    unknown = [d for d in data.selector.districts if d not in s.province.districts]
    if unknown:
        raise InputError(f"not districts of {s.province.name}: {', '.join(unknown)}",
                         field="selector.districts")
    textcheck.check(data.text, "text")
    for name, written in data.texts.items():
        textcheck.check(written, f"texts.{name}")
    typed = zns.message(data.zns_template, data.zns_params)
    zns_check.check(s.settings.zalo, typed, data.channels)
    channels: dict[Channel, ChannelPreview] = {}
    sms: SmsPreview | None = None
    record = await campaigntext.current(s.store)  # the texts' fields rendered as at a start
    districts = {d.id: d.name for d in s.province.districts.values()
                 if not data.selector.districts or d.id in data.selector.districts}
    shown: dict[Channel, str] = {}  # each channel's text as the cost counts it
    for channel in data.channels:
        n = routing.reach(meta, data.selector, channel, s.settings)
        field = f"texts.{channel}" if data.texts.get(channel) else "text"
        written = data.texts.get(channel) or data.text
        text = campaigntext.render_one(written, field, record)
        # {district}: the longest district name's rendering decides the parts and the cost
        longest, district = campaigntext.longest(written, record, districts)
        text = shown[channel] = longest or text
        per = campaigntext.district_texts(written, record, districts) or None
        if channel is not Channel.SMS:
            channels[channel] = ChannelPreview(
                n, _seconds(n, s.settings.rate(channel.value)), text=text or None,
                district=district or None, districts=per,
                targets=routing.targets(channel, data.selector, s.settings)
                if channel.outlet else None)
            continue
        if not text.strip():
            raise InputError("give the text to preview (or texts.sms)", field="text")
        try:
            seg = smstext.segment(text, strip=data.strip_diacritics)
        except TextError as exc:
            raise InputError(str(exc), field=field) from None
        if len(seg.parts) > data.max_parts:
            where = f"rendered for {district}, " if district else ""
            raise InputError(f"{where}{seg.summary} is more than max_parts {data.max_parts}",
                             field=field)
        by_carrier = await _carriers(s, meta, data.selector)
        by_route_n: dict[str, int] = {}
        for carrier, count in by_carrier.items():
            route = s.settings.sms_route(carrier)
            by_route_n[route] = by_route_n.get(route, 0) + count
        parts = len(seg.parts)
        by_route = {}
        for route, count in sorted(by_route_n.items()):
            tps = sms_route_tps(s.settings, route)
            by_route[route] = RoutePreview(count, count * parts, tps or None,
                                           _seconds(count * parts, tps))
        limited = all(r.tps for r in by_route.values() if r.pdus)
        route_seconds = [r.seconds or 0.0 for r in by_route.values()]
        sms = SmsPreview(
            encoding=str(seg.encoding), chars=seg.units, parts=parts, text=seg.text,
            recipients=n, by_carrier=by_carrier, by_route=by_route, pdus=n * parts,
            tps=sum(r.tps or 0.0 for r in by_route.values()) if limited else None,
            seconds=max(route_seconds, default=0.0) if limited else None)
        channels[channel] = ChannelPreview(n, sms.seconds, parts, text=seg.text,
                                           encoding=str(seg.encoding), pdus=n * parts,
                                           district=district or None, districts=per)
    zalo = channels.get(Channel.ZALO)
    # counted as the campaign's creation counts it: an outlet by the people of its districts,
    # the SMS fallback's parts with the SMS
    price = approval.cost(meta, selector=data.selector, channels=list(data.channels),
                          texts=shown, strip=data.strip_diacritics,
                          sms_fallback=data.sms_fallback)
    return Preview(audience_version=meta.version, audience_size=meta.count,
                   needs_approval=bool(approval.over(price, s.settings.engine)),
                   channels=channels, sms=sms,
                   zns=None if typed is None else zns_check.preview(
                       s.settings.zalo, typed, s.clock().astimezone(VN).date()),
                   zalo=await _zalo_capacity(s, data, zalo.recipients) if zalo else None,
                   suppressed={c: await s.store.suppressions.count(c) for c in data.channels},
                   public_safety=data.public_safety)


async def _zalo_capacity(s: Services, data: PreviewRequest, recipients: int) -> ZaloCapacity:
    """The OA's quota now against ``recipients``, with the policy the campaign would have."""
    policy = data.over_quota or over_quota_default(data.priority)
    if not data.sms_fallback:
        policy = OverQuota.WAIT  # nothing to send them by SMS with
    zalo = s.settings.zalo
    reset = f"{zalo.quota_reset} {zalo.quota_timezone}" if zalo else ""
    found = Capacity(recipients, policy, reset=reset)
    if s.zalo_quota is not None:
        found = await capacity(s.zalo_quota, recipients, policy)
    return ZaloCapacity(recipients=recipients, remaining=found.remaining, daily=found.daily,
                        beyond=found.beyond, over_quota=policy, reset=found.reset or reset,
                        summary=found.summary())


# -- health, metrics ----------------------------------------------------------------------------


@get("/healthz", tags=["health"], summary="The process is up")
async def healthz() -> Health:
    return Health("ok")


@get("/readyz", tags=["health"], summary="The store answers; how each channel sends",
     responses=errors(503))
async def readyz(request: Request[Any, Any, Any], state: State) -> Response[Ready]:
    try:
        await asyncio.wait_for(services_of(state).store.level.get(), READY_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - whatever the store raises, it is not ready
        log.warning("readyz: the store does not answer: %s", type(exc).__name__)
        return _problem(request, UNAVAILABLE, "the store does not answer")
    modes = services_of(state).modes
    return Response(Ready("ok", channels={c: m.value for c, m in modes.items()},
                          simulated=[c for c, m in modes.items() if m is Mode.SIMULATED]),
                    status_code=200)


@get("/metrics", tags=["health"], summary="Prometheus metrics", media_type=CONTENT_TYPE_LATEST)
async def metrics() -> Response[bytes]:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


#: Every body the API reads or writes; their JSON schemas are published as msgspec validates them.
SCHEMA_TYPES = [Me, PlanView, LevelSet, LevelConfirm, PendingLevel, LevelState, OpeningStatus,
                CampaignCreate, Campaign, CampaignDetail, ActionBody, StopBody, LiftBody,
                StopState, PreviewRequest, Preview, WebhookAck, Health, Ready, Problem,
                AuditRecord]

ROUTES = [me, get_plan, get_level, put_level, get_pending_level, confirm_level_change,
          level_history, level_openings, create_campaign,
          list_campaigns, get_campaign, approve_campaign, pause_campaign, resume_campaign,
          cancel_campaign, get_stop, post_stop, delete_stop, get_audit, preview, healthz, readyz,
          metrics]


def create_app(store: Store, settings: Settings, plan: Plan, province: Province,
               numbering: Numbering, api_config: ApiConfig, *,
               on_zalo_events: OnZaloEvents | None = None, audit: AuditLog | None = None,
               clock: Clock = lambda: dt.datetime.now(dt.UTC),
               tokens_file: Path | None = None,
               zalo_quota: QuotaReader | None = None) -> Litestar:
    """The API as an ASGI application on ``store``; with ``tokens_file`` (the deployment file)
    its tokens are read again when the file changes (:class:`TokenSource`)."""
    audit = audit or AuditLog(Path(api_config.audit_log))
    services = Services(store, settings, plan, province, numbering, api_config, audit,
                        on_zalo_events, clock, tokens_file, zalo_quota)
    # the schema as JSON only, with the console's strict headers: no page of this origin (where
    # operators paste their tokens) loads a script from elsewhere, as Litestar's renderers would
    schema_router = Router("/schema", route_handlers=[], include_in_schema=False,
                           response_headers=[ResponseHeader(name=name, value=value)
                                             for name, value in console.HEADERS.items()])
    openapi = OpenAPIConfig(
        title="Loa API", version=__version__, path="/schema",
        render_plugins=[JsonRenderPlugin()], openapi_router=schema_router,
        description="Mass SMS and notification dispatcher of the provincial epidemic-response "
                    "office. Authenticate with `Authorization: Bearer <token>` (`loa token "
                    "create`). Errors are RFC 9457 problem details "
                    "(`application/problem+json`): `type` (under " + PROBLEM_BASE + "), "
                    "`title`, `status`, `detail` (why, in one line), `instance` (the path) and, "
                    "for bad input, `field` (the value in error, e.g. `texts.sms`).",
        components=Components(security_schemes={
            "BearerToken": SecurityScheme(type="http", scheme="bearer")}))
    channel_keys = {"propertyNames": {"$ref": "#/components/schemas/Channel"}}
    components = exact_components([*SCHEMA_TYPES, *deadletters.SCHEMA_TYPES,
                                   *situation.SCHEMA_TYPES, *plantexts.SCHEMA_TYPES,
                                   *recipients.SCHEMA_TYPES, *lists.SCHEMA_TYPES,
                                   *incoming.SCHEMA_TYPES, *suppressions.SCHEMA_TYPES,
                                   *checklist.SCHEMA_TYPES, *public.SCHEMA_TYPES,
                                   *broadcasts.SCHEMA_TYPES], {
        "Selector": {"properties": {"districts": {"items": {"enum": sorted(province.districts)}}}},
        "CampaignCreate": {"properties": {"texts": channel_keys}},
        "PreviewRequest": {"properties": {"texts": channel_keys}},
        "LevelSet": {**LEVEL_SET_ONE_OF, "properties": {"level": {"anyOf": [
            {"enum": [0, *sorted(plan.levels)]}, {"type": "null"}]}}},
    })

    def publish_exact_schemas(app: Litestar) -> None:
        use_components(app.openapi_schema, components)

    # with a webhook port of its own, the webhook is not on this (the operators') port
    webhook = [] if api_config.webhook_port else [zalo_webhook]
    return Litestar(
        route_handlers=[*ROUTES, *deadletters.ROUTES, *situation.ROUTES, *plantexts.ROUTES,
                        *recipients.ROUTES, *lists.ROUTES, *incoming.ROUTES,
                        *suppressions.ROUTES, *checklist.ROUTES, *public.ROUTES,
                        *broadcasts.ROUTES,
                        *webhook,
                        *console.ROUTES],
        state=State({"services": services, "webhook": services.webhook,
                     "console_files": console.load_files()}),
        openapi_config=openapi,
        request_max_body_size=api_config.request_max_body_size,
        exception_handlers={StoreUnavailable: _internal_error, LoaError: _loa_error,
                            HTTPException: _http_error, Exception: _internal_error},
        plugins=[StructDefaultsPlugin()],
        on_startup=[publish_exact_schemas],
        on_shutdown=[services.webhook.intake.close, audit.close],
        debug=False,
        # the command's logging (dispatcher.engine.logs) takes Litestar's lines
        logging_config=None,
    )


def create_webhook_app(store: Store, api_config: ApiConfig, *,
                       on_zalo_events: OnZaloEvents | None = None,
                       clock: Clock = lambda: dt.datetime.now(dt.UTC)) -> Litestar:
    """The Zalo webhook alone (``POST /zalo/webhook``), for its own listener
    (``[api] webhook_port``): the public receiver shares no port with the operators' API,
    console and metrics, and answers 404 for everything else."""
    webhook = webhook_for(store, api_config, on_zalo_events, clock)
    return Litestar(
        route_handlers=[zalo_webhook],
        state=State({"webhook": webhook}),
        on_shutdown=[webhook.intake.close],
        openapi_config=None,
        request_max_body_size=api_config.request_max_body_size,
        exception_handlers={StoreUnavailable: _internal_error, LoaError: _loa_error,
                            HTTPException: _http_error, Exception: _internal_error},
        debug=False,
        logging_config=None,
    )
