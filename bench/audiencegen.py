"""Deterministic synthetic audiences of the province, for demos, tests and benchmarks.

The same ``count`` and ``seed`` always give the same file. Numbers are unique (each carrier
prefix walks a permutation of its number space), carriers follow realistic market shares,
districts follow population, about 98% of people are on Zalo, and visitors and officials are
mixed in. ``with_errors`` adds a small share of rows that a check must reject, of every kind a
real list contains (old 11-digit numbers, landlines, foreign numbers, typos, duplicates...).
"""

from __future__ import annotations

import csv
import itertools
import random
from collections.abc import Callable, Iterator
from pathlib import Path

from dispatcher.domain.audience import COLUMNS
from dispatcher.domain.errors import InputError
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.province import Province

#: Subscriber market shares used for generated numbers (approximate, Vietnam 2021).
CARRIER_SHARES = {
    "viettel": 0.52,
    "vinaphone": 0.24,
    "mobifone": 0.19,
    "vietnamobile": 0.03,
    "gmobile": 0.01,
    "itelecom": 0.007,
    "reddi": 0.003,
}
KIND_SHARES = {"resident": 0.90, "visitor": 0.07, "official": 0.03}
ZALO_SHARE = 0.98
ERROR_SHARE = 0.015
CHUNK = 8192
_MULT = 7_654_321  # odd and not a multiple of 5: a permutation of every 10**k number space

#: Bad rows added by ``with_errors``: what each looks like; the check must reject each one.
_ERRORS: tuple[Callable[[random.Random, list[str]], list[str]], ...] = (
    lambda r, row: ["0" + str(r.randrange(10**6, 10**7)), *row[1:]],  # too short
    lambda r, row: [f"0203 {r.randrange(10**6, 10**7)}", *row[1:]],  # landline
    lambda r, row: [f"0166{r.randrange(10**7):07d}", *row[1:]],  # old 11-digit number
    lambda r, row: [f"+86 138 {r.randrange(10**8):08d}", *row[1:]],  # foreign
    lambda r, row: [row[0], row[1], "Hà Nội", row[3], row[4]],  # not in the province
    lambda r, row: [row[0], row[1], row[2], "tourist", row[4]],  # unknown kind
    lambda r, row: [row[0], row[1], row[2], "official", "cb.quangninh.gov.vn"],  # bad e-mail
    lambda r, row: [row[0], "maybe", *row[2:]],  # bad zalo value
    lambda r, row: row[:3],  # missing fields
)


class _Numbers:
    """Unique numbers per carrier: each prefix walks a permutation of its suffix space."""

    def __init__(self, numbering: Numbering, rng: random.Random) -> None:
        self._prefixes: dict[str, list[tuple[str, int]]] = {}
        self._offsets: dict[str, int] = {}
        for national, carrier in sorted(numbering.prefix_table().items()):
            space = 10 ** (numbering.national_digits - len(national))
            self._prefixes.setdefault(carrier, []).append((national, space))
            self._offsets[national] = rng.randrange(space)
        # Numbers under a longer prefix listed for itself belong to that prefix: skip them here.
        table = numbering.prefix_table()
        self._nested = {p: tuple(q for q in table if q != p and q.startswith(p)) for p in table}
        self._used: dict[str, int] = {}
        self._rng = rng

    def next(self, carrier: str) -> str:
        national, space = self._rng.choice(self._prefixes[carrier])
        nested = self._nested[national]
        while True:
            n = self._used.get(national, 0)
            if n >= space:
                raise InputError(f"too many numbers asked of prefix 0{national}")
            self._used[national] = n + 1
            suffix = (n * _MULT + self._offsets[national]) % space
            number = f"{national}{suffix:0{len(str(space)) - 1}d}"
            if not nested or not number.startswith(nested):
                return number


def _format(national: str, style: float) -> str:
    if style < 0.80:
        return "0" + national
    if style < 0.90:
        return "+84" + national
    if style < 0.95:
        return "84" + national
    return f"0{national[:2]} {national[2:5]} {national[5:]}"


def rows(count: int, *, seed: int, numbering: Numbering, province: Province,
         with_errors: bool = False, zalo_accounts: int | None = None) -> Iterator[list[str]]:
    """The data rows of a generated audience (without the header). ``zalo_accounts``: exactly
    this many rows have a Zalo account, spread evenly (default: about 98%)."""
    if count < 0:
        raise InputError("--count must be 0 or more")
    if zalo_accounts is not None and not 0 <= zalo_accounts <= count:
        raise InputError(f"the Zalo accounts ({zalo_accounts}) must be between 0 and the "
                         f"rows ({count})")
    rng = random.Random(seed)
    numbers = _Numbers(numbering, rng)
    carriers = [c for c in CARRIER_SHARES if c in numbering.names]
    if not carriers:
        raise InputError("the numbering table has none of the carriers the generator knows")
    carrier_w = list(itertools.accumulate(CARRIER_SHARES[c] for c in carriers))
    districts = list(province.districts.values())
    district_w = list(itertools.accumulate(max(d.population, 1) for d in districts))
    kinds = list(KIND_SHARES)
    kind_w = list(itertools.accumulate(KIND_SHARES.values()))
    emitted: list[str] = []  # a few earlier numbers, to repeat as duplicates
    done = 0
    while done < count:
        n = min(CHUNK, count - done)
        chunk_carriers = rng.choices(carriers, cum_weights=carrier_w, k=n)
        chunk_districts = rng.choices(districts, cum_weights=district_w, k=n)
        chunk_kinds = rng.choices(kinds, cum_weights=kind_w, k=n)
        for carrier, district, kind in zip(chunk_carriers, chunk_districts, chunk_kinds,
                                           strict=True):
            done += 1
            national = numbers.next(carrier)
            r = rng.random()
            if zalo_accounts is not None:  # the row has one if the even spread reaches it
                r = r * ZALO_SHARE if done * zalo_accounts // count > (
                    (done - 1) * zalo_accounts // count) else 1.0
            zalo = "0" if r >= ZALO_SHARE else ("1" if r < 0.88 else str(10**17 + done))
            r = rng.random()
            place = district.name if r < 0.70 else district.id
            if kind == "visitor" and r < 0.21:
                place = ""
            email = f"cb{done}@quangninh.gov.vn" if kind == "official" else ""
            row = [_format(national, rng.random()), zalo, place, kind, email]
            if with_errors and rng.random() < ERROR_SHARE:
                if emitted and rng.random() < 0.2:
                    row = ["+84" + emitted[rng.randrange(len(emitted))], *row[1:]]
                else:
                    row = rng.choice(_ERRORS)(rng, row)
            elif len(emitted) < 1000:
                emitted.append(national)
            yield row


def generate(path: Path, count: int, *, seed: int, numbering: Numbering, province: Province,
             with_errors: bool = False, progress: Callable[[int], None] | None = None,
             zalo_accounts: int | None = None) -> int:
    """Write a generated audience of ``count`` rows to ``path``; returns the rows written."""
    written = 0
    try:
        out = path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror}") from None
    with out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        source = rows(count, seed=seed, numbering=numbering, province=province,
                      with_errors=with_errors, zalo_accounts=zalo_accounts)
        while batch := list(itertools.islice(source, CHUNK)):
            writer.writerows(batch)
            written += len(batch)
            if progress is not None:
                progress(written)
    return written
