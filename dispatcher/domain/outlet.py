"""Targets of the outlet channels: the places a wave is published to, not people.

An outlet channel (:data:`dispatcher.domain.model.OUTLETS`: Facebook pages, portals, loudspeaker
systems) publishes each of its waves once to each target the wave names. A target is configured
in the channel's settings table with its own endpoint and credentials; what the engine knows of it
is this: a stable id (the address its batches carry, the key of its sent bit), a name for people,
and the district it speaks for ("" for the whole province): a wave for some districts is published
to the province's targets and to those districts' own.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Protocol

import msgspec

#: What a target id may hold: it is an address in batches and a part of log lines.
ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def check_id(where: str, target: str, seen: set[str]) -> None:
    """A ValueError naming ``where`` (``pages[0]``) unless ``target`` is an :data:`ID` that is
    not in ``seen`` (the ids of the table so far); it joins them."""
    if not ID.match(target):
        raise ValueError(f"{where}: id {target!r} must be lower-case letters, digits, '.', '_' "
                         "or '-' (at most 64)")
    if target in seen:
        raise ValueError(f"{where}: id {target!r} is given twice")
    seen.add(target)


class Target(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One place an outlet channel publishes to."""

    id: str  # stable across restarts: the wave's sent bit and dead letter are kept by it
    name: str = ""  # for people: "Trang Sở Y tế Quảng Ninh"
    district: str = ""  # the district it speaks for (a province.toml id); "": the province

    def serves(self, districts: Collection[str]) -> bool:
        """Whether a wave for ``districts`` (empty: the whole province) is published here."""
        return not self.district or not districts or self.district in districts


class OutletConfig(Protocol):
    """What the engine reads of an outlet channel's settings table (``[facebook]``, ``[portal]``,
    ``[loudspeaker]``): its targets, each with an id unique in the table."""

    def targets(self) -> list[Target]: ...
