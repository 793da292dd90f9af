"""The province and its district-level units (config/province.toml)."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from dispatcher.domain.config import default_path, load_toml
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.smstext import strip_diacritics

_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class District(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    name: str
    type: str = ""
    population: int = 0


class ProvinceFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    districts: list[District]


def _fold(text: str) -> str:
    """The form names are compared in: no diacritics, lower case, single spaces."""
    return " ".join(strip_diacritics(text).lower().replace("-", " ").split())


class Province:
    """A loaded province; :meth:`district_id` resolves what people write for a district."""

    def __init__(self, raw: ProvinceFile, *, source: str = "<province>") -> None:
        if not raw.districts:
            raise ConfigError("no district is listed", source=source, key="districts")
        self.name = raw.name
        self.districts = {d.id: d for d in raw.districts}
        self._aliases: dict[str, str] = {}
        for i, district in enumerate(raw.districts):
            key = f"districts[{i}]"
            if not _ID.match(district.id):
                raise ConfigError("ids are lower-case letters, digits and dashes",
                                  source=source, key=f"{key}.id")
            if district.population < 0:
                raise ConfigError("must be 0 or more", source=source, key=f"{key}.population")
            for alias in (district.id, district.name):
                folded = _fold(alias)
                other = self._aliases.get(folded)
                if other is not None and other != district.id:
                    raise ConfigError(f"{alias!r} also names {other}", source=source, key=key)
                self._aliases[folded] = district.id
                self._aliases[alias] = district.id

    def district_id(self, text: str) -> str | None:
        """The id of the district ``text`` names (id or name, any case, with or without
        diacritics), or None."""
        found = self._aliases.get(text)
        if found is None:
            found = self._aliases.get(_fold(text))
        return found


def load_province(path: Path | None = None) -> Province:
    """Load and validate a province file (default: the shipped ``config/province.toml``)."""
    path = path or default_path("province.toml")
    return Province(load_toml(path, ProvinceFile), source=str(path))
