"""``loa number``: normalise Vietnamese mobile numbers and name their carrier."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dispatcher.domain.errors import NumberError
from dispatcher.domain.msisdn import load_numbering
from dispatcher.service.cli.output import console, print_json


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "number", help="normalise mobile numbers and name their carrier",
        description="Normalise each NUMBER to 84 + 9 digits and name its carrier, or say why it "
                    "cannot be used. '-' reads one number per line from standard input. Exit "
                    "status 0 when every number is valid, 1 otherwise.")
    parser.add_argument("numbers", nargs="+", metavar="NUMBER", help="a number, or - for stdin")
    parser.add_argument("--json", action="store_true", help="one JSON object per input line")
    parser.add_argument("--numbering", type=Path, metavar="FILE",
                        help="numbering file (default: shipped config/numbering.toml)")
    parser.set_defaults(func=cmd_number)


def _inputs(values: list[str]) -> list[str]:
    found: list[str] = []
    for value in values:
        if value == "-":
            found.extend(line.rstrip("\r\n") for line in sys.stdin if line.strip())
        else:
            found.append(value)
    return found


def cmd_number(args: argparse.Namespace) -> int:
    numbering = load_numbering(args.numbering)
    out = None if args.json else console()
    status = 0
    for raw in _inputs(args.numbers):
        try:
            msisdn, carrier = numbering.normalize(raw)
        except NumberError as exc:
            status = 1
            if out is None:
                print_json({"input": raw, "error": exc.reason})
            else:
                out.print(f"{raw}  [red]invalid[/red]: {exc.reason}", markup=True)
            continue
        if out is None:
            print_json({"input": raw, "msisdn": msisdn, "carrier": carrier})
        else:
            out.print(f"{raw}  {msisdn}  {numbering.names[carrier]}")
    return status
