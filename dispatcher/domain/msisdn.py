"""Vietnamese mobile numbers: normalisation to ``84`` + 9 digits and the carrier by prefix.

:meth:`Numbering.normalize` is on the audience path (a million rows in seconds), so the valid
case is a handful of string operations and two dictionary look-ups; the reasons for a rejection
are worked out only when a number is rejected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

import msgspec
import phonenumbers

from dispatcher.domain.config import default_path, load_toml
from dispatcher.domain.errors import ConfigError, NumberError

# Characters people put inside numbers: spaces, dots, dashes, slashes, parentheses.
_SEPARATORS = str.maketrans("", "", " .-/()\u00a0\t")
_CARRIER_ID = re.compile(r"^[a-z][a-z0-9_]*$")


class CarrierFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    prefixes: list[str]


class LandlineFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    prefixes: list[str] = []


class NumberingFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The numbering file as written (config/numbering.toml)."""

    carriers: dict[str, CarrierFile]
    country_code: str = "84"
    national_digits: int = 9
    landline: LandlineFile = LandlineFile()
    legacy: dict[str, str] = {}


class Numbering:
    """A loaded numbering table. Build it with :func:`load_numbering`."""

    def __init__(self, raw: NumberingFile, *, source: str = "<numbering>") -> None:
        def fail(key: str, message: str) -> ConfigError:
            return ConfigError(message, source=source, key=key)

        if not raw.country_code.isdigit():
            raise fail("country_code", "must be digits, e.g. \"84\"")
        if not 4 <= raw.national_digits <= 12:
            raise fail("national_digits", "must be between 4 and 12")
        if not raw.carriers:
            raise fail("carriers", "no carrier is listed")
        self.country_code = raw.country_code
        self.national_digits = raw.national_digits
        self.names = {cid: carrier.name for cid, carrier in raw.carriers.items()}
        self._prefix: dict[str, str] = {}
        for cid, carrier in raw.carriers.items():
            if not _CARRIER_ID.match(cid):
                raise fail(f"carriers.{cid}", "carrier ids are lower-case letters, digits and _")
            if not carrier.prefixes:
                raise fail(f"carriers.{cid}.prefixes", "no prefix is listed")
            for i, prefix in enumerate(carrier.prefixes):
                key = f"carriers.{cid}.prefixes[{i}]"
                digits = _national_prefix(prefix, raw.national_digits, partial(fail, key))
                if digits in self._prefix:
                    raise fail(key, f"{prefix} is also listed for {self._prefix[digits]}")
                self._prefix[digits] = cid
        self._lengths = sorted({len(p) for p in self._prefix}, reverse=True)
        self._landline = tuple(
            _national_prefix(p, raw.national_digits, partial(fail, f"landline.prefixes[{i}]"))
            for i, p in enumerate(raw.landline.prefixes)
        )
        self._legacy: dict[str, str] = {}
        for old, new in raw.legacy.items():
            key = f"legacy.{old}"
            old_digits = _national_prefix(old, 99, partial(fail, key))
            new_digits = _national_prefix(new, raw.national_digits, partial(fail, key))
            if self._carrier_of(new_digits.ljust(raw.national_digits, "0")) is None:
                raise fail(key, f"{new} is not a prefix of any carrier")
            self._legacy[old_digits] = new_digits

    @property
    def carriers(self) -> list[str]:
        return list(self.names)

    def prefix_table(self) -> dict[str, str]:
        """National-number prefix (without the leading 0) -> carrier id."""
        return dict(self._prefix)

    def _carrier_of(self, national: str) -> str | None:
        for length in self._lengths:
            carrier = self._prefix.get(national[:length])
            if carrier is not None:
                return carrier
        return None

    def normalize(self, raw: str) -> tuple[str, str]:
        """``(msisdn, carrier)`` for a mobile number, or :class:`NumberError` with the reason.

        Accepts ``+84…``, ``84…``, ``0084…``, ``0…`` and the bare 9-digit national number (as
        spreadsheets leave it after dropping the leading zero), with spaces, dots or dashes.
        """
        text = raw.strip()
        if not text.isdigit():
            text = text.translate(_SEPARATORS)
        cc = self.country_code
        n = self.national_digits
        plus = text.startswith("+")
        digits = text[1:] if plus else text
        if not (digits.isascii() and digits.isdigit()):
            raise NumberError(raw, self._why_not_digits(digits))
        if plus or digits.startswith("00"):
            if not plus:
                digits = digits[2:]
            if not digits.startswith(cc):
                raise NumberError(raw, _foreign(digits))
            national = digits[len(cc):]
            if national.startswith("0") and len(national) == n + 1:
                national = national[1:]  # "+84 (0) 912 345 678"
        elif digits.startswith("0"):
            national = digits[1:]
        elif digits.startswith(cc) and len(digits) > n:
            national = digits[len(cc):]
        else:
            national = digits
        if len(national) == n:
            carrier = self._carrier_of(national)
            if carrier is not None:
                return cc + national, carrier
        raise NumberError(raw, self._why_not_mobile(national))

    def _why_not_digits(self, digits: str) -> str:
        if not digits:
            return "empty"
        bad = next(c for c in digits if not ("0" <= c <= "9"))
        return f"not a phone number: unexpected character {bad!r}"

    def _why_not_mobile(self, national: str) -> str:
        n = self.national_digits
        if national.startswith(self._landline) and self._landline:
            return f"landline number (area code 0{national[:3]}); landlines cannot receive SMS"
        for old, new in self._legacy.items():
            if national.startswith(old) and len(national) == n + len(old) - len(new):
                renumbered = new + national[len(old):]
                return (f"old 11-digit number (renumbered in 2018); the new number is "
                        f"0{renumbered}: check it with the owner and correct the source")
        if len(national) != n:
            return (f"wrong length: {len(national)} digits after 0 or +{self.country_code}, "
                    f"expected {n}")
        return f"0{national[:2]} is not a mobile prefix in the numbering table"


def _foreign(digits: str) -> str:
    for length in (1, 2, 3):
        code = int(digits[:length]) if digits[:length] else 0
        region = phonenumbers.region_code_for_country_code(code)
        if region != phonenumbers.UNKNOWN_REGION:
            return f"foreign number (+{code}, {region}); only Vietnamese mobile numbers are sent to"
    return "not a phone number: unknown country code"


def _national_prefix(
    prefix: str, national_digits: int, fail: Callable[[str], ConfigError]
) -> str:
    if not (prefix.startswith("0") and prefix[1:].isdigit() and 1 < len(prefix) <= national_digits):
        raise fail(f"{prefix!r} is not a prefix: write it as dialled at home, e.g. \"032\"")
    return prefix[1:]


def load_numbering(path: Path | None = None) -> Numbering:
    """Load and validate a numbering file (default: the shipped ``config/numbering.toml``)."""
    path = path or default_path("numbering.toml")
    return Numbering(load_toml(path, NumberingFile), source=str(path))
