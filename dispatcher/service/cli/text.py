"""``loa text inspect``: how a message text goes out as SMS (encoding, parts, cost)."""

from __future__ import annotations

import argparse
from typing import Any

from dispatcher.domain import smstext
from dispatcher.service.cli.output import console, print_json


def register(sub: Any) -> None:
    parser = sub.add_parser("text", help="inspect message texts",
                            description="Message texts as SMS: encoding, parts and cost.")
    group = parser.add_subparsers(dest="text_command", metavar="COMMAND", required=True)
    inspect = group.add_parser(
        "inspect", help="encoding, parts and characters of an SMS text",
        description="Show how TEXT is sent as SMS: GSM-7 when every character fits, UCS-2 "
                    "otherwise (Vietnamese diacritics need UCS-2: 70 characters a part instead "
                    "of 160), and how many parts (each one billed) it takes.")
    inspect.add_argument("text", metavar="TEXT", help="the message text")
    inspect.add_argument("--strip-diacritics", action="store_true",
                         help="remove Vietnamese diacritics first so the text fits GSM-7")
    inspect.add_argument("--json", action="store_true", help="one JSON object on stdout")
    inspect.set_defaults(func=cmd_inspect)


def cmd_inspect(args: argparse.Namespace) -> int:
    seg = smstext.segment(args.text, strip=args.strip_diacritics)
    result = {
        "encoding": seg.encoding.value,
        "parts": len(seg.parts),
        "chars": len(seg.text),
        "text": seg.text,
        "units": seg.units,
        "data_coding": seg.data_coding,
        "part_texts": seg.parts,
    }
    if args.json:
        print_json(result)
        return 0
    out = console()
    unit = "septets" if seg.encoding is smstext.Encoding.GSM7 else "UTF-16 units"
    out.print(f"encoding {seg.encoding.value.upper()} (data_coding {seg.data_coding}), "
              f"{len(seg.text)} characters = {seg.units} {unit}, {len(seg.parts)} "
              f"{'part' if len(seg.parts) == 1 else 'parts'}")
    if len(seg.parts) > 1:
        for n, part in enumerate(seg.parts, 1):
            out.print(f"  part {n}: {part!r}", markup=False)
    if seg.encoding is smstext.Encoding.UCS2 and not args.strip_diacritics:
        stripped = smstext.segment(args.text, strip=True)
        if stripped.encoding is smstext.Encoding.GSM7 and len(stripped.parts) < len(seg.parts):
            out.print(f"without diacritics: {len(stripped.parts)} "
                      f"{'part' if len(stripped.parts) == 1 else 'parts'} (--strip-diacritics)")
    return 0
