"""Fail closed: Loa sends only on channels that are configured or declared simulated.

A process that runs the engine (``loa run``, ``loa worker``) refuses to start when the plan or
an accepted campaign uses a channel with no configuration; the API refuses a campaign on one.
A channel declared simulated (``[channels] simulate``) goes to the in-process channel and says
so: in the start-up log, in ``/readyz`` and in the ``loa_channel_configured`` metric.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import msgspec

from dispatcher.domain.errors import ChannelUnavailable, ConfigError
from dispatcher.domain.model import Campaign, CampaignState, Channel
from dispatcher.domain.plan import Plan
from dispatcher.engine import metrics
from dispatcher.service.channels import TABLES, Mode
from dispatcher.store.base import Store

log = logging.getLogger(__name__)

#: Campaigns that may still send: waiting for approval, approved, running or paused.
ACCEPTED = frozenset({CampaignState.PENDING_APPROVAL, CampaignState.APPROVED,
                      CampaignState.RUNNING, CampaignState.PAUSED})


class Need(msgspec.Struct):
    """Who needs a channel: levels of the plan and accepted campaigns."""

    levels: list[int] = []
    campaigns: list[str] = []

    def text(self) -> str:
        parts = []
        if self.levels:
            parts.append("the plan at level " + ", ".join(map(str, self.levels)))
        if self.campaigns:
            shown = ", ".join(self.campaigns[:3])
            more = f" and {len(self.campaigns) - 3} more" if len(self.campaigns) > 3 else ""
            parts.append(f"campaign {shown}{more}")
        return " and ".join(parts)


def campaign_channels(channels: Iterable[Channel], sms_fallback: bool) -> list[Channel]:
    """The channels a campaign sends on: its own, and SMS when Zalo falls back to it."""
    used = list(dict.fromkeys(channels))
    if sms_fallback and Channel.ZALO in used and Channel.SMS not in used:
        used.append(Channel.SMS)
    return used


def needs(plan: Plan, campaigns: Iterable[Campaign]) -> dict[Channel, Need]:
    """Every channel the plan (any level) or an accepted campaign sends on, and who needs it."""
    found: dict[Channel, Need] = {}
    for number in sorted(plan.levels):
        rules = plan.levels[number].rules
        fallback = any(rule.row.sms_fallback for rule in rules.values())
        for channel in campaign_channels(rules, fallback):
            found.setdefault(channel, Need()).levels.append(number)
    for campaign in campaigns:
        if campaign.state in ACCEPTED:
            for channel in campaign_channels(campaign.channels, campaign.sms_fallback):
                found.setdefault(channel, Need()).campaigns.append(campaign.id)
    return found


def _remedy(channel: Channel) -> str:
    return (f"add the {TABLES[channel]} table, or declare it simulated with [channels] "
            f"simulate = [\"{channel}\"]")


def refusal(modes: Mapping[Channel, Mode], found: Mapping[Channel, Need],
            source: str) -> ConfigError | None:
    """The one-line error for the channels that are needed but missing, or None."""
    missing = [c for c in Channel if c in found and modes[c] is Mode.MISSING]
    if not missing:
        return None
    text = "; ".join(f"channel {c} has no configuration and {found[c].text()} uses it: "
                     f"{_remedy(c)}" for c in missing)
    return ConfigError(text, source=source)


async def check(store: Store, plan: Plan, modes: Mapping[Channel, Mode], *, source: str) -> None:
    """Refuse (ConfigError, exit 2) when the plan or an accepted campaign in ``store`` needs a
    channel that ``modes`` says is missing; otherwise announce the channels."""
    error = refusal(modes, needs(plan, await store.campaigns.all()), source)
    if error is not None:
        raise error
    announce(modes)


def require(modes: Mapping[Channel, Mode], channels: Iterable[Channel],
            sms_fallback: bool) -> None:
    """Refuse a campaign on a channel that is neither configured nor simulated (API: 422)."""
    for channel in campaign_channels(channels, sms_fallback):
        if modes[channel] is Mode.MISSING:
            why = " (the SMS fallback of Zalo)" if channel not in channels else ""
            raise ChannelUnavailable(
                f"channels: {channel}{why} is not configured in this deployment: "
                f"{_remedy(channel)} to the deployment settings", channel=channel.value)


def record(modes: Mapping[Channel, Mode]) -> None:
    """The ``loa_channel_configured`` gauge: 1 for a channel that sends (``simulated="true"``
    when simulated), 0 for one without configuration."""
    metrics.CHANNEL_CONFIGURED.clear()
    for channel, mode in modes.items():
        simulated = "true" if mode is Mode.SIMULATED else "false"
        metrics.CHANNEL_CONFIGURED.labels(channel.value, simulated).set(
            0 if mode is Mode.MISSING else 1)


def announce(modes: Mapping[Channel, Mode]) -> None:
    """Say which channels send where: the gauge, and a log line per channel (a warning for a
    simulated or a missing one)."""
    record(modes)
    for channel, mode in modes.items():
        if mode is Mode.SIMULATED:
            log.warning("channel %s is SIMULATED ([channels] simulate): its messages are "
                        "counted as sent and reach no one", channel)
        elif mode is Mode.MISSING:
            log.warning("channel %s has no configuration: nothing is sent on it", channel)
        else:
            log.info("channel %s: configured", channel)
